"""Applicability: description fit, storage in the model file, the gates in the triage."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_elnet.common.errors import ModelFileError
from napari_elnet.common.series import Series
from napari_elnet.inference.applicability import (
    DESCRIPTION_VERSION,
    GHOST_MARGIN,
    MIN_SHRINKAGE,
    THRESHOLD_FOLDS,
    UNKNOWN,
    Applicability,
    SeriesStats,
    TrainingDescription,
    acquired_grain,
    assess,
    capture_features,
    describe_cases,
    description_of,
    fit_description,
    image_reasons,
    image_statistics,
    intensity_profile,
    ledoit_wolf,
)
from napari_elnet.inference.raw_statistics import raw_image_statistics, raw_intensity_profile
from napari_elnet.inference.triage import run_triage
from napari_elnet.models.model_file import (
    LoadedModel,
    ModelInfo,
    build_model,
    load_model,
    save_model,
)
from napari_elnet.transforms.preprocess import prepare_series, prepare_volume


class _Case:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def volume(self) -> np.ndarray:
        return self.array


def _knee_like(rng: np.random.Generator, slices: int = 3, size: int = 64) -> np.ndarray:
    """A bright disc with a dark core on a dark background, some noise and scanner scale."""
    yy, xx = np.mgrid[:size, :size] - size / 2
    radius = np.hypot(yy, xx)
    image = np.where(radius < size * 0.35, 0.8, 0.05) - np.where(radius < size * 0.15, 0.5, 0.0)
    volume = np.repeat(image[None], slices, 0) + rng.normal(0, 0.03, (slices, size, size))
    return (np.abs(volume) * rng.uniform(500, 2000)).astype(np.float32)


def _heavy_noise(volume: np.ndarray, rng: np.random.Generator, level: float) -> np.ndarray:
    """Rician noise of sigma ``level`` x the volume's 99th percentile."""
    sigma = level * float(np.percentile(volume, 99))
    real = volume + rng.normal(0, sigma, volume.shape)
    return np.hypot(real, rng.normal(0, sigma, volume.shape)).astype(np.float32)


def _ghosted(volume: np.ndarray, axis: int, shift: float = 0.04, period: int = 4) -> np.ndarray:
    """Motion ghosting: every ``period``-th phase-encoding line (along ``axis``) acquired with
    the object moved by ``shift`` of the field of view."""
    n = volume.shape[axis]
    k = np.fft.fft(volume, axis=axis)
    ramp = np.exp(-2j * np.pi * np.fft.fftfreq(n) * shift * n)
    ramp[np.arange(n) % period != 0] = 1
    shape = [1, 1, 1]
    shape[axis] = n
    return np.abs(np.fft.ifft(k * ramp.reshape(shape), axis=axis)).astype(np.float32)


def _inverted(rng: np.random.Generator) -> np.ndarray:
    """Another contrast: the same shapes with the intensities turned around."""
    volume = _knee_like(rng)
    return (volume.max() - volume).astype(np.float32)


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """A k=1 axial model whose file carries a description fit on knee-like volumes."""
    rng = np.random.default_rng(0)
    info = ModelInfo(task="acl", plane="axial", k=1)
    model = build_model(info, seed=1).eval()
    fit = [_Case(_knee_like(rng)) for _ in range(16)]
    held = [_Case(_knee_like(rng)) for _ in range(8)]
    steps = describe_cases(model, None, fit, held)
    progress = []
    try:
        while True:
            progress.append(next(steps))
    except StopIteration as stop:
        description = stop.value
    assert progress[-1] == (24, 24)
    path = tmp_path_factory.mktemp("models") / "acl.pt"
    return load_model(save_model(path, model, info, description.to_payload()))


def _series(array: np.ndarray, plane: str = "axial", number: int = 1) -> Series:
    return Series(array=array, plane=plane, number=number, description=plane, uid=f"u{number}")


