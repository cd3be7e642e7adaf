"""The periodic anti-aliased resize against ``F.interpolate`` (its definition)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_elnet.transforms.resample import (
    axis_plan,
    reference_resize,
    resize,
    resize_finite,
    resize_weights,
)


def _volume(shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random(shape) * 2000).astype(np.float32))


# Scanner matrices (and a few odd ones: no period, one axis unchanged, growing).
SIZES = [
    (416, 416),
    (512, 512),
    (448, 448),
    (480, 480),
    (352, 352),
    (320, 320),
    (384, 384),
    (288, 288),
    (400, 400),
    (416, 512),
    (512, 320),
    (300, 300),
    (270, 512),
    (256, 416),
    (416, 256),
    (128, 128),
    (200, 200),
]


@pytest.mark.parametrize("shape", SIZES)
def test_equals_f_interpolate(shape: tuple[int, int]) -> None:
    volume = _volume((3, *shape))
    expected = reference_resize(volume, (256, 256))
    assert torch.equal(resize_finite(volume, (256, 256)), expected)
    assert torch.equal(resize(volume, (256, 256)), expected)


@pytest.mark.parametrize("shape", [(640, 640), (768, 768), (1024, 1024)])
def test_long_kernels_stay_within_rounding(shape: tuple[int, int]) -> None:
    """Five to eight taps: the convolution may sum them in another order (last bit only)."""
    volume = _volume((2, *shape), seed=1)
    torch.testing.assert_close(
        resize_finite(volume, (256, 256)), reference_resize(volume, (256, 256)), rtol=1e-6, atol=0
    )


def test_plan_of_the_benchmark_series() -> None:
    plan = axis_plan(416, 256)
    assert plan is not None
    assert (plan.period_in, plan.period_out, plan.reach) == (13, 8, 1)
    assert plan.interior == (1, 31)  # the first and the last period are renormalized
    assert [o for o, _ in plan.borders] == [*range(8), *range(248, 256)]
    assert tuple(plan.kernel.shape) == (8, 13, 1, 3)


def test_no_plan_without_a_short_period() -> None:
    assert axis_plan(300, 256) is None  # 64 outputs per period
    assert axis_plan(260, 256) is None
    assert axis_plan(512, 256) is not None


def test_weights_are_torchs_and_sum_to_one() -> None:
    weights = resize_weights(416, 256)
    assert tuple(weights.shape) == (416, 256)
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(256), rtol=1e-6, atol=0)
    row = torch.zeros(1, 1, 416)
    row[0, 0, 200] = 1.0
    assert torch.equal(reference_resize(row, (1, 256))[0, 0], weights[200])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_resize_as_f_interpolate_does(bad: float) -> None:
    volume = _volume((2, 416, 416), seed=2)
    volume[1, 100, 200] = bad
    torch.testing.assert_close(
        resize(volume, (256, 256)),
        reference_resize(volume, (256, 256)),
        rtol=0,
        atol=0,
        equal_nan=True,
    )


def test_constant_slices_stay_constant() -> None:
    volume = torch.stack([torch.full((416, 448), v) for v in (1.0, 7.5)])
    out = resize(volume, (256, 256))
    assert tuple(out.shape) == (2, 256, 256)
    torch.testing.assert_close(out[1], torch.full((256, 256), 7.5), rtol=1e-6, atol=0)
