"""Applicability: whether a model can know anything about a given series, and the evidence.

A model file carries a :class:`TrainingDescription` of its training inputs, computed at the end of
training (:func:`describe_cases`):

- the distribution of ELNet's pooled feature vector (the max over slices, 16k values, the input of
  dropout and the classifier): its mean and a Ledoit-Wolf shrinkage covariance, inverted once for
  a Mahalanobis distance (Lee et al., NeurIPS 2018, on the penultimate layer). Ledoit-Wolf rather
  than OAS: both are closed-form, but OAS assumes Gaussian data while the pooled features are
  maxima of ReLU outputs (skewed, non-negative); Ledoit-Wolf's shrinkage estimate holds for any
  distribution. The features are scaled to unit variance first, so the shrinkage target is the
  diagonal of the sample covariance rather than a multiple of the identity;
- the threshold: the ``quantile`` (0.99) of the distance on held-out training-distribution series
  (the validation split), never on the series it is fit on;
- cheap input checks: the slice count, the in-plane size and the intensity profile (the volume's
  foreground histogram landmarks normalized to [0, 1], the same landmarks as Nyul's
  standardization) against the training series';
- image checks (:func:`image_statistics`), on a few slices at the scale the network sees them
  (the prepared 256 x 256 series, brightest voxels clipped, area-averaged to 128 x 128):
  the *noise floor*, the mean of the darkest 5% of 8 x 8 blocks relative to the 99th
  percentile (Rician noise fills air and dark tissue with a floor of about 1.25 sigma that no
  resizing averages away, while the pooled features, maxima over slices, barely move), and
  *ghosting* along rows and along columns: the autocorrelation of the gradient magnitude along
  that axis at a shift of 1/2 ... 1/8 of the field of view (motion during the acquisition puts
  shifted replicas of the object's edges along the phase-encoding direction; anatomy does not
  repeat at those shifts), and the *grain*: Immerkaer's noise estimate on the 256 x 256 slices
  before the averaging, relative to the same percentile (noise the resize did not average away:
  a 256 px series with heavy noise keeps its dark areas at a Rician floor of about 1.25 sigma,
  which the training series' largest floor can exceed, while its grain is far above theirs);
- the *acquired grain* (:func:`acquired_grain`, version 5): Immerkaer's estimate on the same
  slices of the series as acquired, at its own matrix before any resize, relative to their 99th
  percentile. The resize to 256 px averages noise down: a 480 px series with noise far above any
  training acquisition reaches the network at the level of the noisiest 256 px training series,
  and every statistic at the network's scale (and the answers) stay inside the training range.
  The limit is fit on the training series as acquired (:func:`describe_cases` ``acquired``), so
  a model trained on volumes resized before storage (MRNet's 256 px) gets a limit at that scale,
  which refuses more of the noisier high-resolution series than needed.
  Refused above the largest value of the training series (fit and validation; ghosting: times
  GHOST_MARGIN). Descriptions of version 1 have none and skip them; version 2 and 3 have no grain
  limit, version 4 no acquired-grain limit.

The profile and the image statistics are taken on the series as triage prepares it
(:class:`~napari_elnet.transforms.preprocess.PreparedSeries`: resized to 256 x 256 and clipped
once for every model), so the check reuses the resize, the clip and the foreground landmarks of
the network input instead of computing its own (description version 3). Versions 1 and 2 fit
their limits on the raw series subsampled: they are checked with those statistics
(:mod:`napari_elnet.inference.raw_statistics`).

:func:`assess` turns a series and its pooled features into an :class:`Applicability`. A model file
without a description gives :data:`UNKNOWN`. The description is stored in the model file as plain
tensors and a JSON string under the ``applicability`` key (see ``models/model_file.py``) and
validated here, when it is read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch

from napari_elnet.common.errors import ModelFileError
from napari_elnet.common.series import MIN_SLICES
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.nn.elnet import INPUT_SIZE, ELNet
from napari_elnet.transforms.intensity import DEFAULT_PERCENTILES
from napari_elnet.transforms.preprocess import PreparedSeries, prepare_series

DESCRIPTION_VERSION = 5
"""5: adds the acquired-grain limit; 4: adds the grain limit; 3: profile and image statistics on
the prepared 256 x 256 series; 2: adds the image checks (``checks.image_limits``, on the raw
series); 1: no image checks. All five are read."""
READ_VERSIONS = (1, 2, 3, 4, DESCRIPTION_VERSION)
PREPARED_VERSION = 3
"""The first version whose statistics are taken on the prepared series (older: raw series)."""
"""Description versions :meth:`TrainingDescription.from_payload` accepts."""
METHOD = "mahalanobis/ledoit-wolf"
THRESHOLD_QUANTILE = 0.99
"""Share of held-out training-distribution series whose distance lies at or below the threshold."""
PROFILE_MARGIN = 1.5
"""The profile limit is this times the largest profile distance of the held-out series."""
SLICE_FACTOR = 2.0
"""Slice counts are allowed from the training minimum / SLICE_FACTOR to the maximum * SLICE_FACTOR."""
SIZE_FACTOR = 2.0
"""In-plane sizes below the smallest training size / SIZE_FACTOR are refused (upsampled > 2x)."""
IMAGE_SLICES = 4
"""The image statistics are taken on at most this many slices, evenly spaced."""
GHOST_GRID = 128
"""The image statistics are taken on slices averaged to this many pixels per side (divides the
network's INPUT_SIZE)."""
FLOOR_BLOCKS = 32
"""The noise floor is made of the means of FLOOR_BLOCKS x FLOOR_BLOCKS blocks per slice."""
FLOOR_SHARE = 0.05
"""The noise floor is the mean of this share of the darkest blocks."""
FLOOR_PERCENTILE = 99.0
"""The noise floor is relative to this percentile of the sampled slices."""
GHOST_PERIODS = (2, 3, 4, 5, 6, 8)
"""Ghost replicas are looked for at these fractions 1/p of the field of view."""
GHOST_MARGIN = 1.25
"""The ghosting limits are this times the largest value of the training series (the noise floor
limit is the largest value itself: heavy noise lifts it only a little above the training range)."""
IMAGE_NAMES = (
    "noise floor",
    "ghosting along rows",
    "ghosting along columns",
    "grain",
    "acquired grain",
)
"""The image statistics, in the order of ``image_limits``: :func:`image_statistics`, then
:func:`acquired_grain`."""
PREPARED_STATISTICS = 4
"""How many of IMAGE_NAMES :func:`image_statistics` gives (the acquired grain is separate)."""
IMAGE_LIMIT_COUNTS = {2: 3, 3: 3, 4: 4, DESCRIPTION_VERSION: len(IMAGE_NAMES)}
"""How many ``image_limits`` a description of each version has (version 1: none)."""
PERCENTILE_GRID = 128
"""The acquired grain's percentile is taken on a regular grid of at least this many pixels per
side of each sampled slice (every n-th row and column)."""
HUGE = 1e30
"""Above this percentile the acquired grain works on the slices divided by it (float32 range)."""


@dataclass(frozen=True)
class Applicability:
    """Whether a model's result on a series can be trusted, and why.

    Attributes:
        applicable: True, False, or None when unknown (the model file has no description).
        score: Mahalanobis distance of the series' pooled features to the training features
            (None when the model did not run or has no description).
        threshold: The model's distance threshold (None without a description).
        reasons: Why it is not applicable (or unknown, or run outside its plane); empty when
            applicable inside its plane.
        outside_plane: The model ran on a series of another plane because the user chose it.
    """

    applicable: bool | None = None
    score: float | None = None
    threshold: float | None = None
    reasons: tuple[str, ...] = ()
    outside_plane: bool = False

    def summary(self) -> dict[str, object]:
        """JSON-able ``{"score", "threshold", "reasons", "outside_plane"}``."""
        return {
            "score": self.score,
            "threshold": self.threshold,
            "reasons": list(self.reasons),
            "outside_plane": self.outside_plane,
        }

    @property
    def reason(self) -> str:
        """The reasons as one line ("" when there are none)."""
        return "; ".join(self.reasons)

    def details(self) -> str:
        """The numbers, for a tooltip: ``score 12.3 / threshold 9.8; reasons``."""
        numbers = (
            f"score {self.score:.2f} / threshold {self.threshold:.2f}"
            if self.score is not None and self.threshold is not None
            else "no score"
        )
        return "; ".join((numbers, *self.reasons))


UNKNOWN_REASON = "the model file has no description of its training inputs"
UNKNOWN = Applicability(applicable=None, reasons=(UNKNOWN_REASON,))
"""The applicability of a result from a model file without a :class:`TrainingDescription`."""


def no_series_of_plane(plane: str, too_short: int = 0) -> Applicability:
    """The model's plane is missing from the study (or has only ``too_short`` series of fewer
    than MIN_SLICES slices): nothing was run."""
    return Applicability(applicable=False, reasons=(missing_plane_reason(plane, too_short),))


def missing_plane_reason(plane: str, too_short: int = 0) -> str:
    """Why a study offers no series of ``plane`` to a model (``too_short``: series of that plane
    with fewer than MIN_SLICES slices, passed over)."""
    if not too_short:
        return f"no {plane} series"
    return (
        f"no {plane} series of at least {MIN_SLICES} slices ({too_short} shorter "
        f"{'one' if too_short == 1 else 'ones'} passed over)"
    )


def outside_plane_reason(model_plane: str, series_plane: str, series_name: str) -> str:
    """Reason carried by a result that the user asked for on a series of another plane."""
    return (
        f"outside the model's plane: the {model_plane} model ran on the {series_plane} series "
        f"{series_name!r} chosen by the user"
    )


@dataclass(frozen=True)
class InputChecks:
    """Cheap checks of a series against the training series, before any network runs.

    Attributes:
        slices: Allowed slice counts, inclusive.
        min_size: Smallest allowed in-plane size (pixels, the smaller of rows and columns).
        percentiles: Foreground percentiles of the intensity profile.
        profile_mean, profile_scale: Per-landmark mean and standard deviation of the training
            profiles (see :func:`intensity_profile`).
        profile_limit: Largest allowed profile distance (max over landmarks of |z|).
        image_limits: Largest allowed image statistics (noise floor, ghosting along rows,
            along columns, grain, acquired grain; versions 2 and 3 have the first three, version
            4 the first four); None for descriptions of version 1 (the check is skipped).
        raw_statistics: The limits were fit on statistics of the raw series (descriptions of
            versions 1 and 2), so the series is checked with those.
    """

    slices: tuple[int, int]
    min_size: int
    percentiles: tuple[float, ...]
    profile_mean: tuple[float, ...]
    profile_scale: tuple[float, ...]
    profile_limit: float
    image_limits: tuple[float, ...] | None = None
    raw_statistics: bool = False

    def profile_distance(self, profile: np.ndarray) -> float:
        """Max over landmarks of ``|profile - mean| / scale``."""
        z = (profile - np.asarray(self.profile_mean)) / np.asarray(self.profile_scale)
        return float(np.max(np.abs(z)))

    def reasons(self, array: np.ndarray, prepared: PreparedSeries | None = None) -> list[str]:
        """What is wrong with a (S, H, W) series for this model ([] when nothing is).

        Args:
            array: The series as loaded (its shape is checked).
            prepared: The same series as triage prepares it (None: prepared here).
        """
        found = []
        count, size = array.shape[0], min(array.shape[1:])
        profile, values = self.statistics(array, prepared)
        if not self.slices[0] <= count <= self.slices[1]:
            found.append(
                f"{count} slices, outside the {self.slices[0]}-{self.slices[1]} the model allows"
            )
        if size < self.min_size:
            found.append(f"in-plane size {size} px, below the model's minimum {self.min_size} px")
        distance = self.profile_distance(profile)
        if not distance <= self.profile_limit:
            found.append(
                f"intensity profile unlike training (distance {distance:.1f} > "
                f"{self.profile_limit:.1f}: another contrast or scanner scaling?)"
            )
        if self.image_limits is not None and values is not None:
            found.extend(image_reasons(values, self.image_limits))
        return found

    def statistics(
        self, array: np.ndarray, prepared: PreparedSeries | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The series' intensity profile (L,) and image statistics (3-5,) (None without image
        limits), taken the way this description's limits were fit (the acquired grain only when
        there is a limit for it)."""
        if self.raw_statistics:
            from napari_elnet.inference import raw_statistics as raw

            values = None if self.image_limits is None else raw.raw_image_statistics(array)
            return raw.raw_intensity_profile(array, self.percentiles), values
        if prepared is None:
            prepared = prepare_series(array)
        values = None
        if self.image_limits is not None:
            values = image_statistics(prepared)
            if len(self.image_limits) == len(IMAGE_NAMES):
                values = np.append(values, acquired_grain(array))
        return intensity_profile(prepared, self.percentiles), values


def image_reasons(values: np.ndarray, limits: Sequence[float]) -> list[str]:
    """Reasons for :func:`image_statistics` ``values`` above their ``limits`` ([] when none).

    ``limits`` may be shorter than ``values`` (a description without a grain or acquired-grain
    limit): the statistics without a limit are not checked.
    """
    floor, rows, columns = (float(v) for v in values[:3])
    found = []
    if not floor <= limits[0]:
        found.append(
            f"image noise far above training: no dark background or tissue left (noise floor "
            f"{floor:.3f} > {limits[0]:.3f} of the bright signal)"
        )
    for name, value, limit in (("rows", rows, limits[1]), ("columns", columns, limits[2])):
        if not value <= limit:
            found.append(
                f"ghosting unlike training: repeated edges along the {name}, as from motion "
                f"during the acquisition (ghost score {value:.3f} > {limit:.3f})"
            )
    if len(limits) > 3 and not float(values[3]) <= limits[3]:
        found.append(
            f"image noise far above training: grainy at the network's scale (grain "
            f"{float(values[3]):.3f} > {limits[3]:.3f} of the bright signal)"
        )
    if len(limits) > 4 and len(values) > 4 and not float(values[4]) <= limits[4]:
        found.append(
            f"image noise far above training: grainy as acquired, at the series' own matrix "
            f"(acquired grain {float(values[4]):.3f} > {limits[4]:.3f} of the bright signal)"
        )
    return found


@dataclass(frozen=True, eq=False)
class TrainingDescription:
    """What a model's training inputs looked like (stored in its model file).

    Attributes:
        mean: Mean pooled feature vector of the training series, (D,) float64, D = 16k.
        precision: Inverse of the scaled Ledoit-Wolf covariance, (D, D) float64, so that
            ``distance = sqrt((f - mean) @ precision @ (f - mean))``.
        threshold: Distance above which a series is out of the training distribution.
        checks: The cheap input checks.
        method: Score kind (``mahalanobis/ledoit-wolf``).
        shrinkage: Ledoit-Wolf shrinkage intensity in [0, 1].
        n_fit: Training series the mean and covariance were fit on.
        n_threshold: Held-out series the threshold was set on.
        quantile: The quantile of their distances taken as the threshold.
        version: The description version it was written with (1 without image limits).
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    checks: InputChecks
    method: str = METHOD
    shrinkage: float = 0.0
    n_fit: int = 0
    n_threshold: int = 0
    quantile: float = THRESHOLD_QUANTILE
    version: int = DESCRIPTION_VERSION

    def distance(self, features: np.ndarray | torch.Tensor) -> float:
        """Mahalanobis distance of one pooled feature vector (D,) to the training features."""
        f = np.asarray(torch.as_tensor(features).detach().cpu().double().numpy()).reshape(-1)
        if f.shape != self.mean.shape:
            raise ModelFileError(
                f"feature vector of {f.size} values, the description has {self.mean.size}"
            )
        d = f - self.mean
        return float(math.sqrt(max(float(d @ self.precision @ d), 0.0)))

    def to_payload(self) -> dict[str, Any]:
        """Plain tensors and a JSON string, for ``save_model(..., applicability=...)``."""
        meta = {
            "version": 1 if self.checks.image_limits is None else self.version,
            "method": self.method,
            "threshold": self.threshold,
            "shrinkage": self.shrinkage,
            "n_fit": self.n_fit,
            "n_threshold": self.n_threshold,
            "quantile": self.quantile,
            "checks": {
                k: v
                for k, v in asdict(self.checks).items()
                if v is not None and k != "raw_statistics"  # follows from the version
            },
        }
        return {
            "metadata": json.dumps(meta, sort_keys=True),
            "mean": torch.from_numpy(self.mean.astype(np.float64)),
            "precision": torch.from_numpy(self.precision.astype(np.float64)),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], source: str) -> TrainingDescription:
        """Inverse of :meth:`to_payload`; ModelFileError naming ``source`` when it is invalid."""
        try:
            meta = json.loads(payload["metadata"])
            version = meta.get("version")
            if version not in READ_VERSIONS or meta.get("method") != METHOD:
                raise ValueError(
                    f"unsupported description {meta.get('method')!r} v{meta.get('version')!r}"
                )
            mean = _tensor(payload["mean"], "mean").numpy().astype(np.float64)
            precision = _tensor(payload["precision"], "precision").numpy().astype(np.float64)
            if mean.ndim != 1 or precision.shape != (mean.size, mean.size):
                raise ValueError(f"mean {mean.shape} and precision {precision.shape} disagree")
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(precision))):
                raise ValueError("non-finite values")
            c = meta["checks"]
            if version == 1 and "image_limits" in c:
                raise ValueError("image limits in a version 1 description")
            image_limits = None
            if version > 1:
                limits = [float(v) for v in c["image_limits"]]
                expected = IMAGE_LIMIT_COUNTS[version]
                if len(limits) != expected:
                    raise ValueError(f"{len(limits)} image limits, expected {expected}")
                if not all(math.isfinite(v) and v > 0 for v in limits):
                    raise ValueError(f"image limits {limits} are not positive numbers")
                image_limits = tuple(limits)
            checks = InputChecks(
                slices=(int(c["slices"][0]), int(c["slices"][1])),
                min_size=int(c["min_size"]),
                percentiles=tuple(float(p) for p in c["percentiles"]),
                profile_mean=tuple(float(v) for v in c["profile_mean"]),
                profile_scale=tuple(float(v) for v in c["profile_scale"]),
                profile_limit=float(c["profile_limit"]),
                image_limits=image_limits,
                raw_statistics=version < PREPARED_VERSION,
            )
            if not len(checks.percentiles) == len(checks.profile_mean) == len(checks.profile_scale):
                raise ValueError("intensity profile lengths disagree")
            if min(checks.profile_scale) <= 0:
                raise ValueError("intensity profile scale must be positive")
            threshold = float(meta["threshold"])
            if not math.isfinite(threshold) or threshold <= 0:
                raise ValueError(f"threshold {threshold} is not a positive number")
            return cls(
                mean=mean,
                precision=precision,
                threshold=threshold,
                checks=checks,
                method=str(meta["method"]),
                shrinkage=float(meta["shrinkage"]),
                n_fit=int(meta["n_fit"]),
                n_threshold=int(meta["n_threshold"]),
                quantile=float(meta["quantile"]),
                version=int(version),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"{source}: invalid applicability description ({exc})") from exc


