"""The one preprocessing path shared by training and inference: resize to 256 x 256, clip the
brightest voxels, standardize."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.nn.elnet import INPUT_SIZE
from napari_elnet.transforms.intensity import (
    FALLBACK_LANDMARKS,
    Landmarks,
    foreground_percentiles,
    map_to_standard,
    volume_landmarks,
)
from napari_elnet.transforms.order import RankIndex, rank_index
from napari_elnet.transforms.resample import reference_resize, resize, resize_finite

BRIGHT_PERCENTILE = 99.5
"""Voxels above this percentile of a resized series are set to it (MRNet's volumes were made so)."""


def resize_slices(volume: np.ndarray | torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Resize every slice to size x size (bilinear, anti-aliased when shrinking).

    ``F.interpolate(..., mode="bilinear", align_corners=False, antialias=True)``'s operator and
    weights with the height pass first (:mod:`~napari_elnet.transforms.resample`): within float32
    rounding of its values.

    Shape:
        volume (S, H, W) -> (S, size, size) float32.
    """
    tensor = _as_float_tensor(volume)
    if tuple(tensor.shape[1:]) == (size, size):
        return tensor
    return resize(tensor, (size, size))


def _as_float_tensor(volume: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The (S, H, W) volume as a float32 tensor (sharing a float32 array's memory)."""
    tensor = torch.as_tensor(
        np.asarray(volume, dtype=np.float32) if isinstance(volume, np.ndarray) else volume
    )
    if tensor.ndim != 3 or min(tensor.shape) < 1:
        raise ConfigurationError(f"expected a (S, H, W) volume, got shape {tuple(tensor.shape)}")
    return tensor.float()


def clip_bright(volume: np.ndarray, percentile: float = BRIGHT_PERCENTILE) -> np.ndarray:
    """The series with its brightest voxels (fluid, flow, coil hot spots) clipped to ``percentile``.

    MRNet's uint8 volumes were scaled and clipped at this percentile; without the same clip a
    scanner series has a bright tail that no model trained on them has seen.
    """
    volume = np.asarray(volume)
    index = rank_index(volume) if volume.dtype == np.float32 else None
    if index is None:
        return np.minimum(volume, np.float32(_percentile(volume, percentile)))
    return np.minimum(volume, np.float32(_ranked_percentile(index, percentile)))


def _ranked_percentile(index: RankIndex, percentile: float) -> float:
    """:func:`_percentile`'s value (its very arithmetic) from a rank index of the volume."""
    position = percentile / 100.0 * (index.size - 1)
    k = int(position)
    if k + 1 >= index.size:
        return float(index.at([k])[0])
    low, high = (float(v) for v in index.at([k, k + 1]))
    return low + (high - low) * (position - k)


def _percentile(volume: np.ndarray, percentile: float) -> float:
    """``np.percentile`` (linear) from partitions of only the voxels near the percentile.

    For a high percentile a strided sample gives a threshold safely below it; only the voxels at
    or above the threshold are partitioned (exact: the rank is checked, with a full partition as
    the fallback). 4 ms instead of 18 ms for 32 x 256 x 256.
    """
    flat = volume.reshape(-1)
    position = percentile / 100.0 * (flat.size - 1)
    k = int(position)
    candidates, below = _at_or_above_rank(flat, k)
    local = k - below
    parted = np.partition(candidates, local)
    low = float(parted[local])
    if local + 1 >= parted.size:
        return low
    return low + (float(parted[local + 1 :].min()) - low) * (position - k)


_SAMPLE = 1 << 16
"""Voxels in the sample that sets the partition threshold of ``_percentile``."""


def _at_or_above_rank(flat: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """The values that include every value of ascending rank >= ``k``, and how many are left out.

    Returns ``(values, below)`` where the ``below`` left-out values are all smaller than every
    value kept, and ``below <= k``.
    """
    step = max(1, flat.size // _SAMPLE)
    if step > 1 and (flat.size - k) * 8 < flat.size:
        sample = flat[::step]
        rank = int(sample.size * k / flat.size) - int(4 * sample.size**0.5) - 8
        if rank > 0:
            threshold = np.partition(sample, rank)[rank]
            kept = flat[flat >= threshold]
            below = flat.size - kept.size
            if below <= k:
                return kept, below
    return flat, 0


@dataclass(frozen=True, eq=False)
class PreparedSeries:
    """A series resized to 256 x 256 and clipped once, shared by every model that reads it.

    Attributes:
        clipped: (S, 256, 256) float32, the resized series with its brightest voxels clipped.
        value_range: ``(float(clipped.min()), float(clipped.max()))`` when known and both nonzero
            (else None: the mapping takes numpy's min and max).
    """

    clipped: np.ndarray
    _ranks: list[RankIndex] = field(default_factory=list, repr=False)
    _landmarks: dict[tuple[float, ...], np.ndarray] = field(default_factory=dict, repr=False)
    value_range: tuple[float, float] | None = None

    @property
    def ranks(self) -> RankIndex | None:
        """The rank index of ``clipped`` until the first landmarks are taken from it (None after,
        and on numpy's path for a series with NaN or inf).

        It is released then: its bucket numbers take 4 bytes per voxel, as much as the series
        itself; a later model with other percentiles pays for a new index
        (:func:`volume_landmarks`, the same values).
        """
        return self._ranks[0] if self._ranks else None

    def source_landmarks(self, percentiles: tuple[float, ...]) -> np.ndarray:
        """The series' foreground intensities at ``percentiles`` (computed once per set)."""
        key = tuple(float(p) for p in percentiles)
        if key not in self._landmarks:
            if self._ranks:
                mean = self.clipped.reshape(-1).mean()
                self._landmarks[key] = foreground_percentiles(self._ranks.pop(), mean, key)
            else:
                self._landmarks[key] = volume_landmarks(self.clipped, key)
        return self._landmarks[key]

    def network_input(self, landmarks: Landmarks | None = None) -> torch.Tensor:
        """ELNet input for a model with ``landmarks`` (None: the per-volume fallback).

        Returns:
            (S, 1, 256, 256) float32 tensor on the CPU.
        """
        landmarks = landmarks or FALLBACK_LANDMARKS
        source = self.source_landmarks(landmarks.percentiles)
        mapped = map_to_standard(
            self.clipped,
            source,
            landmarks,
            workers=torch.get_num_threads(),
            value_range=self.value_range,
        )
        return torch.from_numpy(mapped)[:, None]


def prepare_series(volume: np.ndarray | torch.Tensor) -> PreparedSeries:
    """Resize every slice to 256 x 256 and clip the brightest voxels: the model-independent part.

    One rank index of the resized series gives the clip value and, later, the first model's
    foreground landmarks (the same values as :func:`clip_bright` and ``np.percentile``).

    Shape:
        volume (S, H, W), any scale.
    """
    tensor = _as_float_tensor(volume)
    same = tuple(tensor.shape[1:]) == (INPUT_SIZE, INPUT_SIZE)
    resized = (tensor if same else resize_finite(tensor, (INPUT_SIZE, INPUT_SIZE))).numpy()
    index = rank_index(resized, workers=torch.get_num_threads())
    if index is None:  # NaN or inf: F.interpolate's own resize, numpy's own percentiles
        if not same:
            resized = reference_resize(tensor, (INPUT_SIZE, INPUT_SIZE)).numpy()
        return PreparedSeries(clip_bright(resized))
    ceiling = np.float32(_ranked_percentile(index, BRIGHT_PERCENTILE))
    # A resized series is this function's own array: clipped where it lies (not the caller's).
    fresh = tuple(resized.shape[1:]) != tuple(volume.shape[1:])
    clipped = _clip_at(resized, ceiling, in_place=fresh)
    return PreparedSeries(
        clipped, [index.clipped(clipped)], value_range=_clipped_range(index, ceiling)
    )


def _clip_at(values: np.ndarray, ceiling: np.float32, in_place: bool) -> np.ndarray:
    """``np.minimum(values, ceiling)`` for finite float32 ``values``, the same bits.

    torch's clamp takes half of numpy's time; the two agree on every value but a tie between
    zeros of both signs (equal nonzero floats have the same bits), so a ceiling of zero is left
    to numpy.
    """
    if ceiling == 0:
        return np.minimum(values, ceiling, out=values if in_place else None)
    tensor = torch.from_numpy(values)
    if in_place:
        tensor.clamp_(max=float(ceiling))
        return values
    return torch.clamp(tensor, max=float(ceiling)).numpy()


def _clipped_range(index: RankIndex, ceiling: np.float32) -> tuple[float, float] | None:
    """The smallest and largest value of the series clipped at ``ceiling``, if both are nonzero."""
    value_range = index.value_range
    if value_range is None:
        return None
    lowest, highest = value_range[0], min(value_range[1], float(ceiling))
    return (lowest, highest) if lowest != 0 and highest != 0 else None


def prepare_volume(volume: np.ndarray, landmarks: Landmarks | None = None) -> torch.Tensor:
    """Turn a series' pixels into ELNet input.

    Args:
        volume: (S, H, W) intensities of one series, any scale.
        landmarks: The model's intensity landmarks; None for the per-volume percentile fallback.

    Returns:
        (S, 1, 256, 256) float32 tensor on the CPU.
    """
    return prepare_series(volume).network_input(landmarks)
