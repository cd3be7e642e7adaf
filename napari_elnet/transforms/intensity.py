"""Histogram-based intensity standardization (Nyul and Udupa, MRM 1999).

Each volume's foreground histogram landmarks (intensity percentiles) are mapped piecewise-linearly onto
standard-scale positions learned from the training set, so that equal values mean similar tissue
across scanners. The standard scale runs from 0 (first landmark) to 1 (last landmark).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.transforms.order import RankIndex, numpy_percentiles, rank_index
from napari_elnet.transforms.piecewise import interp_single

DEFAULT_PERCENTILES: tuple[float, ...] = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99)
"""Nyul's landmark set: the 1st and 99th percentiles and the deciles of the foreground."""

FALLBACK_PERCENTILES: tuple[float, float] = (1.0, 99.0)


@dataclass(frozen=True)
class Landmarks:
    """Standard-scale positions of histogram landmarks.

    Attributes:
        percentiles: Foreground percentiles that define the landmarks, increasing, in (0, 100).
        standard: Standard-scale value of each landmark, increasing, first 0 and last 1.
    """

    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    standard: tuple[float, ...] = tuple(np.linspace(0.0, 1.0, len(DEFAULT_PERCENTILES)))

    def __post_init__(self) -> None:
        p, s = np.asarray(self.percentiles), np.asarray(self.standard)
        if p.size < 2 or p.shape != s.shape:
            raise ConfigurationError(
                f"landmarks need >= 2 percentiles and as many standard values: "
                f"{p.size} percentiles, {s.size} standard values"
            )
        if np.any(np.diff(p) <= 0) or p[0] <= 0 or p[-1] >= 100:
            raise ConfigurationError(
                f"percentiles must increase within (0, 100): {self.percentiles}"
            )
        if np.any(np.diff(s) < 0):
            raise ConfigurationError(f"standard landmark values must not decrease: {self.standard}")

    def to_dict(self) -> dict[str, list[float]]:
        """Plain JSON-able form."""
        return {
            "percentiles": list(map(float, self.percentiles)),
            "standard": list(map(float, self.standard)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Landmarks:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["percentiles"]), tuple(data["standard"]))


FALLBACK_LANDMARKS = Landmarks(FALLBACK_PERCENTILES, (0.0, 1.0))
"""Used for a model without landmarks: the volume's own 1st..99th foreground percentiles -> 0..1."""


def foreground(volume: np.ndarray) -> np.ndarray:
    """Voxels above the volume mean (Nyul's foreground), flattened; all voxels if none are above."""
    flat = np.asarray(volume, dtype=np.float32).ravel()
    above = flat[flat > flat.mean()]
    return above if above.size else flat


def volume_landmarks(volume: np.ndarray, percentiles: Iterable[float]) -> np.ndarray:
    """Intensities at the given foreground percentiles of one volume, shape (L,).

    Equal to ``np.percentile(foreground(volume), percentiles)``; a volume with a NaN or an infinity
    takes that very path, the others the rank index of :mod:`~napari_elnet.transforms.order`.
    """
    flat = np.asarray(volume, dtype=np.float32).ravel()
    index = rank_index(flat)
    if index is None:
        return np.percentile(foreground(flat), list(percentiles)).astype(np.float64)
    return foreground_percentiles(index, flat.mean(), percentiles)


def foreground_percentiles(
    index: RankIndex, mean: np.floating, percentiles: Iterable[float]
) -> np.ndarray:
    """:func:`volume_landmarks` from a rank index of the volume's values.

    The foreground (values above ``mean``, all values if none is) is the top of the sorted values,
    so its ranks are the volume's ranks shifted by the count at or below the mean.

    Args:
        index: Rank index of the volume's values.
        mean: The float32 mean of the values as :func:`foreground` computes it.
        percentiles: Foreground percentiles, in [0, 100].

    Returns:
        float64 array, one intensity per percentile.
    """
    offset = index.count_at_most(mean)
    if offset == index.size:
        offset = 0  # nothing above the mean: every voxel is foreground
    return numpy_percentiles(
        lambda ranks: index.at(ranks + offset), index.size - offset, percentiles
    )