def test_ledoit_wolf_shrinks_towards_a_scaled_identity() -> None:
    rng = np.random.default_rng(0)
    white = rng.normal(size=(40, 10))
    covariance, shrinkage = ledoit_wolf(white)
    assert 0.5 < shrinkage <= 1.0  # white noise: the sample covariance is mostly estimation noise
    np.testing.assert_allclose(covariance, covariance.T)
    assert np.linalg.eigvalsh(covariance).min() > 0
    correlated = rng.normal(size=(2000, 1)) * np.ones((1, 10)) + 0.1 * rng.normal(size=(2000, 10))
    _, strong = ledoit_wolf(correlated)
    assert strong < 0.05  # a clear structure and many samples: little shrinkage
    # The estimate with shrinkage a is (1 - a) S + a mu I with S the biased sample covariance.
    centred = white - white.mean(0)
    sample = centred.T @ centred / len(white)
    mu = np.trace(sample) / 10
    np.testing.assert_allclose(covariance, (1 - shrinkage) * sample + shrinkage * mu * np.eye(10))


def test_features_without_spread_give_a_unit_covariance_and_a_finite_description() -> None:
    # A barely trained model can give every training series the same features (cross-validation
    # folds of a few cases): the description must still be fit, and any departure counts.
    same = np.ones((3, 6))
    covariance, shrinkage = ledoit_wolf(same)
    np.testing.assert_array_equal(covariance, np.eye(6))
    assert shrinkage == 1.0
    profile = np.linspace(0, 1, 11)
    fit = [SeriesStats((20, 256, 256), profile, np.ones(6)) for _ in range(3)]
    held = [SeriesStats((20, 256, 256), profile, np.ones(6))]
    description = fit_description(fit, held)
    assert np.isfinite(description.precision).all()
    assert description.distance(np.ones(6)) == pytest.approx(0.0)
    assert description.distance(np.ones(6) + 0.5) > description.threshold
    # Two series (a fold of a tiny data set): the closed form gives no shrinkage, the floor does.
    rng = np.random.default_rng(3)
    two = [SeriesStats((20, 256, 256), profile, rng.normal(size=6)) for _ in range(2)]
    assert ledoit_wolf(np.stack([s.features for s in two]))[1] == MIN_SHRINKAGE
    assert np.isfinite(fit_description(two, held).precision).all()


def test_threshold_is_the_quantile_of_held_out_and_out_of_fold_distances() -> None:
    rng = np.random.default_rng(1)
    profile = np.linspace(0, 1, 11)

    def stats(features: np.ndarray) -> SeriesStats:
        return SeriesStats((20, 256, 256), profile + rng.normal(0, 0.01, 11), features)

    fit = [stats(rng.normal(size=8)) for _ in range(200)]
    held = [stats(rng.normal(size=8)) for _ in range(100)]
    description = fit_description(fit, held, quantile=0.9)
    distances = [description.distance(s.features) for s in held]
    for k in range(THRESHOLD_FOLDS):  # each training series against a fit without its fold
        others = [s for i, s in enumerate(fit) if i % THRESHOLD_FOLDS != k]
        without = fit_description(others, held)
        distances += [without.distance(s.features) for s in fit[k::THRESHOLD_FOLDS]]
    assert len(distances) == description.n_threshold == 300
    assert description.threshold == pytest.approx(np.quantile(distances, 0.9))
    # out of fold, training series lie farther than in a fit that includes them
    inside = np.median([description.distance(s.features) for s in fit])
    assert np.median(distances[100:]) > inside
    assert description.distance(np.full(8, 6.0)) > 3 * description.threshold
    assert description.checks.slices == (10, 40)
    assert description.checks.min_size == 128
    with pytest.raises(ModelFileError, match="needs >= 2 training"):
        fit_description(fit[:1], held)


def test_intensity_profile_ignores_scale_but_not_contrast() -> None:
    rng = np.random.default_rng(2)
    volume = _knee_like(rng)
    np.testing.assert_allclose(
        intensity_profile(volume), intensity_profile(volume * 7.5), atol=1e-6
    )
    assert np.abs(intensity_profile(volume) - intensity_profile(_inverted(rng))).max() > 0.05
    assert not intensity_profile(np.zeros((3, 8, 8), np.float32)).any()


def test_description_round_trips_through_the_model_file(described: LoadedModel) -> None:
    description = description_of(described)
    assert description is not None
    assert description.mean.shape == (16,) and description.precision.shape == (16, 16)
    assert description.n_fit == 16 and description.n_threshold == 8 + 16  # held out + out of fold
    again = load_model(described.path)  # type: ignore[arg-type]
    np.testing.assert_array_equal(description_of(again).precision, description.precision)  # type: ignore[union-attr]


