"""torch_randn repeats torch.randn on the CPU (seeded generator) within float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_elnet.phantom.gaussian import torch_randn

SEEDS = (0, 1, 2**32 + 5, 123456789012345, 2**62 - 1)  # above 2**32: torch keeps the low 32 bits
SHAPES = ((16,), (17,), (31,), (1000,), (2, 37, 41), (2, 20, 128, 129))  # n % 16 != 0 but (16,)


def _reference(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).numpy()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_equals_torch_randn_within_float32_rounding(seed: int, shape: tuple[int, ...]) -> None:
    ours, theirs = torch_randn(seed, shape), _reference(seed, shape)
    assert ours.dtype == np.float32 and ours.shape == shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)
    if ours.size >= 1000:  # most values bit for bit: the same uniforms, pairs and formulas
        assert np.mean(ours == theirs) > 0.8


def test_the_tail_is_redrawn_as_torch_does() -> None:
    """With n % 16 != 0 the last 16 values come from 16 fresh uniforms; the first n - 16 do not
    change when n grows within a block."""
    a, b = torch_randn(7, (40,)), torch_randn(7, (48,))
    np.testing.assert_array_equal(a[:24], b[:24])
    assert not np.allclose(a[24:], b[24:40])
    np.testing.assert_allclose(a, _reference(7, (40,)), rtol=0, atol=2e-6)


def test_seeds_equal_modulo_2_to_the_32_give_the_same_values() -> None:
    np.testing.assert_array_equal(torch_randn(3, (64,)), torch_randn(3 + 2**32, (64,)))


def test_refuses_fewer_than_16_values_and_negative_seeds() -> None:
    with pytest.raises(ValueError, match="at least 16 values"):
        torch_randn(0, (3, 5))
    with pytest.raises(ValueError, match="seed must be >= 0"):
        torch_randn(-1, (16,))