def _tensor(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} is a {type(value).__name__}, not a tensor")
    return value.detach().cpu()


def description_of(loaded: LoadedModel) -> TrainingDescription | None:
    """The model file's description of its training inputs; None for files without one.

    Raises:
        ModelFileError: the file has a description but it is invalid.
    """
    payload = loaded.applicability
    if payload is None:
        return None
    source = str(loaded.path) if loaded.path else loaded.identity
    description = TrainingDescription.from_payload(payload, source)
    if description.mean.size != loaded.model.classifier.in_features:
        raise ModelFileError(
            f"{source}: applicability description has {description.mean.size} features, "
            f"the model {loaded.model.classifier.in_features}"
        )
    return description


def assess(
    description: TrainingDescription | None,
    array: np.ndarray,
    features: np.ndarray | torch.Tensor | None,
    extra_reasons: Sequence[str] = (),
    outside_plane: bool = False,
    prepared: PreparedSeries | None = None,
) -> Applicability:
    """The applicability of a model to one series.

    Args:
        description: The model's training description, or None (gives "unknown").
        array: The series' pixels, (S, H, W), as loaded (before any preprocessing).
        features: Its pooled feature vector (16k,) from the model's forward.
        extra_reasons: Reasons to report in any case (e.g. :func:`outside_plane_reason`).
        outside_plane: The model ran outside its plane by the user's choice.
        prepared: ``array`` as triage prepared it for the network (None: prepared here, which
            costs a resize and a clip); its cached foreground landmarks give the profile.

    Returns:
        Not applicable when a cheap check fails or the distance exceeds the threshold.
    """
    if description is None:
        return Applicability(
            applicable=None, reasons=(UNKNOWN_REASON, *extra_reasons), outside_plane=outside_plane
        )
    reasons = description.checks.reasons(array, prepared)
    score = None if features is None else description.distance(features)
    if score is None:
        reasons.append("no feature vector to score")
    elif not score <= description.threshold:
        reasons.append(
            f"unlike the training series (distance {score:.1f} > threshold "
            f"{description.threshold:.1f})"
        )
    return Applicability(
        applicable=not reasons,
        score=score,
        threshold=description.threshold,
        reasons=(*reasons, *extra_reasons),
        outside_plane=outside_plane,
    )


