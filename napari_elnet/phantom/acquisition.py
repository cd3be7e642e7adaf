"""Simulated acquisition: resample the tissue signal into sagittal, coronal and axial stacks.

Each stack has its own field of view, matrix, slice thickness and slice count; slice thickness is
simulated by averaging along the slice normal (partial volume), then a smooth coil bias field,
Rician noise and a scanner intensity scale are applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_elnet.phantom.canvas import Grid

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


def _axis_weights(
    coords: np.ndarray, grid: Grid, axis: int, thickness: float, clamp: bool
) -> np.ndarray:
    """Linear-interpolation weights (N_out, N_grid) of grid samples along one axis.

    Each output averages sub-samples spread over ``thickness`` mm around its coordinate (partial
    volume of a thick slice); outside the grid the weight is zero, or the edge plane is repeated
    when ``clamp`` (soft tissue of the limb goes on beyond the modelled segment).
    """
    n = grid.shape[axis]
    count = max(1, int(np.ceil(2 * thickness / grid.step)))
    offsets = ((np.arange(count) + 0.5) / count - 0.5) * thickness if thickness > 0 else np.zeros(1)
    f = (coords[:, None] + offsets[None, :] - grid.start[axis]) / grid.step
    if clamp:
        f = np.clip(f, 0.0, n - 1.0)
    i0 = np.floor(f).astype(np.int64)
    w1 = f - i0
    weights = np.zeros((len(coords), n), np.float64)
    rows = np.broadcast_to(np.arange(len(coords))[:, None], f.shape)
    for index, w in ((i0, 1.0 - w1), (i0 + 1, w1)):
        ok = (index >= 0) & (index < n) & (w > 0)
        np.add.at(weights, (rows[ok], index[ok]), w[ok] / count)
    return weights.astype(np.float32)


@dataclass(frozen=True)
class _Taps:
    """Two-tap linear interpolation along one grid axis: samples ``index`` and ``index + 1`` with
    weights ``w0`` and ``w1`` (zero outside the grid)."""

    index: np.ndarray
    w0: np.ndarray
    w1: np.ndarray

    @classmethod
    def of(cls, coords: np.ndarray, grid: Grid, axis: int, clamp: bool) -> _Taps:
        """Taps sampling grid ``axis`` at ``coords`` (mm)."""
        n = grid.shape[axis]
        f = (coords - grid.start[axis]) / grid.step
        if clamp:
            f = np.clip(f, 0.0, n - 1.0)
        i0 = np.floor(f).astype(np.int64)
        w1 = f - i0
        w0 = (1.0 - w1) * ((i0 >= 0) & (i0 < n))
        w1 = w1 * ((i0 + 1 >= 0) & (i0 + 1 < n))
        return cls(i0, w0.astype(np.float32), w1.astype(np.float32))

    def within(self, start: int, stop: int) -> tuple[slice, _Taps]:
        """The outputs that touch grid indices [start, stop), with taps relative to ``start``."""
        i0 = self.index - start
        w0 = self.w0 * ((i0 >= 0) & (i0 < stop - start))
        w1 = self.w1 * ((i0 + 1 >= 0) & (i0 + 1 < stop - start))
        rows = np.flatnonzero((w0 > 0) | (w1 > 0))
        if rows.size == 0:
            return slice(0, 0), self
        keep = slice(int(rows[0]), int(rows[-1]) + 1)
        return keep, _Taps(i0[keep], w0[keep], w1[keep])

    def apply(self, volume: np.ndarray, axis: int) -> np.ndarray:
        """Interpolate ``volume`` along ``axis``."""
        n = volume.shape[axis]
        shape = [1] * volume.ndim
        shape[axis] = -1
        a = np.take(volume, np.clip(self.index, 0, n - 1), axis=axis)
        b = np.take(volume, np.clip(self.index + 1, 0, n - 1), axis=axis)
        return a * self.w0.reshape(shape) + b * self.w1.reshape(shape)


@dataclass(frozen=True)
class Resampler:
    """Maps volumes on a grid to one stack whose axes are parallel to the grid's.

    The slice axis averages over the slice thickness (a dense weight matrix); rows and columns
    are linear interpolation (two taps each).
    """

    axes: tuple[int, int, int]
    slab: np.ndarray
    rows: _Taps
    cols: _Taps

    @classmethod
    def of(cls, grid: Grid, geometry: StackGeometry) -> Resampler:
        """The resampler of a stack geometry on ``grid``."""
        axes = []
        for index in (0, 1, 2):
            direction = geometry.orientation[(2, 1, 0)[index]]
            axes.append(int(np.argmax(np.abs(direction))))
        coords = [geometry.positions(i)[:, axes[i]] for i in (0, 1, 2)]
        slab = _axis_weights(coords[0], grid, axes[0], geometry.thickness, clamp=axes[0] == 2)
        rows = _Taps.of(coords[1], grid, axes[1], clamp=axes[1] == 2)
        cols = _Taps.of(coords[2], grid, axes[2], clamp=axes[2] == 2)
        return cls(tuple(axes), slab, rows, cols)  # type: ignore[arg-type]

    def __call__(self, volume: np.ndarray) -> np.ndarray:
        """The stack (S, H, W) float32 sampled from ``volume`` (grid shape)."""
        s, r, _ = self.axes
        slab = torch.tensordot(
            torch.from_numpy(self.slab), torch.from_numpy(volume), dims=([1], [s])
        )
        rest = [a for a in (0, 1, 2) if a != s]
        if rest.index(r) == 1:
            slab = slab.transpose(1, 2)
        # One bilinear pass over (H, W); taps -> normalized coordinates (align_corners=True).
        n_r, n_c = slab.shape[1], slab.shape[2]
        fr = self.rows.index + self.rows.w1 / np.maximum(self.rows.w0 + self.rows.w1, 1e-6)
        fc = self.cols.index + self.cols.w1 / np.maximum(self.cols.w0 + self.cols.w1, 1e-6)
        gy = torch.from_numpy((2 * fr / (n_r - 1) - 1).astype(np.float32))
        gx = torch.from_numpy((2 * fc / (n_c - 1) - 1).astype(np.float32))
        grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)[None]
        out = torch.nn.functional.grid_sample(
            slab[None].contiguous(), grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )[0]
        return out.numpy()

    def _apply(self, volume: np.ndarray, slab: np.ndarray, rows: _Taps, cols: _Taps) -> np.ndarray:
        """Small volumes (lesion masks): the same sampling as ``__call__`` with numpy."""
        s, r, c = self.axes
        out = np.tensordot(slab, volume, axes=([1], [s]))
        rest = [a for a in (0, 1, 2) if a != s]
        out = rows.apply(out, 1 + rest.index(r))
        out = cols.apply(out, 1 + rest.index(c))
        return out.transpose(0, 2, 1) if rest.index(r) == 1 else out

    def region(self, mask: np.ndarray, box: tuple[slice, slice, slice], level: float) -> np.ndarray:
        """A stack-shaped bool mask from a mask over a grid ``box``: partial volume >= ``level``."""
        s, r, c = self.axes
        out = np.zeros((self.slab.shape[0], len(self.rows.index), len(self.cols.index)), bool)
        part = self.slab[:, box[s]]
        hit = np.flatnonzero(part.any(axis=1))
        keep_r, rows = self.rows.within(box[r].start, box[r].stop)
        keep_c, cols = self.cols.within(box[c].start, box[c].stop)
        if hit.size == 0 or keep_r.stop == 0 or keep_c.stop == 0:
            return out
        keep_s = slice(int(hit[0]), int(hit[-1]) + 1)
        sampled = self._apply(mask.astype(np.float32), part[keep_s], rows, cols)
        out[keep_s, keep_r, keep_c] = sampled >= level
        return out


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