def test_files_without_description_say_unknown(tmp_path: Path) -> None:
    info = ModelInfo(task="acl", plane="axial", k=1)
    old = load_model(save_model(tmp_path / "old.pt", build_model(info, seed=1), info))
    assert old.applicability is None and description_of(old) is None
    (result,) = run_triage([_series(_knee_like(np.random.default_rng(3)))], [old], device="cpu")
    assert result.applicability == UNKNOWN and result.applicable is None
    assert result.probability is not None  # unknown is not a refusal
    assert result.summary()["applicable"] is None


def test_invalid_description_is_a_model_file_error(tmp_path: Path, described: LoadedModel) -> None:
    payload = dict(described.applicability or {})
    payload["precision"] = torch.zeros(3, 3, dtype=torch.float64)
    path = save_model(tmp_path / "bad.pt", described.model, described.info, payload)
    with pytest.raises(ModelFileError, match=r"bad\.pt: invalid applicability description"):
        description_of(load_model(path))


def test_features_captured_from_the_triage_forward_equal_the_plain_ones(
    described: LoadedModel,
) -> None:
    from napari_elnet.inference.fullgrad import explain
    from napari_elnet.transforms.preprocess import prepare_volume

    x = prepare_volume(_knee_like(np.random.default_rng(4)))
    with capture_features(described.model) as captured:
        explain(described.model, x)
    with torch.no_grad():
        plain = described.model.features(x)
    assert len(captured) == 1
    torch.testing.assert_close(captured[0], plain, rtol=1e-4, atol=1e-5)
    with capture_features(described.model) as after:
        pass
    described.model(x)
    assert after == []  # the hook is gone after the block


def test_triage_gives_in_distribution_series_a_probability(described: LoadedModel) -> None:
    rng = np.random.default_rng(5)
    accepted = 0
    for i in range(5):
        (result,) = run_triage([_series(_knee_like(rng), number=i)], [described], device="cpu")
        assert result.applicability.score is not None
        assert result.applicability.threshold == description_of(described).threshold  # type: ignore[union-attr]
        if result.applicable:
            accepted += 1
            assert result.probability is not None and result.heatmap is not None
    assert accepted >= 4


def test_distribution_gate_withholds_the_probability(described: LoadedModel) -> None:
    rng = np.random.default_rng(6)
    (result,) = run_triage([_series(_inverted(rng))], [described], device="cpu")
    assert result.applicable is False
    assert result.probability is None and result.score is None and result.decision is None
    assert result.heatmap is not None  # it ran; the widget hides the heatmap by default
    assert any("intensity profile" in r or "distance" in r for r in result.applicability.reasons)
    record = result.summary()
    assert record["probability"] is None and record["applicable"] is False
    assert record["applicability"]["threshold"] == result.applicability.threshold  # type: ignore[index]


def test_cheap_checks_refuse_tiny_and_short_series(described: LoadedModel) -> None:
    description = description_of(described)
    assert description is not None
    tiny = _knee_like(np.random.default_rng(7), size=16)
    verdict = assess(description, tiny, None)
    assert verdict.applicable is False
    assert any("in-plane size 16 px" in r for r in verdict.reasons)
    long = np.repeat(_knee_like(np.random.default_rng(8)), 3, axis=0)
    assert any("9 slices, outside the 1-6" in r for r in assess(description, long, None).reasons)


def test_plane_gate_and_explicit_choice_outside_the_plane(described: LoadedModel) -> None:
    rng = np.random.default_rng(9)
    sagittal = _series(_knee_like(rng), plane="sagittal")
    (missing,) = run_triage([sagittal], [described], device="cpu")
    assert missing.applicability == Applicability(False, reasons=("no axial series",))
    assert missing.probability is None and missing.heatmap is None and missing.relevance is None
    assert missing.top_slice is None and missing.series_index is None and missing.peak is None
    assert missing.timings == {}
    (forced,) = run_triage([sagittal], [described], device="cpu", overrides={"acl": 0})
    assert forced.applicability.outside_plane is True
    assert any("outside the model's plane" in r for r in forced.applicability.reasons)
    assert forced.summary()["applicability"]["outside_plane"] is True  # type: ignore[index]
    assert forced.heatmap is not None


