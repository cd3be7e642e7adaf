"""The phantom's NumPy filters and resizes equal the torch kernels they replace (within 2 ulps;
bit for bit on the machine they were written on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.former_phantom import (
    former_resize_antialiased,
    former_smooth_along,
    former_upsample_trilinear,
)

from napari_elnet.phantom.interpolation import (
    fma32,
    resize_antialiased,
    running_mean,
    upsample_trilinear,
)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.gamma(2.0, 0.3, (23, 19, 31)).astype(np.float32)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_running_mean_is_conv1d(volume: np.ndarray, axis: int, width: int) -> None:
    ours = running_mean(volume, axis, width)
    theirs = former_smooth_along(torch.from_numpy(volume), axis, width).numpy()
    assert ours.dtype == np.float32 and ours.shape == volume.shape
    np.testing.assert_array_max_ulp(ours, theirs, maxulp=2)


def test_running_mean_pads_with_zeros() -> None:
    ones = np.ones((1, 6), np.float32)
    np.testing.assert_allclose(running_mean(ones, 1, 3)[0], [2 / 3, 1, 1, 1, 1, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(running_mean(ones, 1, 2)[0], [0.5, 1, 1, 1, 1, 1], rtol=1e-6)


@pytest.mark.parametrize("shape", [(6, 6, 6), (117, 113, 161), (7, 9, 5), (1, 40, 2), (30, 31, 33)])
def test_upsample_trilinear_is_torch_interpolate(shape: tuple[int, int, int]) -> None:
    coarse = np.random.default_rng(1).normal(1.0, 0.06, (6, 6, 6)).astype(np.float32)
    ours = upsample_trilinear(coarse, shape)
    assert ours.dtype == np.float32 and ours.shape == shape
    np.testing.assert_array_max_ulp(ours, former_upsample_trilinear(coarse, shape), maxulp=2)


@pytest.mark.parametrize(
    ("height", "width"),
    [(512, 512), (480, 480), (288, 288), (256, 256), (320, 300), (64, 96), (17, 16)],
)
def test_resize_antialiased_is_torch_interpolate(height: int, width: int) -> None:
    stack = np.random.default_rng(2).gamma(2.0, 400.0, (3, height, width)).astype(np.float32)
    ours = resize_antialiased(stack, (256, 256))
    assert ours.dtype == np.float32 and ours.shape == (3, 256, 256)
    np.testing.assert_array_max_ulp(ours, former_resize_antialiased(stack, (256, 256)), maxulp=2)


def test_resize_antialiased_to_another_aspect() -> None:
    stack = np.random.default_rng(3).random((2, 50, 70), dtype=np.float32)
    ours = resize_antialiased(stack, (20, 90))
    np.testing.assert_array_max_ulp(ours, former_resize_antialiased(stack, (20, 90)), maxulp=2)


def test_fma32_rounds_once() -> None:
    a, b = np.float32(1 + 2**-23), np.float32(1 - 2**-24)
    c = np.float32(-1.0)
    # a * b = 1 + 2**-23 - 2**-24 - 2**-47: separately rounded products lose the last term
    assert fma32(np.array([a]), b, np.array([c]))[0] == np.float32(2**-24 - 2**-47)
    assert (np.array([a]) * b + c)[0] != np.float32(2**-24 - 2**-47)
