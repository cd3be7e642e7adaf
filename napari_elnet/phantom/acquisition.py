"""Simulated acquisition: resample the tissue signal into sagittal, coronal and axial stacks.

Each stack has its own field of view, matrix, slice thickness and slice count; slice thickness is
simulated by averaging along the slice normal (partial volume), then a smooth coil bias field,
Rician noise and a scanner intensity scale are applied. NumPy only (the same float32 values
PyTorch's kernels gave when the phantom used them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_elnet.phantom.gaussian import torch_randn
from napari_elnet.phantom.interpolation import running_mean
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


def _sample_axis(volume: np.ndarray, axis: int, coords: np.ndarray, grid: Grid) -> np.ndarray:
    """Linear interpolation of float32 ``volume`` along one grid axis at ``coords`` (mm); zero
    outside the grid (float32 arithmetic throughout)."""
    f = ((coords - grid.start[axis]) / grid.step).astype(np.float32)
    n = volume.shape[axis]
    i0 = np.floor(f).astype(np.int64)
    w = f - i0.astype(np.float32)
    valid = ((i0 >= 0) & (i0 + 1 <= n - 1)).astype(np.float32)
    a = np.take(volume, np.clip(i0, 0, n - 1), axis=axis)
    b = np.take(volume, np.clip(i0 + 1, 0, n - 1), axis=axis)
    shape = [1] * volume.ndim
    shape[axis] = -1
    return (a + (b - a) * w.reshape(shape)) * valid.reshape(shape)


def resample(volume: np.ndarray, grid: Grid, geometry: StackGeometry) -> np.ndarray:
    """The stack's voxel values, float32 (S, H, W), from a float32 volume on ``grid`` (axes x, y, z).

    The stack's axes must be parallel to the grid's (as they are for the three standard planes).
    """
    order = []  # grid axis of the stack's slice, row and column axes
    out = np.asarray(volume, np.float32)
    for index in (0, 1, 2):  # slice first: it shrinks the volume most
        direction = geometry.orientation[(2, 1, 0)[index]]
        axis = int(np.argmax(np.abs(direction)))
        coords = geometry.positions(index)[:, axis]
        if index == 0:
            width = round(geometry.thickness / grid.step)
            out = running_mean(out, axis, width)
        out = _sample_axis(out, axis, coords, grid)
        order.append(axis)
    return np.ascontiguousarray(out.transpose(*order))


def bias_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative coil sensitivity over one slice, (H, W), mean about 1."""
    rows = np.linspace(-1, 1, shape[0], dtype=np.float32)[:, None]
    cols = np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :]
    a, b, c = rng.uniform(-0.15, 0.15, 3)
    return (1 + a * rows + b * cols + c * (rows**2 + cols**2 - 0.66)).astype(np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the float32 signal plus complex Gaussian noise of standard deviation ``sigma``.

    The noise is PyTorch's ``randn`` of a seed drawn from ``rng`` (see :mod:`.gaussian`), as the
    phantom drew it with torch.
    """
    noise = torch_randn(int(rng.integers(2**62)), (2, *signal.shape)) * np.float32(sigma)
    return np.hypot(signal + noise[0], noise[1])