def test_image_statistics_are_scale_free_and_rise_with_noise_and_ghosting() -> None:
    rng = np.random.default_rng(5)
    clean = np.stack([image_statistics(_knee_like(rng, 4, 128)) for _ in range(12)])
    top = clean.max(axis=0)
    volume = _knee_like(rng, 4, 128)
    np.testing.assert_allclose(image_statistics(volume), image_statistics(volume * 9), rtol=1e-4)
    # a new clean volume stays within the description's limits (ghosting: the largest clean
    # value times GHOST_MARGIN)
    assert (image_statistics(volume) <= top * np.array([1, GHOST_MARGIN, GHOST_MARGIN, 1])).all()
    assert image_statistics(_heavy_noise(volume, rng, 0.15))[0] > top[0]
    along_rows, along_columns = (
        image_statistics(_ghosted(volume, 1)),
        image_statistics(_ghosted(volume, 2)),
    )
    assert along_rows[1] > top[1] and along_columns[2] > top[2]
    constant = image_statistics(np.zeros((3, 32, 32), np.float32))
    assert constant.shape == (4,) and not constant.any()


def test_grain_finds_noise_the_floor_misses_in_a_256_px_series() -> None:
    # In a 256 px series nothing averages the noise away; a Rician floor of ~1.25 sigma in the
    # dark areas can stay below a training floor, while the grain rises with sigma.
    rng = np.random.default_rng(11)
    clean = np.stack([image_statistics(_knee_like(rng, 4, 256)) for _ in range(8)])
    volume = _knee_like(rng, 4, 256)
    levels = [image_statistics(_heavy_noise(volume, rng, x))[3] for x in (0.05, 0.1, 0.15)]
    assert levels[0] < levels[1] < levels[2]
    assert levels[2] > 2 * clean[:, 3].max()
    # Immerkaer's estimate: about the sigma of white Gaussian noise on a flat image
    flat = np.full((4, 256, 256), 100.0, np.float32) + rng.normal(0, 5.0, (4, 256, 256))
    prepared = prepare_series(flat.astype(np.float32))
    top = float(np.percentile(_area_mean_2(prepared.clipped), 99))
    assert image_statistics(prepared)[3] * top == pytest.approx(5.0, rel=0.05)


def test_acquired_grain_measures_the_noise_at_the_series_own_matrix() -> None:
    rng = np.random.default_rng(12)
    # Immerkaer's estimate relative to the 99th percentile: sigma / p99 of white noise on a flat
    # image, whatever the scale
    flat = (np.full((4, 300, 300), 100.0) + rng.normal(0, 5.0, (4, 300, 300))).astype(np.float32)
    p99 = float(np.percentile(flat, 99))
    assert acquired_grain(flat) * p99 == pytest.approx(5.0, rel=0.05)
    assert acquired_grain(flat * 7) == pytest.approx(acquired_grain(flat), rel=1e-4)
    # Noise that the resize to 256 px averages away: at the network's scale (the grain) the noisy
    # 512 px series looks no grainier than a clean 256 px one, as acquired it does.
    clean_256 = _knee_like(rng, 4, 256)
    noisy_512 = _heavy_noise(_knee_like(rng, 4, 512), rng, 0.15)
    assert image_statistics(noisy_512)[3] < image_statistics(clean_256)[3]
    assert acquired_grain(noisy_512) > 2 * acquired_grain(clean_256)
    # degenerate series: zeros for nothing to measure, NaN (refused) for non-finite pixels
    assert acquired_grain(np.zeros((3, 40, 40), np.float32)) == 0.0
    assert acquired_grain(np.ones((2, 2, 9), np.float32)) == 0.0
    assert acquired_grain(np.ones((1, 0, 5), np.float32)) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no NumPy warning on the way
        for bad in (np.nan, np.inf, -np.inf):
            broken = clean_256.copy()
            broken[1, 5:200, 5] = bad
            assert not acquired_grain(broken) <= 1e9
        assert not acquired_grain(rng.random((3, 40, 40)) * 1e300) <= 1e9  # beyond float32
    huge = (np.full((2, 8, 8), 3e38) * rng.uniform(0.5, 1, (2, 8, 8))).astype(np.float32)
    assert 0 < acquired_grain(huge) == pytest.approx(acquired_grain(huge / 1e30), rel=1e-4)


def test_checks_refuse_noise_the_resize_averages_away(described: LoadedModel) -> None:
    description = description_of(described)
    assert description is not None and description.checks.image_limits is not None
    rng = np.random.default_rng(13)
    noisy = _heavy_noise(_knee_like(rng, 3, 512), rng, 0.15)
    reasons = description.checks.reasons(noisy)
    assert any("grainy as acquired" in r for r in reasons), reasons
    clean = description.checks.reasons(_knee_like(rng, 3, 512))  # (other reasons: 64 px training)
    assert not any("grainy as acquired" in r for r in clean), clean


