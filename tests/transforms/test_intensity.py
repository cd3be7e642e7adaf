"""Nyul-Udupa intensity standardization."""

from __future__ import annotations

import numpy as np
import pytest
from support.former_preprocessing import former_map_to_standard

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.transforms.intensity import (
    DEFAULT_PERCENTILES,
    FALLBACK_LANDMARKS,
    Landmarks,
    fit_landmarks,
    foreground,
    map_to_standard,
    standardize,
    volume_landmarks,
)


def _volume(rng: np.random.Generator, scale: float, offset: float) -> np.ndarray:
    """Background of zeros plus a two-tissue foreground, linearly rescaled by a 'scanner'."""
    vol = np.zeros((4, 32, 32), np.float32)
    vol[:, 8:24, 8:24] = rng.normal(100, 5, (4, 16, 16))
    vol[:, 12:20, 12:20] = rng.normal(300, 10, (4, 8, 8))
    return vol * scale + offset


def test_fit_gives_increasing_standard_scale_from_0_to_1() -> None:
    rng = np.random.default_rng(0)
    lm = fit_landmarks([_volume(rng, 1.0, 0.0), _volume(rng, 2.0, 10.0)])
    assert lm.percentiles == DEFAULT_PERCENTILES
    assert lm.standard[0] == 0.0 and lm.standard[-1] == 1.0
    assert np.all(np.diff(lm.standard) >= 0)


def test_linearly_rescaled_scanners_standardize_to_the_same_values() -> None:
    rng = np.random.default_rng(1)
    base = _volume(rng, 1.0, 0.0)
    lm = fit_landmarks([base])
    a = standardize(base, lm)
    b = standardize(base * 3.7 + 42.0, lm)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_landmarks_map_onto_standard_positions() -> None:
    rng = np.random.default_rng(2)
    vol = _volume(rng, 1.0, 0.0)
    lm = fit_landmarks([vol])
    out = standardize(vol, lm)
    mapped = volume_landmarks(out, lm.percentiles)
    np.testing.assert_allclose(mapped, lm.standard, atol=2e-3)


def test_values_beyond_landmarks_are_extrapolated_not_clipped() -> None:
    rng = np.random.default_rng(3)
    vol = _volume(rng, 1.0, 0.0)
    out = standardize(vol, fit_landmarks([vol]))
    assert out.max() > 1.0  # brightest 1% of the foreground lies above the last landmark
    assert out.min() < 0.0  # background lies below the first landmark


def test_fallback_maps_1st_and_99th_percentile_to_0_and_1() -> None:
    rng = np.random.default_rng(4)
    vol = _volume(rng, 5.0, -7.0)
    out = standardize(vol, None)
    np.testing.assert_allclose(
        volume_landmarks(out, FALLBACK_LANDMARKS.percentiles), [0, 1], atol=1e-3
    )


def test_constant_volume_gives_zeros() -> None:
    out = standardize(np.full((2, 8, 8), 7.0), None)
    assert out.dtype == np.float32
    assert np.count_nonzero(out) == 0


def test_roundtrip_dict() -> None:
    lm = Landmarks((1.0, 50.0, 99.0), (0.0, 0.3, 1.0))
    assert Landmarks.from_dict(lm.to_dict()) == lm


@pytest.mark.parametrize(
    ("percentiles", "standard", "message"),
    [
        ((50.0,), (0.0,), ">= 2 percentiles"),
        ((10.0, 5.0), (0.0, 1.0), "increase"),
        ((1.0, 99.0), (1.0, 0.0), "not decrease"),
    ],
)
def test_invalid_landmarks_are_rejected(percentiles, standard, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Landmarks(percentiles, standard)


def test_fit_without_usable_volume_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="non-constant"):
        fit_landmarks([np.zeros((2, 4, 4))])


