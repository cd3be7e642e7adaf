"""The shared preprocessing path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.transforms.intensity import fit_landmarks, standardize
from napari_elnet.transforms.preprocess import (
    BRIGHT_PERCENTILE,
    _percentile,
    clip_bright,
    prepare_series,
    prepare_volume,
    resize_slices,
)


@pytest.mark.parametrize("shape", [(3, 512, 512), (1, 100, 300), (2, 256, 256)])
def test_output_shape_and_dtype(shape: tuple[int, int, int]) -> None:
    out = prepare_volume(np.random.default_rng(0).random(shape, dtype=np.float32) * 1000)
    assert tuple(out.shape) == (shape[0], 1, 256, 256)
    assert out.dtype == torch.float32


def test_resize_keeps_a_constant_slice_constant_and_the_slice_order() -> None:
    vol = np.stack([np.full((64, 80), v, np.float32) for v in (1.0, 2.0, 3.0)])
    out = resize_slices(vol)
    np.testing.assert_allclose(out.mean(dim=(1, 2)).numpy(), [1.0, 2.0, 3.0], rtol=1e-6)


def test_uses_the_model_landmarks() -> None:
    rng = np.random.default_rng(1)
    vol = (rng.random((2, 256, 256)) * 500).astype(np.float32)
    lm = fit_landmarks([vol**1.5])
    expected = standardize(clip_bright(vol), lm)
    np.testing.assert_allclose(prepare_volume(vol, lm)[:, 0].numpy(), expected, atol=1e-6)


def test_rejects_non_volume() -> None:
    with pytest.raises(ConfigurationError, match=r"\(S, H, W\).*\(4, 4\)"):
        prepare_volume(np.zeros((4, 4)))


def test_bright_outliers_do_not_change_the_input() -> None:
    rng = np.random.default_rng(0)
    volume = rng.uniform(0, 100, (4, 64, 64)).astype(np.float32)
    hot = volume.copy()
    hot[0, :4, :4] = 1e6  # 64 of 16384 voxels (0.4%): a coil hot spot, a vessel
    plain, spiked = prepare_volume(volume), prepare_volume(hot)
    assert float(spiked.max()) < 1.5 * float(plain.max())
    np.testing.assert_allclose(spiked[1:].numpy(), plain[1:].numpy(), atol=0.05)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 11), (2, 64, 64)])
def test_clip_value_is_numpys_percentile(shape: tuple[int, int, int]) -> None:
    volume = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    expected = np.percentile(volume, BRIGHT_PERCENTILE)
    assert clip_bright(volume).max() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_clip_bright_matches_the_mrnet_rule() -> None:
    volume = np.arange(1000, dtype=np.float32).reshape(1, 10, 100)
    clipped = clip_bright(volume)
    assert clipped.max() == pytest.approx(np.percentile(volume, BRIGHT_PERCENTILE), rel=1e-6)
    assert (clipped == volume)[volume <= clipped.max()].all()


@pytest.mark.parametrize(
    ("shape", "percentile", "integers"),
    [
        ((40, 256, 256), 99.5, False),
        ((40, 256, 256), 99.5, True),  # many ties
        ((3, 64, 64), 99.9, False),
        ((2, 256, 256), 50.0, False),  # not a tail: the full partition
        ((1, 7, 5), 99.5, False),
    ],
)
def test_percentile_from_the_tail_is_numpys(
    shape: tuple[int, int, int], percentile: float, integers: bool
) -> None:
    rng = np.random.default_rng(3)
    volume = rng.gamma(2.0, 100.0, size=shape).astype(np.float32)
    if integers:
        volume = np.round(volume / 50.0).astype(np.float32)
    expected = np.percentile(volume.astype(np.float64), percentile)
    assert _percentile(volume, percentile) == pytest.approx(expected, rel=1e-6)


def test_constant_volume_percentile() -> None:
    assert _percentile(np.full((4, 300, 300), 7.0, np.float32), 99.5) == 7.0


def test_prepared_series_is_shared_by_models_and_equals_prepare_volume() -> None:
    rng = np.random.default_rng(5)
    volume = (rng.random((6, 300, 200), dtype=np.float32) * 1000) ** 1.5
    first = fit_landmarks([clip_bright(resize_slices(volume).numpy())])
    second = fit_landmarks([clip_bright(resize_slices(volume * 0.5 + 3).numpy())])
    prepared = prepare_series(volume)
    assert prepared.clipped.shape == (6, 256, 256)
    np.testing.assert_array_equal(prepared.clipped, clip_bright(resize_slices(volume).numpy()))
    for landmarks in (first, second, None):
        torch.testing.assert_close(
            prepared.network_input(landmarks), prepare_volume(volume, landmarks), rtol=0, atol=0
        )
    # Both models use the default percentiles: the series' landmarks were computed once.
    assert len(prepared._landmarks) == 2  # the defaults and the fallback's 1st/99th
