"""Acquisition in NumPy equals the former torch acquisition: resampling bit for bit on this machine
(within 2 ulps anywhere), Rician noise within float32 rounding of torch.randn's."""

from __future__ import annotations

import numpy as np
import pytest
from support.former_phantom import former_resample, former_rician

from napari_elnet.phantom.acquisition import resample, rician, stack_geometry
from napari_elnet.phantom.anatomy import Anatomy, build_knee, knee_grid
from napari_elnet.phantom.tissues import signal_table


@pytest.fixture(scope="module")
def knee() -> tuple[np.ndarray, object]:
    grid = knee_grid(0.9)
    tissue, _ = build_knee(grid, Anatomy(scale=0.9, flexion_deg=4.0, left=False))
    return signal_table("pd_fs")[tissue], grid


@pytest.mark.parametrize(
    ("plane", "matrix", "slices", "thickness", "gap"),
    [
        ("sagittal", 64, 20, 3.0, 0.0),
        ("coronal", 96, 17, 3.7, 0.3),
        ("axial", 128, 24, 4.0, 0.5),
        ("sagittal", 100, 9, 1.0, 0.0),  # running mean of width 1: no smoothing
    ],
)
def test_resample_equals_the_torch_version(
    knee: tuple[np.ndarray, object],
    plane: str,
    matrix: int,
    slices: int,
    thickness: float,
    gap: float,
) -> None:
    signal, grid = knee
    geometry = stack_geometry(
        plane, np.array([1.0, 3.0, -2.0]), 150.0, matrix, slices, thickness, gap
    )
    ours = resample(signal, grid, geometry)  # type: ignore[arg-type]
    assert ours.dtype == np.float32 and ours.shape == geometry.shape and ours.flags.c_contiguous
    np.testing.assert_array_max_ulp(ours, former_resample(signal, grid, geometry), maxulp=2)  # type: ignore[arg-type]


def test_resampled_masks_threshold_alike(knee: tuple[np.ndarray, object]) -> None:
    signal, grid = knee
    mask = (signal > np.percentile(signal, 90)).astype(np.float32)
    geometry = stack_geometry("coronal", np.zeros(3), 140.0, 64, 30, 3.5, 0.0)
    ours = resample(mask, grid, geometry) >= np.float32(0.3)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ours, former_resample(mask, grid, geometry) >= 0.3)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 9])
@pytest.mark.parametrize("shape", [(5, 16, 16), (7, 33, 35)])
def test_rician_equals_the_torch_version(seed: int, shape: tuple[int, int, int]) -> None:
    signal = np.random.default_rng(seed).random(shape, dtype=np.float32)
    rng_a, rng_b = np.random.default_rng(seed + 100), np.random.default_rng(seed + 100)
    ours, theirs = rician(signal, 0.03, rng_a), former_rician(signal, 0.03, rng_b)
    assert ours.dtype == np.float32 and ours.shape == shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7)
    assert rng_a.integers(1000) == rng_b.integers(1000)  # one draw from rng each


def test_rician_is_a_magnitude_with_the_given_spread() -> None:
    noisy = rician(np.zeros((4, 64, 64), np.float32), 2.0, np.random.default_rng(0))
    assert noisy.min() >= 0
    # Rayleigh: mean sigma * sqrt(pi / 2)
    assert abs(float(noisy.mean()) - 2.0 * np.sqrt(np.pi / 2)) < 0.05
