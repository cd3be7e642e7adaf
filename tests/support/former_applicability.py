"""The applicability statistics as they were before description version 3 (on the raw series,
subsampled and clipped on their own): the oracle the tests compare the prepared-series path with."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from napari_elnet.inference.applicability import (
    FLOOR_BLOCKS,
    FLOOR_PERCENTILE,
    FLOOR_SHARE,
    GHOST_GRID,
    GHOST_PERIODS,
    IMAGE_SLICES,
)
from napari_elnet.transforms.intensity import DEFAULT_PERCENTILES, volume_landmarks
from napari_elnet.transforms.preprocess import clip_bright

PROFILE_SIZE = 128
"""The profile was taken on every n-th pixel so that at most this many remained per row."""


def former_intensity_profile(
    array: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> np.ndarray:
    """intensity_profile of version 2: landmarks of the raw series subsampled, then clipped."""
    step = max(1, math.ceil(min(array.shape[1:]) / PROFILE_SIZE))
    sample = np.ascontiguousarray(array[:, ::step, ::step], dtype=np.float32)
    values = volume_landmarks(clip_bright(sample), tuple(percentiles))
    span = values[-1] - values[0]
    return (values - values[0]) / span if span > 0 else np.zeros_like(values)


def former_image_statistics(array: np.ndarray) -> np.ndarray:
    """image_statistics of version 2: a few raw slices area-averaged to 128, then clipped."""
    step = max(1, math.ceil(array.shape[0] / IMAGE_SLICES))
    first = (array.shape[0] - 1) % step // 2
    sample = torch.from_numpy(np.asarray(array[first::step], dtype=np.float32))
    with torch.no_grad():
        pooled = F.adaptive_avg_pool2d(sample[:, None], GHOST_GRID)[:, 0].numpy()
    x = clip_bright(pooled)
    flat = x.reshape(-1)
    rank = min(flat.size - 1, round(FLOOR_PERCENTILE / 100 * (flat.size - 1)))
    top = float(np.partition(flat, rank)[rank])
    if not top > 0:
        return np.zeros(3)
    s, b = x.shape[0], GHOST_GRID // FLOOR_BLOCKS
    means = x.reshape(s, FLOOR_BLOCKS, b, FLOOR_BLOCKS, b).mean(axis=(2, 4), dtype=np.float64)
    means = means.reshape(-1)
    k = max(1, int(means.size * FLOOR_SHARE))
    floor = float(np.partition(means, k - 1)[:k].mean()) / top
    return np.array([floor, _former_ghosting(x, 1), _former_ghosting(x, 2)])


def _former_ghosting(x: np.ndarray, axis: int) -> float:
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