def test_acquired_grains_given_for_resized_cases_set_the_limit() -> None:
    rng = np.random.default_rng(14)
    model = build_model(ModelInfo(task="acl", plane="axial", k=1), seed=1).eval()
    fit = [_Case(_knee_like(rng)) for _ in range(3)] + [_Case(np.zeros((3, 64, 64), np.float32))]
    held = [_Case(_knee_like(rng)) for _ in range(2)]

    def run(acquired: list[float] | None) -> TrainingDescription:
        steps = describe_cases(model, None, fit, held, acquired=acquired)
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    own = run(None).checks.image_limits
    assert own is not None
    assert own[4] == pytest.approx(max(acquired_grain(c.volume()) for c in (*fit, *held)))
    given = run([0.01, 0.02, 0.05, 0.03, 0.04, 0.02]).checks.image_limits
    assert given is not None and given[4] == 0.05 and given[:4] == own[:4]
    with pytest.raises(ValueError, match="5 acquired grains for 6 cases"):
        run([0.1] * 5)


def test_statistics_without_the_acquired_grain_give_a_version_4_description() -> None:
    rng = np.random.default_rng(15)

    def stats(image: np.ndarray) -> SeriesStats:
        return SeriesStats((3, 64, 64), np.linspace(0, 1, 7), rng.normal(size=8), image)

    fit = [stats(rng.uniform(0.01, 0.1, 4)) for _ in range(6)]
    description = fit_description(fit, fit[:2])
    assert description.version == 4 and len(description.checks.image_limits or ()) == 4
    assert json.loads(description.to_payload()["metadata"])["version"] == 4
    three = [stats(rng.uniform(0.01, 0.1, 3)) for _ in range(3)]
    old = fit_description(three, three[:1])  # prepared-series statistics: version 3, not 2
    assert old.version == 3 and not old.checks.raw_statistics
    two = [stats(rng.uniform(0.01, 0.1, 2)) for _ in range(3)]
    with pytest.raises(ModelFileError, match=r"\[2\] image statistics per series"):
        fit_description(two, two[:1])
    nan = stats(np.array([0.1, 0.1, 0.1, 0.1, np.nan]))
    five = [stats(rng.uniform(0.01, 0.1, 5)) for _ in range(3)]
    with pytest.raises(ModelFileError, match="non-finite image statistics"):
        fit_description([*five, nan], five[:1])


def _area_mean_2(x: np.ndarray) -> np.ndarray:
    return (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) * 0.25


def test_image_checks_refuse_noisy_and_ghosted_series(described: LoadedModel) -> None:
    description = description_of(described)
    assert description is not None and description.checks.image_limits is not None
    rng = np.random.default_rng(6)
    clean = _knee_like(rng)
    assert not description.checks.reasons(clean)
    noisy = description.checks.reasons(_heavy_noise(clean, rng, 0.15))
    assert any(r.startswith("image noise far above training") for r in noisy), noisy
    for axis, name in ((1, "rows"), (2, "columns")):
        ghosted = description.checks.reasons(_ghosted(clean, axis))
        assert any(
            r.startswith(f"ghosting unlike training: repeated edges along the {name}")
            for r in ghosted
        ), ghosted
    with torch.no_grad():
        features = described.model.features(prepare_volume(_heavy_noise(clean, rng, 0.15)))
    verdict = assess(description, _heavy_noise(clean, rng, 0.15), features)
    assert verdict.applicable is False


def _as_version(tmp_path: Path, described: LoadedModel, version: int) -> TrainingDescription:
    """``described``'s description written as an older ``version`` would have written it (version
    4: no acquired-grain limit; versions 2 and 3: no grain limit either; version 1: no image
    limits), saved and read back."""
    payload = dict(described.applicability or {})
    meta = json.loads(payload["metadata"])
    assert meta["version"] == DESCRIPTION_VERSION == 5 and len(meta["checks"]["image_limits"]) == 5
    meta["version"] = version
    if version == 1:
        del meta["checks"]["image_limits"]
    else:
        meta["checks"]["image_limits"] = meta["checks"]["image_limits"][: 4 if version == 4 else 3]
    old = dict(payload, metadata=json.dumps(meta))
    path = save_model(tmp_path / f"v{version}.pt", described.model, described.info, old)
    description = description_of(load_model(path))
    assert description is not None and description.version == version
    return description


