"""Augmentation: shape, seeding, one transform for all slices, quarter turns only axial/coronal."""

from __future__ import annotations

import pytest
import torch

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.transforms.augment import (
    AugmentConfig,
    AugmentParams,
    apply_params,
    augment,
    draw_params,
)

IDENTITY = AugmentParams(quarter_turns=0, angle=0.0, scale=1.0, flip=False, shift=(0.0, 0.0))


def _volume(slices: int = 3, size: int = 32) -> torch.Tensor:
    x = torch.zeros(slices, 1, size, size)
    x[:, :, 4:10, 20:26] = 1.0  # an off-centre square, the same on every slice
    return x + torch.arange(slices, dtype=torch.float32)[:, None, None, None] * 0.01


def test_shape_and_dtype_are_kept() -> None:
    x = _volume()
    out = augment(x, "axial", torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 32, 32)
    assert out.dtype == torch.float32


def test_same_seed_same_result_different_seed_different() -> None:
    x = _volume()
    a = augment(x, "coronal", torch.Generator().manual_seed(7))
    b = augment(x, "coronal", torch.Generator().manual_seed(7))
    c = augment(x, "coronal", torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_global_rng_untouched() -> None:
    state = torch.get_rng_state()
    augment(_volume(), "axial", torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)


def test_identity_parameters_change_nothing() -> None:
    x = _volume()
    torch.testing.assert_close(apply_params(x, IDENTITY), x, atol=1e-5, rtol=0)


def test_all_slices_get_the_same_transform() -> None:
    x = _volume().expand(3, 1, 32, 32).clone()
    x[:] = x[0]  # identical slices must stay identical
    out = augment(x, "axial", torch.Generator().manual_seed(3))
    assert not torch.equal(out[0], x[0])
    assert torch.equal(out[1], out[0])
    assert torch.equal(out[2], out[0])


def test_horizontal_flip_mirrors_columns() -> None:
    x = _volume()
    flipped = apply_params(x, AugmentParams(0, 0.0, 1.0, True, (0.0, 0.0)))
    torch.testing.assert_close(flipped, torch.flip(x, dims=(3,)), atol=1e-5, rtol=0)


def test_quarter_turn_is_exact_rot90() -> None:
    x = _volume()
    turned = apply_params(x, AugmentParams(1, 0.0, 1.0, False, (0.0, 0.0)))
    torch.testing.assert_close(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_uncovered_pixels_take_the_volume_minimum() -> None:
    x = _volume() + 5.0
    shifted = apply_params(x, AugmentParams(0, 0.0, 1.0, False, (1.0, 0.0)))  # half a width
    assert float(shifted[0, 0, 16, 31]) == pytest.approx(float(x.amin()), abs=1e-5)


@pytest.mark.parametrize(
    ("plane", "turns_seen"), [("axial", True), ("coronal", True), ("sagittal", False)]
)
def test_quarter_turns_only_for_axial_and_coronal(plane: str, turns_seen: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    turns = {draw_params(plane, generator).quarter_turns for _ in range(40)}
    assert turns == ({0, 1, 2, 3} if turns_seen else {0})


def test_parameters_stay_in_range() -> None:
    generator = torch.Generator().manual_seed(1)
    config = AugmentConfig()
    draws = [draw_params("sagittal", generator, config) for _ in range(200)]
    assert max(abs(d.angle) for d in draws) <= 10.0
    assert min(d.scale for d in draws) >= 0.9 and max(d.scale for d in draws) <= 1.1
    assert max(abs(s) for d in draws for s in d.shift) <= 0.2
    assert 60 < sum(d.flip for d in draws) < 140


def test_bad_input_and_config_are_refused() -> None:
    with pytest.raises(
        ConfigurationError, match=r"expected a \(S, 1, H, W\) series, got \(3, 32, 32\)"
    ):
        augment(torch.zeros(3, 32, 32), "axial", torch.Generator())
    with pytest.raises(ConfigurationError, match="scale must be 0 < low <= high"):
        AugmentConfig(scale=(1.2, 1.1))