@contextmanager
def capture_features(model: ELNet) -> Iterator[list[torch.Tensor]]:
    """Record the pooled feature vector of every forward of ``model`` inside the block.

    The vector is the input of the model's dropout (see :meth:`ELNet.head`), so a FullGrad pass
    gives it at no cost. Shape: each entry (16k,), detached.
    """
    captured: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        captured.append(inputs[0].detach())

    handle = model.dropout.register_forward_pre_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def intensity_profile(
    series: np.ndarray | PreparedSeries, percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> np.ndarray:
    """Foreground landmarks of a series normalized to [0, 1] (first 0, last 1), shape (L,).

    Taken on the series as triage prepares it (resized to 256 x 256, brightest voxels clipped):
    a :class:`PreparedSeries` gives its cached landmarks (no cost when the model's landmarks use
    the same percentiles), a raw (S, H, W) array is prepared first. The profile does not depend
    on the scanner's intensity scale, only on the histogram's shape (i.e. mostly on the
    contrast). A constant series gives all zeros.
    """
    prepared = series if isinstance(series, PreparedSeries) else prepare_series(series)
    values = prepared.source_landmarks(tuple(float(p) for p in percentiles))
    span = values[-1] - values[0]
    return (values - values[0]) / span if span > 0 else np.zeros_like(values)


def image_statistics(series: np.ndarray | PreparedSeries) -> np.ndarray:
    """Noise floor, ghosting and grain of a series at the scale the network sees, shape (4,).

    On the series as triage prepares it (a raw (S, H, W) array is prepared first): at most
    IMAGE_SLICES evenly spaced slices of the 256 x 256 clipped series, averaged over 2 x 2 areas
    to GHOST_GRID x GHOST_GRID (so a native 512 x 512 series and the 256 x 256 uint8 MRNet volume
    made from it give about the same). Then:

    - noise floor: the mean of the darkest FLOOR_SHARE of the blocks of 1/32 of the field of
      view (8 x 8 pixels of 256), divided by the FLOOR_PERCENTILE-th percentile (scale free);
    - ghosting along rows (axis 1) and along columns (axis 2): the largest autocorrelation
      coefficient of the gradient magnitude along that axis (its mean removed, circular) at a
      shift of 1/p of the field of view, p in GHOST_PERIODS;
    - grain: Immerkaer's noise estimate (Immerkaer, CVIU 1996: the mean absolute response to
      the separable mask [1, -2, 1] x [1, -2, 1], times sqrt(pi / 2) / 6) of the sampled 256 x
      256 slices before the averaging, divided by the same percentile.

    A constant series gives zeros.
    """
    prepared = series if isinstance(series, PreparedSeries) else prepare_series(series)
    sampled = sampled_slices(prepared.clipped)
    with np.errstate(invalid="ignore", over="ignore"):  # values near the float32 limit: inf
        x = _area_mean(sampled, INPUT_SIZE // GHOST_GRID)
        flat = x.reshape(-1)
        rank = min(flat.size - 1, round(FLOOR_PERCENTILE / 100 * (flat.size - 1)))
        top = float(np.partition(flat, rank)[rank])
        if not top > 0:
            return np.zeros(PREPARED_STATISTICS)
        means = _area_mean(x, GHOST_GRID // FLOOR_BLOCKS).reshape(-1)
        k = max(1, int(means.size * FLOOR_SHARE))
        floor = float(np.partition(means, k - 1)[:k].mean(dtype=np.float64)) / top
        grain = _immerkaer_sigma(sampled) / top
        return np.array([floor, _ghosting(x, axis=1), _ghosting(x, axis=2), grain])


def sampled_slices(array: np.ndarray) -> np.ndarray:
    """At most IMAGE_SLICES evenly spaced slices of a (S, H, W) series, centred (a view)."""
    step = max(1, math.ceil(array.shape[0] / IMAGE_SLICES))
    first = (array.shape[0] - 1) % step // 2
    return array[first::step]


def acquired_grain(array: np.ndarray) -> float:
    """Immerkaer's noise estimate of a (S, H, W) series as acquired, relative to its brightness.

    On the same at most IMAGE_SLICES evenly spaced slices as :func:`image_statistics`, at the
    series' own matrix (before any resize): Immerkaer's estimate divided by the
    FLOOR_PERCENTILE-th percentile of those slices (taken on every n-th row and column, at least
    PERCENTILE_GRID per side). Scale free. 0 for a series whose percentile is not above 0 or
    whose slices are smaller than 3 x 3; NaN or inf when pixels are NaN or infinite, or beyond
    float32 (then above any limit: refused), without a NumPy warning.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        sampled = np.asarray(sampled_slices(array), dtype=np.float32)
        grid = max(1, min(sampled.shape[1:]) // PERCENTILE_GRID)
        flat = sampled[:, ::grid, ::grid].reshape(-1)
        if flat.size == 0:
            return 0.0
        rank = min(flat.size - 1, round(FLOOR_PERCENTILE / 100 * (flat.size - 1)))
        top = float(np.partition(flat, rank)[rank])
        if not top > 0 and not math.isnan(top):
            return 0.0
        if top > HUGE:  # float32 differences of such values would overflow: work relative to top
            sampled, top = sampled / np.float32(top), 1.0
        return _immerkaer_sigma(sampled) / top


def _immerkaer_sigma(x: np.ndarray) -> float:
    """Immerkaer's noise standard deviation of (S, H, W) slices (0 when H or W < 3)."""
    if min(x.shape[1:]) < 3:
        return 0.0
    x = np.asarray(x, dtype=np.float32)
    # in place: two temporaries instead of six (40% less time on 4 x 512 x 512)
    rows = x[:, :-2] + x[:, 2:]
    rows -= x[:, 1:-1]
    rows -= x[:, 1:-1]
    response = rows[:, :, :-2] + rows[:, :, 2:]
    response -= rows[:, :, 1:-1]
    response -= rows[:, :, 1:-1]
    np.abs(response, out=response)
    return float(response.sum(dtype=np.float64)) / response.size * math.sqrt(math.pi / 2) / 6


def _area_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Means over ``factor`` x ``factor`` areas of (S, H, W) slices, ``factor`` a power of two
    dividing H and W: (S, H / factor, W / factor) float32.

    By 2 x 2 halvings of strided sums (a tenth of the time of numpy's mean over a reshaped
    axis pair, 0.14 ms against 2.0 ms for 4 x 256 x 256).
    """
    if factor < 1 or factor & (factor - 1):
        raise ValueError(f"area factor {factor} is not a power of two")
    x = np.asarray(x, dtype=np.float32)
    while factor > 1:
        x = (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) * 0.25
        factor //= 2
    return x


def _ghosting(x: np.ndarray, axis: int) -> float:
    """Largest autocorrelation of |gradient along ``axis``| at shifts of 1/p of the axis.

    (One ``np.roll`` per shift: on 4 x 128 x 128 slices 0.6-0.7 ms per axis, faster than the
    autocorrelation at every shift from one real FFT, 1.7-2.1 ms.)
    """
    g = np.abs(np.diff(x, axis=axis))
    g -= g.mean(axis=(1, 2), keepdims=True)
    energy = float(np.sum(g * g, dtype=np.float64))
    if not energy > 0:
        return 0.0
    n = x.shape[axis]
    return max(
        float(np.sum(g * np.roll(g, round(n / p), axis=axis), dtype=np.float64)) / energy
        for p in GHOST_PERIODS
    )


THRESHOLD_FOLDS = 5
"""Folds of the training split whose out-of-fold distances join the held-out ones (threshold)."""

MIN_SHRINKAGE = 1e-3
"""Smallest shrinkage :func:`ledoit_wolf` returns (keeps the covariance invertible)."""


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrinkage covariance (Ledoit and Wolf, J. Multivar. Anal. 2004).

    ``(1 - a) S + a mu I`` with ``S`` the sample covariance (divided by n), ``mu = trace(S) / p``
    and the shrinkage ``a`` estimated in closed form (same formula as scikit-learn's).

    Shape:
        x (n, p) -> covariance (p, p), shrinkage in [0, 1].
    """
    n, p = x.shape
    xc = x - x.mean(axis=0)
    sample = xc.T @ xc / n
    mu = float(np.trace(sample)) / p
    if not mu > 0:
        # No spread at all (e.g. a barely trained model whose features are equal on every series):
        # unit covariance, so any departure from the training mean counts in full.
        return np.eye(p), 1.0
    x2 = xc**2
    beta_sum = float(np.sum(x2.T @ x2)) / n
    delta_sum = float(np.sum(sample**2))
    beta = (beta_sum - delta_sum) / (p * n)
    delta = (delta_sum - 2 * mu * float(np.trace(sample)) + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if delta == 0 else beta / delta
    # The closed form can give 0 with very few series (two series: beta is exactly 0), leaving the
    # rank-deficient sample covariance; a floor keeps the estimate invertible.
    shrinkage = max(shrinkage, MIN_SHRINKAGE)
    covariance = (1 - shrinkage) * sample + shrinkage * mu * np.eye(p)
    return covariance, shrinkage


@dataclass(frozen=True)
class SeriesStats:
    """What the description needs of one training series: its shape, profile and features, and
    its image statistics (None: the description gets no image checks, version 1): those of
    :func:`image_statistics`, then its :func:`acquired_grain` (without it, no acquired-grain
    limit: version 4)."""

    shape: tuple[int, int, int]
    profile: np.ndarray
    features: np.ndarray
    image: np.ndarray | None = None


def fit_description(
    fit: Sequence[SeriesStats],
    held_out: Sequence[SeriesStats],
    quantile: float = THRESHOLD_QUANTILE,
) -> TrainingDescription:
    """Fit the description on training series and set its thresholds on held-out ones.

    The distance threshold is the ``quantile`` of the held-out series' distances together with
    the training series' out-of-fold distances (THRESHOLD_FOLDS folds, each fit without it).

    Args:
        fit: The training split's series (mean, covariance, input ranges).
        held_out: Series of the same distribution not in ``fit`` (the validation split).
        quantile: Quantile of the held-out distances taken as the threshold.
    """
    if len(fit) < 2 or not held_out:
        raise ModelFileError(
            f"an applicability description needs >= 2 training and >= 1 held-out series, "
            f"got {len(fit)} and {len(held_out)}"
        )
    features = np.stack([s.features for s in fit]).astype(np.float64)
    mean, precision, shrinkage = _gaussian(features)
    profiles = np.stack([s.profile for s in fit])
    profile_mean = profiles.mean(axis=0)
    profile_scale = np.maximum(profiles.std(axis=0), 1e-3)
    counts = [s.shape[0] for s in (*fit, *held_out)]
    sizes = [min(s.shape[1:]) for s in (*fit, *held_out)]
    percentiles = tuple(float(p) for p in DEFAULT_PERCENTILES)
    draft = TrainingDescription(
        mean=mean,
        precision=precision,
        threshold=1.0,
        checks=InputChecks(
            slices=(
                max(1, math.floor(min(counts) / SLICE_FACTOR)),
                math.ceil(max(counts) * SLICE_FACTOR),
            ),
            min_size=max(1, math.floor(min(sizes) / SIZE_FACTOR)),
            percentiles=percentiles,
            profile_mean=tuple(float(v) for v in profile_mean),
            profile_scale=tuple(float(v) for v in profile_scale),
            profile_limit=math.inf,
        ),
    )
    distances = np.concatenate(
        [[draft.distance(s.features) for s in held_out], _out_of_fold_distances(features)]
    )
    profile_distances = [draft.checks.profile_distance(s.profile) for s in held_out]
    images = [s.image for s in (*fit, *held_out)]
    image_limits = None
    version = DESCRIPTION_VERSION
    if all(v is not None for v in images):
        # the newest version with that many statistics (3: version 3, prepared-series ones)
        lengths = {len(v) for v in images}  # type: ignore[arg-type]
        versions = [v for v, n in IMAGE_LIMIT_COUNTS.items() if {n} == lengths]
        if not versions:
            raise ModelFileError(f"{sorted(lengths)} image statistics per series, expected 3-5")
        version = max(versions)
        # The training range: the largest value of every training series (ghosting: times a
        # margin). The floor of 1e-6 keeps a limit positive (zeros from constant series).
        top = np.maximum(np.max(np.stack(images), axis=0), 1e-6)  # type: ignore[arg-type]
        image_limits = (
            float(top[0]),
            GHOST_MARGIN * float(top[1]),
            GHOST_MARGIN * float(top[2]),
            *(float(v) for v in top[3:]),
        )
        if not all(math.isfinite(v) for v in image_limits):
            raise ModelFileError(
                f"training series with non-finite image statistics (limits {image_limits})"
            )
    checks = replace(
        draft.checks,
        profile_limit=PROFILE_MARGIN * max(profile_distances),
        image_limits=image_limits,
    )
    return TrainingDescription(
        mean=mean,
        precision=precision,
        threshold=float(np.quantile(distances, quantile)),
        checks=checks,
        shrinkage=shrinkage,
        n_fit=len(fit),
        n_threshold=len(distances),
        quantile=quantile,
        version=version,
    )


def _gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, precision (inverse scaled Ledoit-Wolf covariance) and shrinkage of (N, D) features."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    # Nearly constant features (channels that hardly fire on training series) would dominate the
    # distance through a tiny variance: their scale is floored at a tenth of the median one.
    scale = np.maximum(std, 0.1 * max(float(np.median(std)), 1e-12))
    covariance, shrinkage = ledoit_wolf((features - mean) / scale)
    return mean, np.linalg.inv(covariance) / np.outer(scale, scale), shrinkage


def _out_of_fold_distances(features: np.ndarray, folds: int = THRESHOLD_FOLDS) -> np.ndarray:
    """Distance of every training series to a fit on the other folds (shape (N,)).

    Each series is held out once (series i in fold i mod ``folds``), so the threshold's quantile
    rests on the training split too, not only on the (smaller) validation split. Empty when there
    are too few series for every fit to keep two.
    """
    n = features.shape[0]
    folds = min(folds, n)
    if folds < 2 or n - math.ceil(n / folds) < 2:
        return np.zeros(0)
    distances = np.zeros(n)
    fold = np.arange(n) % folds
    for k in range(folds):
        mean, precision, _ = _gaussian(features[fold != k])
        d = features[fold == k] - mean
        distances[fold == k] = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, precision, d), 0.0))
    return distances


class _HasVolume(Protocol):
    def volume(self) -> np.ndarray: ...


def pooled_features(
    model: ELNet,
    volume: np.ndarray | PreparedSeries,
    landmarks: Any,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """The pooled feature vector (D,) float64 of one series, prepared as triage prepares it."""
    prepared = volume if isinstance(volume, PreparedSeries) else prepare_series(volume)
    model.eval()
    with torch.no_grad():
        x = prepared.network_input(landmarks).to(device)
        return model.features(x).double().cpu().numpy()


def series_stats(
    model: ELNet,
    volume: np.ndarray,
    landmarks: Any,
    device: torch.device | str = "cpu",
    features: np.ndarray | None = None,
    acquired: float | None = None,
) -> SeriesStats:
    """Shape, intensity profile, pooled features and image statistics of one series, all from
    the series prepared once as triage prepares it, and the acquired grain of ``volume``.

    ``features``: the series' pooled features if already known (then no forward runs).
    ``acquired``: its acquired grain if known (e.g. of the acquisition a resized ``volume`` was
    made from), else taken on ``volume``.
    """
    prepared = prepare_series(volume)
    if features is None:
        features = pooled_features(model, prepared, landmarks, device)
    grain = acquired_grain(volume) if acquired is None else acquired
    return SeriesStats(
        tuple(volume.shape),  # type: ignore[arg-type]
        intensity_profile(prepared),
        features,
        np.append(image_statistics(prepared), grain),
    )


def describe_cases(
    model: ELNet,
    landmarks: Any,
    fit_cases: Sequence[_HasVolume],
    held_out_cases: Sequence[_HasVolume],
    device: torch.device | str = "cpu",
    feature_cache: MutableMapping[str, np.ndarray] | None = None,
    acquired: Sequence[float] | None = None,
) -> Generator[tuple[int, int], None, TrainingDescription]:
    """Describe a trained model's training inputs; yields (done, total) after each series.

    Args:
        model: The trained model (the checkpoint that is saved).
        landmarks: Its intensity landmarks (as stored in its model file).
        fit_cases: The training split (objects with ``volume()``, e.g. datasets' ``Case``).
        held_out_cases: The validation split, for the thresholds.
        device: Where the forward passes run.
        feature_cache: Pooled features of these weights by ``fit-<i>`` / ``held-<i>`` (the i-th
            case of that split): read when present, written when computed. The caller keys it
            to the weights and the cases (the forwards are the slow part of a description).
        acquired: The :func:`acquired_grain` of every fit case, then every held-out case, taken on
            the series as acquired, for cases whose volumes were resized before storage (e.g.
            MRNet volumes of known acquisitions); None: taken on the cases' volumes.
    """
    total = len(fit_cases) + len(held_out_cases)
    if acquired is not None and len(acquired) != total:
        raise ValueError(f"{len(acquired)} acquired grains for {total} cases")
    stats: list[SeriesStats] = []
    roles = [("fit", i) for i in range(len(fit_cases))]
    roles += [("held", i) for i in range(len(held_out_cases))]
    for done, (case, (role, index)) in enumerate(
        zip((*fit_cases, *held_out_cases), roles, strict=True), start=1
    ):
        key = f"{role}-{index}"
        volume = case.volume()
        cached = None if feature_cache is None else feature_cache.get(key)
        grain = None if acquired is None else float(acquired[done - 1])
        stats.append(series_stats(model, volume, landmarks, device, cached, grain))
        if feature_cache is not None and cached is None:
            feature_cache[key] = stats[-1].features
        yield done, total
    return fit_description(stats[: len(fit_cases)], stats[len(fit_cases) :])
