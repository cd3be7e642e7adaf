"""Vectorized solid primitives on a regular grid, evaluated only inside their bounding boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """A regular grid in patient coordinates (LPS, mm): axis i holds ``start[i] + k * step``."""

    start: tuple[float, float, float]
    shape: tuple[int, int, int]
    step: float

    def axis(self, i: int) -> np.ndarray:
        """Coordinates (mm) along axis ``i``."""
        return self.start[i] + self.step * np.arange(self.shape[i], dtype=np.float32)

    def box(self, low: np.ndarray, high: np.ndarray) -> tuple[slice, slice, slice]:
        """Index slices of the grid points inside the axis-aligned box [low, high] (mm)."""
        slices = []
        for i in range(3):
            a = int(np.clip(np.floor((low[i] - self.start[i]) / self.step), 0, self.shape[i]))
            b = int(np.clip(np.ceil((high[i] - self.start[i]) / self.step) + 1, 0, self.shape[i]))
            slices.append(slice(a, b))
        return tuple(slices)  # type: ignore[return-value]

    def points(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable x, y, z coordinate arrays (mm) of the grid points in ``box``."""
        x = self.axis(0)[box[0]][:, None, None]
        y = self.axis(1)[box[1]][None, :, None]
        z = self.axis(2)[box[2]][None, None, :]
        return x, y, z


@dataclass(frozen=True)
class Pose:
    """Rigid placement of a group of structures: rotation about the x axis around ``pivot``.

    Points are mapped from patient space into the structure's own frame before the shape test.
    """

    angle_deg: float = 0.0
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """Patient -> local coordinates (rotation by -angle about x through the pivot)."""
        if self.angle_deg == 0.0:
            return x, y, z
        a = np.deg2rad(-self.angle_deg)
        py, pz = self.pivot[1], self.pivot[2]
        yy, zz = y - py, z - pz
        return x, py + np.cos(a) * yy - np.sin(a) * zz, pz + np.sin(a) * yy + np.cos(a) * zz

    def to_patient(self, p: np.ndarray) -> np.ndarray:
        """Local -> patient coordinates of points ``p`` (..., 3)."""
        if self.angle_deg == 0.0:
            return p
        a = np.deg2rad(self.angle_deg)
        out = np.array(p, dtype=np.float64, copy=True)
        yy, zz = p[..., 1] - self.pivot[1], p[..., 2] - self.pivot[2]
        out[..., 1] = self.pivot[1] + np.cos(a) * yy - np.sin(a) * zz
        out[..., 2] = self.pivot[2] + np.sin(a) * yy + np.cos(a) * zz
        return out


class Solid:
    """A solid given by a membership test in its local frame and a local bounding box."""

    def local_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class Ellipsoid(Solid):
    """Axis-aligned ellipsoid; ``shell`` > 0 keeps only the outer layer of that thickness (mm)."""

    center: tuple[float, float, float]
    radii: tuple[float, float, float]

    def local_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c, r = np.asarray(self.center), np.asarray(self.radii)
        return c - r, c + r

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (rx, ry, rz) = self.center, self.radii
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0


@dataclass(frozen=True)
class EllipticCylinder(Solid):
    """Cylinder along z with an elliptic cross-section, between ``z0`` and ``z1``."""

    center: tuple[float, float]
    radii: tuple[float, float]
    z0: float
    z1: float

    def local_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        (cx, cy), (rx, ry) = self.center, self.radii
        return np.array([cx - rx, cy - ry, self.z0]), np.array([cx + rx, cy + ry, self.z1])

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy), (rx, ry) = self.center, self.radii
        inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
        return inside & (z >= self.z0) & (z <= self.z1)


@dataclass(frozen=True)
class Capsule(Solid):
    """Points within ``radius`` of the segment a-b; ``t_range`` keeps a part of it (0..1 along it)."""

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radius: float
    t_range: tuple[float, float] = (0.0, 1.0)

    def local_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.asarray(self.a), np.asarray(self.b)
        return np.minimum(a, b) - self.radius, np.maximum(a, b) + self.radius

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        a, b = np.asarray(self.a, np.float32), np.asarray(self.b, np.float32)
        d = b - a
        length2 = float(d @ d)
        px, py, pz = x - a[0], y - a[1], z - a[2]
        t = (px * d[0] + py * d[1] + pz * d[2]) / length2
        tc = np.clip(t, 0.0, 1.0)
        dist2 = (px - tc * d[0]) ** 2 + (py - tc * d[1]) ** 2 + (pz - tc * d[2]) ** 2
        inside = dist2 <= self.radius**2
        if self.t_range != (0.0, 1.0):
            inside &= (t >= self.t_range[0]) & (t <= self.t_range[1])
        return inside


@dataclass(frozen=True)
class MeniscusWedge(Solid):
    """A C-shaped meniscus: triangular cross-section rising from ``r_in`` to ``r_out`` around a
    compartment centre, open over ``gap_deg`` degrees towards ``gap_dir`` (radians, in the x-y plane).
    """

    center: tuple[float, float]
    r_in: float
    r_out: float
    z_base: float
    height: float
    gap_dir: float
    gap_deg: float = 70.0

    def local_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.center
        r = self.r_out
        return (
            np.array([cx - r, cy - r, self.z_base]),
            np.array([cx + r, cy + r, self.z_base + self.height]),
        )

    def polar(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radius (mm) and angle (rad) around the compartment centre."""
        dx, dy = x - self.center[0], y - self.center[1]
        return np.sqrt(dx**2 + dy**2), np.arctan2(dy, dx)

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        r, angle = self.polar(x, y)
        rise = np.clip((r - self.r_in) / (self.r_out - self.r_in), 0.0, 1.0)
        top = self.z_base + self.height * rise
        turn = np.mod(angle - self.gap_dir + np.pi, 2 * np.pi) - np.pi
        off_gap = np.abs(turn) > np.deg2rad(self.gap_deg / 2)
        return (r >= self.r_in) & (r <= self.r_out) & (z >= self.z_base) & (z <= top) & off_gap


def paint(
    labels: np.ndarray,
    grid: Grid,
    solid: Solid,
    value: int,
    pose: Pose = Pose(),
    only: tuple[int, ...] | None = None,
    mask: np.ndarray | None = None,
) -> None:
    """Set ``labels`` to ``value`` inside ``solid`` (placed by ``pose``), optionally only where the
    current label is in ``only``; also marks ``mask`` (same shape) where painted."""
    low, high = solid.local_bounds()
    corners = np.array(np.meshgrid(*zip(low, high, strict=True), indexing="ij")).reshape(3, -1).T
    placed = pose.to_patient(corners)
    box = grid.box(placed.min(axis=0), placed.max(axis=0))
    if any(s.start >= s.stop for s in box):
        return
    inside = solid.contains(*pose.to_local(*grid.points(box)))
    region = labels[box]
    if only is not None:
        inside &= np.isin(region, only)
    region[inside] = value
    if mask is not None:
        mask[box] |= inside