def _reference_standardize(volume: np.ndarray, landmarks: Landmarks) -> np.ndarray:
    """The former implementation: np.interp inside the landmarks, two np.where for the ends."""
    volume = np.asarray(volume, dtype=np.float32)
    source = volume_landmarks(volume, landmarks.percentiles)
    target = np.asarray(landmarks.standard, dtype=np.float64)
    if source[-1] <= source[0]:
        return np.zeros_like(volume)
    source = np.maximum.accumulate(
        source + np.arange(source.size) * 1e-6 * (source[-1] - source[0])
    )
    out = np.interp(volume, source, target)
    low_slope = (target[1] - target[0]) / (source[1] - source[0])
    high_slope = (target[-1] - target[-2]) / (source[-1] - source[-2])
    out = np.where(volume < source[0], target[0] + (volume - source[0]) * low_slope, out)
    out = np.where(volume > source[-1], target[-1] + (volume - source[-1]) * high_slope, out)
    return out.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fallback", [False, True])
def test_one_interp_pass_gives_the_former_values(seed: int, fallback: bool) -> None:
    rng = np.random.default_rng(seed)
    volume = _volume(rng, 1.0 + seed, 5.0 * seed)
    volume[0, 0, :4] = [-50.0, 1e4, 0.5, 7e3]  # far below and above the end landmarks
    landmarks = FALLBACK_LANDMARKS if fallback else fit_landmarks([_volume(rng, 1.0, 0.0)])
    expected = _reference_standardize(volume, landmarks)
    got = standardize(volume, landmarks)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_map_to_standard_checks_the_landmark_count() -> None:
    with pytest.raises(ConfigurationError, match="2 source landmarks for 11 standard values"):
        map_to_standard(np.zeros(3, np.float32), np.array([0.0, 1.0]), Landmarks())


def _volumes_of_every_kind() -> list[np.ndarray]:
    """float32 volumes: a knee-like one, ties, constant, signed, zeros of both signs, 1 slice, tiny."""
    rng = np.random.default_rng(21)
    knee = _volume(rng, 1.0, 0.0)
    ties = np.round(_volume(rng, 0.05, 0.0))
    signed = rng.normal(0.0, 50.0, (3, 20, 30))
    zeros = np.where(rng.random((2, 9, 9)) < 0.5, -0.0, 0.0) + np.round(rng.normal(size=(2, 9, 9)))
    return [
        np.asarray(v, dtype=np.float32)
        for v in (
            knee,
            ties,
            np.full((2, 8, 8), 7.0),
            signed,
            zeros,
            rng.gamma(2.0, 100.0, (1, 64, 48)),
            rng.random((1, 1, 1)),
            rng.random((1, 2, 3)),
        )
    ]


@pytest.mark.parametrize("percentiles", [DEFAULT_PERCENTILES, FALLBACK_LANDMARKS.percentiles])
def test_volume_landmarks_are_numpys_percentiles_of_the_foreground(
    percentiles: tuple[float, ...],
) -> None:
    for volume in _volumes_of_every_kind():
        expected = np.percentile(foreground(volume), list(percentiles)).astype(np.float64)
        got = volume_landmarks(volume, percentiles)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expected)


def test_volume_landmarks_of_a_volume_with_nan_are_numpys() -> None:
    volume = _volume(np.random.default_rng(4), 1.0, 0.0)
    volume[1, 2, 3] = np.nan
    expected = np.percentile(foreground(volume), list(DEFAULT_PERCENTILES))
    np.testing.assert_array_equal(volume_landmarks(volume, DEFAULT_PERCENTILES), expected)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fallback", [False, True])
def test_map_to_standard_is_the_former_np_interp_within_float32_rounding(
    workers: int, fallback: bool
) -> None:
    """The float32 evaluation (interp_single) against the former float64 np.interp: a few float32
    roundings of the standard scale (which runs 0..1, extrapolated beyond)."""
    rng = np.random.default_rng(8)
    learned = fit_landmarks([_volume(rng, 1.0, 0.0), _volume(rng, 1.3, 2.0)])
    landmarks = FALLBACK_LANDMARKS if fallback else learned
    for volume in _volumes_of_every_kind():
        source = volume_landmarks(volume, landmarks.percentiles)
        expected = former_map_to_standard(volume, source, landmarks)
        got = map_to_standard(volume, source, landmarks, workers=workers)
        assert got.dtype == np.float32
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        np.testing.assert_allclose(got, expected, rtol=0, atol=8 * np.finfo(np.float32).eps * scale)
