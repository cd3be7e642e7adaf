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
  standardization) against the training series'.

:func:`assess` turns a series and its pooled features into an :class:`Applicability`. A model file
without a description gives :data:`UNKNOWN`. The description is stored in the model file as plain
tensors and a JSON string under the ``applicability`` key (see ``models/model_file.py``) and
validated here, when it is read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch

from napari_elnet.common.errors import ModelFileError
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.nn.elnet import ELNet
from napari_elnet.transforms.intensity import DEFAULT_PERCENTILES, volume_landmarks
from napari_elnet.transforms.preprocess import clip_bright, prepare_volume

DESCRIPTION_VERSION = 1
METHOD = "mahalanobis/ledoit-wolf"
THRESHOLD_QUANTILE = 0.99
"""Share of held-out training-distribution series whose distance lies at or below the threshold."""
PROFILE_SIZE = 128
"""The intensity profile is taken on every n-th pixel so that at most this many remain per row."""
PROFILE_MARGIN = 1.5
"""The profile limit is this times the largest profile distance of the held-out series."""
SLICE_FACTOR = 2.0
"""Slice counts are allowed from the training minimum / SLICE_FACTOR to the maximum * SLICE_FACTOR."""
SIZE_FACTOR = 2.0
"""In-plane sizes below the smallest training size / SIZE_FACTOR are refused (upsampled > 2x)."""


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


def no_series_of_plane(plane: str) -> Applicability:
    """The model's plane is missing from the study: nothing was run."""
    return Applicability(applicable=False, reasons=(f"no {plane} series",))


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
    """

    slices: tuple[int, int]
    min_size: int
    percentiles: tuple[float, ...]
    profile_mean: tuple[float, ...]
    profile_scale: tuple[float, ...]
    profile_limit: float

    def profile_distance(self, profile: np.ndarray) -> float:
        """Max over landmarks of ``|profile - mean| / scale``."""
        z = (profile - np.asarray(self.profile_mean)) / np.asarray(self.profile_scale)
        return float(np.max(np.abs(z)))

    def reasons(self, array: np.ndarray) -> list[str]:
        """What is wrong with a (S, H, W) series for this model ([] when nothing is)."""
        found = []
        count, size = array.shape[0], min(array.shape[1:])
        if not self.slices[0] <= count <= self.slices[1]:
            found.append(
                f"{count} slices, outside the {self.slices[0]}-{self.slices[1]} the model allows"
            )
        if size < self.min_size:
            found.append(f"in-plane size {size} px, below the model's minimum {self.min_size} px")
        distance = self.profile_distance(intensity_profile(array, self.percentiles))
        if not distance <= self.profile_limit:
            found.append(
                f"intensity profile unlike training (distance {distance:.1f} > "
                f"{self.profile_limit:.1f}: another contrast or scanner scaling?)"
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
            "version": DESCRIPTION_VERSION,
            "method": self.method,
            "threshold": self.threshold,
            "shrinkage": self.shrinkage,
            "n_fit": self.n_fit,
            "n_threshold": self.n_threshold,
            "quantile": self.quantile,
            "checks": asdict(self.checks),
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
            if meta.get("version") != DESCRIPTION_VERSION or meta.get("method") != METHOD:
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
            checks = InputChecks(
                slices=(int(c["slices"][0]), int(c["slices"][1])),
                min_size=int(c["min_size"]),
                percentiles=tuple(float(p) for p in c["percentiles"]),
                profile_mean=tuple(float(v) for v in c["profile_mean"]),
                profile_scale=tuple(float(v) for v in c["profile_scale"]),
                profile_limit=float(c["profile_limit"]),
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
) -> Applicability:
    """The applicability of a model to one series.

    Args:
        description: The model's training description, or None (gives "unknown").
        array: The series' pixels, (S, H, W), as loaded (before any preprocessing).
        features: Its pooled feature vector (16k,) from the model's forward.
        extra_reasons: Reasons to report in any case (e.g. :func:`outside_plane_reason`).
        outside_plane: The model ran outside its plane by the user's choice.

    Returns:
        Not applicable when a cheap check fails or the distance exceeds the threshold.
    """
    if description is None:
        return Applicability(
            applicable=None, reasons=(UNKNOWN_REASON, *extra_reasons), outside_plane=outside_plane
        )
    reasons = description.checks.reasons(array)
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
    array: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> np.ndarray:
    """Foreground landmarks of a series normalized to [0, 1] (first 0, last 1), shape (L,).

    Taken on every n-th pixel (at most PROFILE_SIZE per row and column) after clipping the
    brightest voxels as :func:`~napari_elnet.transforms.preprocess.prepare_volume` does. The
    profile does not depend on the scanner's intensity scale, only on the histogram's shape
    (i.e. mostly on the contrast). A constant series gives all zeros.
    """
    step = max(1, math.ceil(min(array.shape[1:]) / PROFILE_SIZE))
    sample = np.ascontiguousarray(array[:, ::step, ::step], dtype=np.float32)
    values = volume_landmarks(clip_bright(sample), percentiles)
    span = values[-1] - values[0]
    return (values - values[0]) / span if span > 0 else np.zeros_like(values)


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
    """What the description needs of one training series: its shape, profile and features."""

    shape: tuple[int, int, int]
    profile: np.ndarray
    features: np.ndarray


def fit_description(
    fit: Sequence[SeriesStats],
    held_out: Sequence[SeriesStats],
    quantile: float = THRESHOLD_QUANTILE,
) -> TrainingDescription:
    """Fit the description on training series and set its thresholds on held-out ones.

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
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    # Nearly constant features (channels that hardly fire on training series) would dominate the
    # distance through a tiny variance: their scale is floored at a tenth of the median one.
    scale = np.maximum(std, 0.1 * max(float(np.median(std)), 1e-12))
    covariance, shrinkage = ledoit_wolf((features - mean) / scale)
    precision = np.linalg.inv(covariance) / np.outer(scale, scale)
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
    distances = np.array([draft.distance(s.features) for s in held_out])
    profile_distances = [draft.checks.profile_distance(s.profile) for s in held_out]
    checks = replace(draft.checks, profile_limit=PROFILE_MARGIN * max(profile_distances))
    return TrainingDescription(
        mean=mean,
        precision=precision,
        threshold=float(np.quantile(distances, quantile)),
        checks=checks,
        shrinkage=shrinkage,
        n_fit=len(fit),
        n_threshold=len(held_out),
        quantile=quantile,
    )