def fit_landmarks(
    volumes: Iterable[np.ndarray], percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
) -> Landmarks:
    """Learn standard-scale landmark positions from training volumes (each (S, H, W))."""
    mapped = []
    for volume in volumes:
        values = volume_landmarks(volume, percentiles)
        span = values[-1] - values[0]
        if span > 0:
            mapped.append((values - values[0]) / span)
    if not mapped:
        raise ConfigurationError("cannot fit landmarks: no volume with a non-constant foreground")
    standard = np.maximum.accumulate(np.mean(mapped, axis=0))
    standard[0], standard[-1] = 0.0, 1.0
    return Landmarks(tuple(float(p) for p in percentiles), tuple(float(s) for s in standard))


def standardize(volume: np.ndarray, landmarks: Landmarks | None = None) -> np.ndarray:
    """Map intensities onto the standard scale, piecewise-linearly between landmarks.

    Values beyond the first and last landmark are extrapolated with the end segments' slopes.
    ``landmarks=None`` uses FALLBACK_LANDMARKS (per-volume 1st..99th percentile -> 0..1).

    Args:
        volume: Intensities, any shape (typically (S, H, W)).
        landmarks: The model's learned landmarks, or None.

    Returns:
        float32 array of the same shape; all zeros for a constant volume.
    """
    landmarks = landmarks or FALLBACK_LANDMARKS
    volume = np.asarray(volume, dtype=np.float32)
    return map_to_standard(volume, volume_landmarks(volume, landmarks.percentiles), landmarks)


def map_to_standard(
    volume: np.ndarray,
    source: np.ndarray,
    landmarks: Landmarks,
    workers: int = 1,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """:func:`standardize` with the volume's own landmarks already known.

    Several models reading one series share its landmarks (the same percentiles): each then pays
    only for this mapping, ``np.interp``'s piecewise-linear map whose end knots extend the end
    segments to the volume's minimum and maximum (linear extrapolation, same values as clamping
    then extending), evaluated in float32 by
    :func:`~napari_elnet.transforms.piecewise.interp_single`: the segments of ``np.interp``
    exactly, each value within a few float32 roundings of ``np.interp``'s float64 result (6e-8 at
    most on the benchmark's phantom series, whose standard-scale values reach 1; the float64
    evaluation, bit for bit, is :func:`~napari_elnet.transforms.piecewise.interp_float32`, 2 ms
    slower per 32 x 256 x 256 series).

    Args:
        volume: float32 intensities, any shape.
        source: ``volume_landmarks(volume, landmarks.percentiles)``.
        landmarks: The model's landmarks (their standard-scale values are the targets).
        workers: Threads for the mapping.
        value_range: ``(float(volume.min()), float(volume.max()))`` when the caller has them
            (two passes fewer); only for nonzero extremes (numpy's min and max decide which zero,
            -0.0 or 0.0, a volume holding both returns).

    Returns:
        float32 array of the same shape; all zeros for a constant volume.
    """
    target = np.asarray(landmarks.standard, dtype=np.float64)
    source = np.asarray(source, dtype=np.float64)
    if source.shape != target.shape:
        raise ConfigurationError(
            f"{source.size} source landmarks for {target.size} standard values"
        )
    if source[-1] <= source[0]:
        return np.zeros_like(volume, dtype=np.float32)
    # Strictly increasing source landmarks (ties happen in quantized or sparse histograms).
    source = np.maximum.accumulate(
        source + np.arange(source.size) * 1e-6 * (source[-1] - source[0])
    )
    low_slope = (target[1] - target[0]) / (source[1] - source[0])
    high_slope = (target[-1] - target[-2]) / (source[-1] - source[-2])
    if value_range is None:
        value_range = (float(volume.min()), float(volume.max()))
    lowest, highest = value_range
    knots, values = [source], [target]
    if lowest < source[0]:
        knots.insert(0, np.array([lowest]))
        values.insert(0, np.array([target[0] + (lowest - source[0]) * low_slope]))
    if highest > source[-1]:
        knots.append(np.array([highest]))
        values.append(np.array([target[-1] + (highest - source[-1]) * high_slope]))
    return interp_single(
        np.asarray(volume, dtype=np.float32),
        np.concatenate(knots),
        np.concatenate(values),
        workers=workers,
        bounds=(lowest, highest),
    )
