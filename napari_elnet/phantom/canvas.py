"""The phantom's internal volume: a regular grid holding a tissue label and an MR signal per voxel.

Solids are painted in order, later ones over earlier ones. The signal is blended over a one-voxel
ramp at each surface (partial volume, so edges are not staircases); the label takes the tissue that
covers at least half of the voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_elnet.phantom.shapes import Solid

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """A regular grid in patient coordinates (LPS, mm): axis i holds ``start[i] + k * step``."""

    start: tuple[float, float, float]
    shape: tuple[int, int, int]
    step: float

    def axis(self, i: int) -> np.ndarray:
        """Coordinates (mm) along axis ``i``."""
        return self.start[i] + self.step * np.arange(self.shape[i], dtype=np.float32)

    def box(self, low: np.ndarray, high: np.ndarray) -> Box:
        """Index slices of the grid points inside the axis-aligned box [low, high] (mm)."""
        slices = []
        for i in range(3):
            a = int(np.clip(np.floor((low[i] - self.start[i]) / self.step), 0, self.shape[i]))
            b = int(np.clip(np.ceil((high[i] - self.start[i]) / self.step) + 1, 0, self.shape[i]))
            slices.append(slice(a, b))
        return tuple(slices)  # type: ignore[return-value]

    def points(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable x, y, z coordinate arrays (mm) of the grid points in ``box``."""
        x = self.axis(0)[box[0]][:, None, None]
        y = self.axis(1)[box[1]][None, :, None]
        z = self.axis(2)[box[2]][None, None, :]
        return x, y, z


@dataclass(frozen=True)
class Pose:
    """Placement of a group of structures: size ``scale``, then rotation by ``angle_deg`` about the
    x axis (flexion) through ``pivot`` (mm, patient space)."""

    scale: float = 1.0
    angle_deg: float = 0.0
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _rotate(self, y: np.ndarray, z: np.ndarray, angle_deg: float) -> tuple[np.ndarray, ...]:
        a = np.deg2rad(angle_deg)
        py, pz = self.pivot[1], self.pivot[2]
        yy, zz = y - py, z - pz
        return py + np.cos(a) * yy - np.sin(a) * zz, pz + np.sin(a) * yy + np.cos(a) * zz

    def to_local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """Patient -> local (unscaled anatomy) coordinates."""
        if self.angle_deg != 0.0:
            y, z = self._rotate(y, z, -self.angle_deg)
        return x / self.scale, y / self.scale, z / self.scale

    def to_patient(self, p: np.ndarray) -> np.ndarray:
        """Local -> patient coordinates of points ``p`` (..., 3)."""
        out = np.asarray(p, dtype=np.float64) * self.scale
        if self.angle_deg != 0.0:
            out = out.copy()
            out[..., 1], out[..., 2] = self._rotate(out[..., 1], out[..., 2], self.angle_deg)
        return out


@dataclass(frozen=True)
class Canvas:
    """Label (uint8) and signal (float32) volumes on ``grid``, and the signal of each label."""

    grid: Grid
    labels: np.ndarray
    signal: np.ndarray
    table: np.ndarray

    @classmethod
    def empty(cls, grid: Grid, table: np.ndarray) -> Canvas:
        """All air (label 0, signal 0)."""
        return cls(grid, np.zeros(grid.shape, np.uint8), np.zeros(grid.shape, np.float32), table)


def paint(
    canvas: Canvas,
    solid: Solid,
    tissue: int,
    pose: Pose = Pose(),
    only: tuple[int, ...] | None = None,
) -> tuple[Box, np.ndarray]:
    """Paint ``tissue`` inside ``solid`` (placed by ``pose``), optionally only over the labels in
    ``only``.

    Returns:
        The grid box painted and, over it, where the tissue now holds the voxel (bool).
    """
    grid = canvas.grid
    low, high = solid.bounds()
    corners = np.array(np.meshgrid(*zip(low, high, strict=True), indexing="ij")).reshape(3, -1).T
    placed = pose.to_patient(corners)
    margin = grid.step
    box = grid.box(placed.min(axis=0) - margin, placed.max(axis=0) + margin)
    if any(s.start >= s.stop for s in box):
        return box, np.zeros([0, 0, 0], bool)
    distance = solid.sdf(*pose.to_local(*grid.points(box))) * pose.scale
    labels = canvas.labels[box]
    alpha = np.clip(0.5 - distance / grid.step, 0.0, 1.0).astype(np.float32)
    if alpha.shape != labels.shape:
        alpha = np.ascontiguousarray(np.broadcast_to(alpha, labels.shape))
    if only is not None:
        alpha *= np.isin(labels, only)
    held = alpha >= 0.5
    labels[held] = tissue
    signal = canvas.signal[box]
    signal += alpha * (canvas.table[tissue] - signal)
    return box, held