class _HasVolume(Protocol):
    def volume(self) -> np.ndarray: ...


def series_stats(
    model: ELNet, volume: np.ndarray, landmarks: Any, device: torch.device | str = "cpu"
) -> SeriesStats:
    """Shape, intensity profile and pooled features of one series (as triage prepares it)."""
    model.eval()
    with torch.no_grad():
        x = prepare_volume(volume, landmarks).to(device)
        features = model.features(x).double().cpu().numpy()
    return SeriesStats(tuple(volume.shape), intensity_profile(volume), features)  # type: ignore[arg-type]


def describe_cases(
    model: ELNet,
    landmarks: Any,
    fit_cases: Sequence[_HasVolume],
    held_out_cases: Sequence[_HasVolume],
    device: torch.device | str = "cpu",
) -> Generator[tuple[int, int], None, TrainingDescription]:
    """Describe a trained model's training inputs; yields (done, total) after each series.

    Args:
        model: The trained model (the checkpoint that is saved).
        landmarks: Its intensity landmarks (as stored in its model file).
        fit_cases: The training split (objects with ``volume()``, e.g. datasets' ``Case``).
        held_out_cases: The validation split, for the thresholds.
        device: Where the forward passes run.
    """
    total = len(fit_cases) + len(held_out_cases)
    stats: list[SeriesStats] = []
    for done, case in enumerate((*fit_cases, *held_out_cases), start=1):
        stats.append(series_stats(model, case.volume(), landmarks, device))
        yield done, total
    return fit_description(stats[: len(fit_cases)], stats[len(fit_cases) :])
