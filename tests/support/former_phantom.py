"""The phantom's torch operations as they were before the phantom moved to NumPy (session 7): the
oracle the equivalence tests compare the NumPy code with.

A frozen copy of the former code (NumPy in, NumPy out), since an oracle must not call the code it
checks. :func:`former_ops` swaps them into :mod:`napari_elnet.phantom.study` so that a whole study
can be drawn the former way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from napari_elnet.phantom import study as study_module
from napari_elnet.phantom.acquisition import StackGeometry
from napari_elnet.phantom.shapes import Grid


def former_smooth_along(volume: torch.Tensor, axis: int, width: int) -> torch.Tensor:
    """Centered running mean of ``width`` voxels along ``axis`` (zero padded), by conv1d."""
    if width <= 1:
        return volume
    moved = volume.movedim(axis, -1)
    padded = torch.nn.functional.pad(
        moved.reshape(-1, 1, moved.shape[-1]), (width // 2, (width - 1) // 2)
    )
    kernel = torch.full((1, 1, width), 1.0 / width, dtype=volume.dtype)
    smoothed = torch.nn.functional.conv1d(padded, kernel).reshape(moved.shape)
    return smoothed.movedim(-1, axis)


def former_sample_axis(
    volume: torch.Tensor, axis: int, coords: np.ndarray, grid: Grid
) -> torch.Tensor:
    """Linear interpolation along one grid axis at ``coords`` (mm); zero outside."""
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


def former_resample(volume: np.ndarray, grid: Grid, geometry: StackGeometry) -> np.ndarray:
    """The stack's voxel values (S, H, W) from a float32 volume on ``grid``."""
    order = []
    out = torch.from_numpy(np.ascontiguousarray(volume))
    for index in (0, 1, 2):
        direction = geometry.orientation[(2, 1, 0)[index]]
        axis = int(np.argmax(np.abs(direction)))
        coords = geometry.positions(index)[:, axis]
        if index == 0:
            out = former_smooth_along(out, axis, round(geometry.thickness / grid.step))
        out = former_sample_axis(out, axis, coords, grid)
        order.append(axis)
    return out.permute(*order).contiguous().numpy()


def former_rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise of standard deviation ``sigma``."""
    tensor = torch.from_numpy(np.ascontiguousarray(signal))
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    noise = torch.randn((2, *tensor.shape), generator=generator, dtype=tensor.dtype) * sigma
    return torch.hypot(tensor + noise[0], noise[1]).numpy()


def former_upsample_trilinear(volume: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The texture's trilinear resize (align_corners=False)."""
    coarse = torch.from_numpy(np.ascontiguousarray(volume))[None, None]
    return torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear")[0, 0].numpy()


def former_resize_antialiased(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The MRNet writer's antialiased bilinear resize of each slice."""
    tensor = torch.from_numpy(np.ascontiguousarray(stack))[:, None]
    return torch.nn.functional.interpolate(
        tensor, size=size, mode="bilinear", antialias=True, align_corners=False
    )[:, 0].numpy()


@contextmanager
def former_ops() -> Iterator[None]:
    """Within the block, :func:`napari_elnet.phantom.generate_study` draws with the former torch
    operations."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_module, "resample", former_resample)
        patch.setattr(study_module, "rician", former_rician)
        patch.setattr(study_module, "upsample_trilinear", former_upsample_trilinear)
        yield
