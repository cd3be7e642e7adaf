"""The preprocessing as it was before the exact fast paths: the oracle the bit-for-bit tests
compare the current implementation with.

Its knot set-up resembles ``transforms/intensity.py`` on purpose: it is a frozen copy of the former
code, since an oracle must not call the code it checks."""

from __future__ import annotations

import numpy as np

from napari_elnet.transforms.intensity import Landmarks


def former_map_to_standard(
    volume: np.ndarray, source: np.ndarray, landmarks: Landmarks
) -> np.ndarray:
    """map_to_standard as it was before the exact fast path: one np.interp pass."""
    target = np.asarray(landmarks.standard, dtype=np.float64)
    source = np.asarray(source, dtype=np.float64)
    if source[-1] <= source[0]:
        return np.zeros_like(volume, dtype=np.float32)
    source = np.maximum.accumulate(
        source + np.arange(source.size) * 1e-6 * (source[-1] - source[0])
    )
    low_slope = (target[1] - target[0]) / (source[1] - source[0])
    high_slope = (target[-1] - target[-2]) / (source[-1] - source[-2])
    lowest, highest = float(volume.min()), float(volume.max())
    knots, values = [source], [target]
    if lowest < source[0]:
        knots.insert(0, np.array([lowest]))
        values.insert(0, np.array([target[0] + (lowest - source[0]) * low_slope]))
    if highest > source[-1]:
        knots.append(np.array([highest]))
        values.append(np.array([target[-1] + (highest - source[-1]) * high_slope]))
    return np.interp(volume, np.concatenate(knots), np.concatenate(values)).astype(np.float32)
