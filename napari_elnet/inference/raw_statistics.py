"""The applicability statistics of descriptions before version 3, on the raw series.

Descriptions of versions 1 and 2 fit their intensity-profile and image limits on statistics taken
from the raw series (subsampled to at most PROFILE_SIZE pixels per row, or a few slices
area-averaged to GHOST_GRID, then clipped on their own), not on the series prepared for the
network as version 3 does. A model file with such a description is checked with these, the
statistics its limits were fit on (they differ from the prepared ones at other sizes than 256 px:
the network sees a bilinear resize, not an area average).
"""

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
    _ghosting,
    sampled_slices,
)
from napari_elnet.transforms.intensity import DEFAULT_PERCENTILES, volume_landmarks
from napari_elnet.transforms.preprocess import clip_bright

PROFILE_SIZE = 128
"""The profile was taken on every n-th pixel so that at most this many remained per row."""


def raw_intensity_profile(
    array: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> np.ndarray:
    """The intensity profile (L,) of versions 1 and 2: landmarks of the raw series subsampled, then
    clipped."""
    step = max(1, math.ceil(min(array.shape[1:]) / PROFILE_SIZE))
    sample = np.ascontiguousarray(array[:, ::step, ::step], dtype=np.float32)
    values = volume_landmarks(clip_bright(sample), tuple(percentiles))
    span = values[-1] - values[0]
    return (values - values[0]) / span if span > 0 else np.zeros_like(values)


def raw_image_statistics(array: np.ndarray) -> np.ndarray:
    """Noise floor and ghosting (3,) of version 2: a few raw slices area-averaged to GHOST_GRID,
    then clipped."""
    sample = torch.from_numpy(np.asarray(sampled_slices(array), dtype=np.float32))
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
    return np.array([floor, _ghosting(x, 1), _ghosting(x, 2)])
