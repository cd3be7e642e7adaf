"""choose_series: the one rule that picks the series a model reads."""

from __future__ import annotations

import numpy as np

from napari_elnet.common.series import MIN_SLICES, Plane, Series, choose_series


def _series(plane: Plane, slices: int) -> Series:
    return Series(array=np.zeros((slices, 4, 4), np.float32), plane=plane)


def test_the_plane_with_the_most_slices_wins_and_ties_go_to_the_first() -> None:
    series = [
        _series("axial", 10),
        _series("coronal", 30),
        _series("axial", 20),
        _series("axial", 20),
    ]
    assert choose_series(series, "axial") == 2
    assert choose_series(series, "coronal") == 1


def test_localizers_and_missing_planes_give_none() -> None:
    series = [_series("sagittal", MIN_SLICES - 1), _series("axial", MIN_SLICES)]
    assert choose_series(series, "sagittal") is None
    assert choose_series(series, "axial") == 1
    assert choose_series([], "axial") is None