def test_version_2_descriptions_load_with_their_image_limits(
    tmp_path: Path, described: LoadedModel
) -> None:
    description = _as_version(tmp_path, described, 2)  # limits fit on the raw series
    current = description_of(described)
    assert current is not None and not current.checks.raw_statistics
    assert description.checks == replace(
        current.checks,
        raw_statistics=True,
        image_limits=current.checks.image_limits[:3],  # type: ignore[index]
    )
    noisy = _heavy_noise(_knee_like(np.random.default_rng(7)), np.random.default_rng(8), 0.15)
    assert any(r.startswith("image noise") for r in description.checks.reasons(noisy))
    # its limits are checked against the statistics they were fit on: those of the raw series
    volume = _knee_like(np.random.default_rng(9), 4, 320)
    profile, values = description.checks.statistics(volume)
    np.testing.assert_array_equal(profile, raw_intensity_profile(volume))
    np.testing.assert_array_equal(values, raw_image_statistics(volume))  # type: ignore[arg-type]
    assert not np.allclose(values, current.checks.statistics(volume)[1][:3])  # type: ignore[index]
    assert json.loads(description.to_payload()["metadata"])["version"] == 2
    assert "raw_statistics" not in json.loads(description.to_payload()["metadata"])["checks"]


def test_version_3_descriptions_load_without_the_grain_limit(
    tmp_path: Path, described: LoadedModel
) -> None:
    description = _as_version(tmp_path, described, 3)
    assert not description.checks.raw_statistics  # prepared-series statistics, as fit
    limits = description.checks.image_limits
    assert limits is not None and len(limits) == 3
    grainy = np.array([0.0, 0.0, 0.0, 1e6])
    assert image_reasons(grainy, limits) == []  # no grain limit: the grain is not checked
    current = description_of(described)
    assert current is not None and current.checks.image_limits is not None
    assert image_reasons(grainy, current.checks.image_limits)[0].startswith("image noise far")
    assert json.loads(description.to_payload()["metadata"])["version"] == 3


def test_version_4_descriptions_load_without_the_acquired_grain_limit(
    tmp_path: Path, described: LoadedModel
) -> None:
    description = _as_version(tmp_path, described, 4)
    limits = description.checks.image_limits
    assert limits is not None and len(limits) == 4 and not description.checks.raw_statistics
    acquired_only = np.array([0.0, 0.0, 0.0, 0.0, 1e6])
    assert image_reasons(acquired_only, limits) == []
    current = description_of(described)
    assert current is not None and current.checks.image_limits is not None
    assert "grainy as acquired" in image_reasons(acquired_only, current.checks.image_limits)[0]
    # the statistic without a limit is not even computed
    _, values = description.checks.statistics(_knee_like(np.random.default_rng(3)))
    assert values is not None and len(values) == 4
    assert json.loads(description.to_payload()["metadata"])["version"] == 4


def test_version_1_descriptions_load_without_image_checks(
    tmp_path: Path, described: LoadedModel
) -> None:
    description = _as_version(tmp_path, described, 1)
    assert description.checks.image_limits is None
    noisy = _heavy_noise(_knee_like(np.random.default_rng(7)), np.random.default_rng(8), 0.15)
    assert not any(r.startswith("image noise") for r in description.checks.reasons(noisy))
    assert json.loads(description.to_payload()["metadata"])["version"] == 1


@pytest.mark.parametrize(
    ("version", "limits", "message"),
    [
        (3, None, "image_limits"),
        (2, None, "image_limits"),
        (1, [0.1, 0.1, 0.1], "image limits in a version 1 description"),
        (3, [0.1, 0.1], "2 image limits, expected 3"),
        (3, [0.1, 0.1, 0.1, 0.1], "4 image limits, expected 3"),
        (4, [0.1, 0.1, 0.1], "3 image limits, expected 4"),
        (4, [0.1, 0.1, 0.1, 0.1, 0.1], "5 image limits, expected 4"),
        (5, [0.1, 0.1, 0.1, 0.1], "4 image limits, expected 5"),
        (5, [0.1, 0.1, 0.1, 0.1, float("inf")], "not positive numbers"),
        (3, [0.1, 0.0, 0.1], "not positive numbers"),
        (4, [0.1, 0.1, 0.1, 0.0], "not positive numbers"),
        (2, [0.1, float("nan"), 0.1], "not positive numbers"),
        (6, [0.1, 0.1, 0.1, 0.1, 0.1], "unsupported description"),
    ],
)
def test_invalid_image_limits_are_a_model_file_error(
    tmp_path: Path, described: LoadedModel, version: int, limits: list[float] | None, message: str
) -> None:
    payload = dict(described.applicability or {})
    meta = json.loads(payload["metadata"])
    meta["version"] = version
    meta["checks"].pop("image_limits")
    if limits is not None:
        meta["checks"]["image_limits"] = limits
    path = save_model(
        tmp_path / "bad.pt",
        described.model,
        described.info,
        dict(payload, metadata=json.dumps(meta)),
    )
    with pytest.raises(ModelFileError, match=message):
        description_of(load_model(path))


