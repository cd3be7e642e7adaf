"""Simulated acquisition: resample the tissue signal into sagittal, coronal and axial stacks.

Each stack has its own field of view, matrix, slice thickness and slice count; slice thickness is
simulated by averaging along the slice normal (partial volume), then a smooth coil bias field,
Rician noise and a scanner intensity scale are applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_elnet.phantom.shapes import Grid

# Row direction, column direction (LPS) of each plane, as scanners write them.
PLANE_AXES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
}


@dataclass(frozen=True)
class StackGeometry:
    """Where one stack's voxels are.

    Attributes:
        plane: ``sagittal``, ``coronal`` or ``axial``.
        shape: (S, H, W).
        spacing: (slice spacing, row spacing, column spacing) in mm.
        thickness: Slice thickness (mm).
        orientation: (3, 3) rows: row direction, column direction, slice normal (LPS).
        origin: Patient position (mm) of voxel (0, 0, 0).
    """

    plane: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    thickness: float
    orientation: np.ndarray
    origin: np.ndarray

    def positions(self, index: int) -> np.ndarray:
        """Patient positions (N, 3) of the voxels along stack axis ``index`` (0 slice, 1 row,
        2 column) starting at the origin."""
        direction = self.orientation[(2, 1, 0)[index]]
        steps = np.arange(self.shape[index]) * self.spacing[index]
        return self.origin[None, :] + steps[:, None] * direction[None, :]


def stack_geometry(
    plane: str,
    center: np.ndarray,
    fov: float,
    matrix: int,
    slices: int,
    thickness: float,
    gap: float,
) -> StackGeometry:
    """Geometry of a square field of view ``fov`` (mm) with ``matrix`` pixels, centred on ``center``."""
    row, col = (np.asarray(d, float) for d in PLANE_AXES[plane])
    normal = np.cross(row, col)
    pixel = fov / matrix
    spacing = thickness + gap
    half = np.array([(slices - 1) * spacing, (matrix - 1) * pixel, (matrix - 1) * pixel]) / 2
    origin = center - half[2] * row - half[1] * col - half[0] * normal
    return StackGeometry(
        plane,
        (slices, matrix, matrix),
        (spacing, pixel, pixel),
        thickness,
        np.stack([row, col, normal]),
        origin,
    )


def _smooth_along(volume: torch.Tensor, axis: int, width: int) -> torch.Tensor:
    """Centered running mean of ``width`` voxels along ``axis`` (zero padded)."""
    if width <= 1:
        return volume
    moved = volume.movedim(axis, -1)
    padded = torch.nn.functional.pad(
        moved.reshape(-1, 1, moved.shape[-1]), (width // 2, (width - 1) // 2)
    )
    kernel = torch.full((1, 1, width), 1.0 / width, dtype=volume.dtype)
    smoothed = torch.nn.functional.conv1d(padded, kernel).reshape(moved.shape)
    return smoothed.movedim(-1, axis)


def _sample_axis(volume: torch.Tensor, axis: int, coords: np.ndarray, grid: Grid) -> torch.Tensor:
    """Linear interpolation of ``volume`` along one grid axis at ``coords`` (mm); zero outside."""
    f = torch.from_numpy((coords - grid.start[axis]) / grid.step).to(volume.dtype)
    n = volume.shape[axis]
    i0 = torch.floor(f).long()
    w = (f - i0).to(volume.dtype)
    valid = ((i0 >= 0) & (i0 + 1 <= n - 1)).to(volume.dtype)
    a = volume.index_select(axis, i0.clamp(0, n - 1))
    b = volume.index_select(axis, (i0 + 1).clamp(0, n - 1))
    shape = [1] * volume.ndim
    shape[axis] = -1
    return (a + (b - a) * w.view(shape)) * valid.view(shape)


def resample(volume: torch.Tensor, grid: Grid, geometry: StackGeometry) -> torch.Tensor:
    """The stack's voxel values, (S, H, W), from a volume on ``grid`` (axes x, y, z).

    The stack's axes must be parallel to the grid's (as they are for the three standard planes).
    """
    order = []  # grid axis of the stack's slice, row and column axes
    out = volume
    for index in (0, 1, 2):  # slice first: it shrinks the volume most
        direction = geometry.orientation[(2, 1, 0)[index]]
        axis = int(np.argmax(np.abs(direction)))
        coords = geometry.positions(index)[:, axis]
        if index == 0:
            width = round(geometry.thickness / grid.step)
            out = _smooth_along(out, axis, width)
        out = _sample_axis(out, axis, coords, grid)
        order.append(axis)
    return out.permute(*order)


def bias_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative coil sensitivity over one slice, (H, W), mean about 1."""
    rows = np.linspace(-1, 1, shape[0], dtype=np.float32)[:, None]
    cols = np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :]
    a, b, c = rng.uniform(-0.15, 0.15, 3)
    return (1 + a * rows + b * cols + c * (rows**2 + cols**2 - 0.66)).astype(np.float32)


def rician(signal: torch.Tensor, sigma: float, rng: np.random.Generator) -> torch.Tensor:
    """Magnitude of the signal plus complex Gaussian noise of standard deviation ``sigma``."""
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    noise = torch.randn((2, *signal.shape), generator=generator, dtype=signal.dtype) * sigma
    return torch.hypot(signal + noise[0], noise[1])
