"""The periodic anti-aliased resize against ``F.interpolate`` (its definition): torch's own passes
bit for bit, in the other order within float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_elnet.transforms.resample import (
    axis_plan,
    height_pass,
    reference_resize,
    resize,
    resize_finite,
    resize_weights,
)


def _volume(shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random(shape) * 2000).astype(np.float32))


def _torch_height_first(volume: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """F.interpolate's own passes, the height first: what resize_finite computes where the height
    has a plan."""
    if axis_plan(volume.shape[1], size[0]) is None:
        return reference_resize(volume, size)
    tall = reference_resize(volume, (size[0], volume.shape[2]))
    return tall if tall.shape[2] == size[1] else reference_resize(tall, size)


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
def test_equals_torchs_passes_height_first(shape: tuple[int, int]) -> None:
    volume = _volume((3, *shape))
    expected = _torch_height_first(volume, (256, 256))
    assert torch.equal(resize_finite(volume, (256, 256)), expected)
    assert torch.equal(resize(volume, (256, 256)), expected)


@pytest.mark.parametrize("shape", SIZES)
def test_is_f_interpolate_within_float32_rounding(shape: tuple[int, int]) -> None:
    """The same weights, the two sums rounded in the other order: a few float32 roundings."""
    volume = _volume((3, *shape), seed=5)
    got, expected = resize_finite(volume, (256, 256)), reference_resize(volume, (256, 256))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    if axis_plan(shape[0], 256) is None or shape[1] == 256:
        assert torch.equal(got, expected)  # one pass, or F.interpolate's own order


@pytest.mark.parametrize("n_in", [416, 512, 448, 320, 128])
def test_height_pass_is_torchs_bit_for_bit(n_in: int) -> None:
    plan = axis_plan(n_in, 256)
    assert plan is not None
    volume = _volume((2, n_in, 37), seed=n_in)
    assert torch.equal(height_pass(volume, plan), reference_resize(volume, (256, 37)))


@pytest.mark.parametrize("shape", [(640, 640), (768, 768), (1024, 1024), (512, 416)])
def test_longer_supports_and_growing_axes(shape: tuple[int, int]) -> None:
    """Five to eight taps per output (no plan: F.interpolate), and an axis that grows."""
    volume = _volume((2, *shape), seed=1)
    for size in ((256, 256), (300, 128)):
        assert torch.equal(resize_finite(volume, size), _torch_height_first(volume, size))


def test_slices_of_one_row_and_an_unchanged_height() -> None:
    volume = _volume((2, 256, 416), seed=3)
    assert torch.equal(resize(volume, (256, 256)), reference_resize(volume, (256, 256)))
    columns = _volume((1, 512, 3), seed=4)
    assert torch.equal(resize(columns, (256, 3)), reference_resize(columns, (256, 3)))


def test_plan_of_the_benchmark_series() -> None:
    plan = axis_plan(416, 256)
    assert plan is not None
    assert (plan.period_in, plan.period_out, plan.reach) == (13, 8, 1)
    assert plan.interior == (1, 31)  # the first and the last period are renormalized
    # Periods 0 and 31 from F.interpolate of the first and the last two periods of input.
    assert plan.borders == ((0, 1, 2), (31, 32, 2))
    # Output 3 of a period: three taps around its centre 13 * m + 5.375 (inputs 4-6 of it).
    assert [offset for offset, _ in plan.taps[3]] == [4, 5, 6]
    assert sum(w for _, w in plan.taps[3]) == pytest.approx(1.0, abs=1e-6)


def test_no_plan_without_a_short_period() -> None:
    assert axis_plan(300, 256) is None  # 64 outputs per period
    assert axis_plan(260, 256) is None
    assert axis_plan(512, 256) is not None


@pytest.mark.parametrize("n_in", [288, 320, 352, 384, 416, 448, 480, 512])
def test_scanner_matrices_have_plans(n_in: int) -> None:
    """The passes (not F.interpolate) resize every common matrix on this build."""
    assert axis_plan(n_in, 256) is not None


def test_weights_are_torchs_and_sum_to_one() -> None:
    weights = resize_weights(416, 256)
    assert tuple(weights.shape) == (416, 256)
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(256), rtol=1e-6, atol=0)
    row = torch.zeros(1, 1, 416)
    row[0, 0, 200] = 1.0
    assert torch.equal(reference_resize(row, (1, 256))[0, 0], weights[200])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("row", [0, 100, 101, 415])
def test_non_finite_values_resize_as_f_interpolate_does(bad: float, row: int) -> None:
    volume = _volume((2, 416, 416), seed=2)
    volume[1, row, 200] = bad
    expected = reference_resize(volume, (256, 256))
    torch.testing.assert_close(resize(volume, (256, 256)), expected, rtol=0, atol=0, equal_nan=True)
    # The unchecked passes differ only in the slice holding it.
    unchecked = resize_finite(volume, (256, 256))
    assert torch.equal(unchecked[0], _torch_height_first(volume, (256, 256))[0])


def test_constant_slices_stay_constant() -> None:
    volume = torch.stack([torch.full((416, 448), v) for v in (1.0, 7.5)])
    out = resize(volume, (256, 256))
    assert tuple(out.shape) == (2, 256, 256)
    torch.testing.assert_close(out[1], torch.full((256, 256), 7.5), rtol=1e-6, atol=0)