def test_a_feature_cache_gives_the_same_description_without_a_forward() -> None:
    rng = np.random.default_rng(9)
    model = build_model(ModelInfo(task="acl", plane="axial", k=1), seed=1).eval()
    fit = [_Case(_knee_like(rng)) for _ in range(4)]
    held = [_Case(_knee_like(rng)) for _ in range(2)]

    def run(cache: dict[str, np.ndarray]) -> tuple[object, int]:
        calls = []
        stem = next(iter(model.children()))  # features() runs it, forward() is not called
        handle = stem.register_forward_pre_hook(lambda *_: calls.append(1))
        try:
            steps = describe_cases(model, None, fit, held, feature_cache=cache)
            while True:
                next(steps)
        except StopIteration as stop:
            return stop.value, len(calls)
        finally:
            handle.remove()

    cache: dict[str, np.ndarray] = {}
    first, forwards = run(cache)
    assert forwards == 6 and sorted(cache) == sorted(
        [f"fit-{i}" for i in range(4)] + ["held-0", "held-1"]
    )
    again, forwards = run(cache)
    assert forwards == 0
    assert again.threshold == first.threshold  # type: ignore[attr-defined]
    assert again.checks == first.checks  # type: ignore[attr-defined]


def test_the_prepared_series_gives_the_raw_array_path_and_the_former_decisions(
    described: LoadedModel,
) -> None:
    description = description_of(described)
    assert description is not None and description.checks.image_limits is not None
    checks = description.checks
    rng = np.random.default_rng(11)
    for size in (64, 256, 320):
        clean = _knee_like(rng, 4, size)
        for volume, refused in (
            (clean, False),
            (_heavy_noise(clean, rng, 0.3), True),
            (_ghosted(clean, 1), True),
            (_ghosted(clean, 2), True),
        ):
            prepared = prepare_series(volume)
            with torch.no_grad():
                x = prepared.network_input(described.info.landmarks)
                features = described.model.features(x)
            verdict = assess(description, volume, features, prepared=prepared)
            assert verdict == assess(description, volume, features)  # a raw array is prepared
            found = [r for r in verdict.reasons if r.startswith(("image noise", "ghosting"))]
            if size == 64:  # the size the model was described on
                assert bool(found) is refused, verdict.reasons
            if size == 256:
                # At the network's size the former statistics (raw series subsampled and clipped
                # on their own) are the same up to the clip and give the same decisions. (Other
                # sizes differ: the network sees a bilinear resize, not an area average.)
                old = raw_image_statistics(volume)
                np.testing.assert_allclose(image_statistics(prepared)[:3], old, atol=0.01)
                np.testing.assert_allclose(
                    intensity_profile(prepared), raw_intensity_profile(volume), atol=0.01
                )
                assert bool(image_reasons(old, checks.image_limits[:3])) is bool(found)


def test_the_triage_checks_the_series_it_prepared_for_the_network(
    described: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = _knee_like(np.random.default_rng(12))

    def prepared_again(array: object) -> None:
        raise AssertionError("the check prepared the series again")

    with monkeypatch.context() as patch:  # the triage hands its PreparedSeries to the check
        patch.setattr("napari_elnet.inference.applicability.prepare_series", prepared_again)
        (result,) = run_triage([_series(volume)], [described], device="cpu")
    with torch.no_grad():
        features = described.model.features(prepare_volume(volume, described.info.landmarks))
    alone = assess(description_of(described), volume, features)
    assert result.applicability.reasons == alone.reasons
    assert result.applicability.score == pytest.approx(alone.score, rel=1e-4)
