"""A whole study drawn in NumPy equals the study the former torch operations draw from the same
seed: the same labels, geometry and lesion truth, and pixel values within float32 rounding (the
shipped models, the sample study and the benchmark sets were made from the former ones)."""

from __future__ import annotations

import numpy as np
import pytest
from support.former_phantom import former_ops

from napari_elnet.phantom import PhantomConfig, generate_study

CONFIGS = {
    "small": PhantomConfig(matrix=(64, 96), slices=(8, 20)),
    "t1": PhantomConfig(contrast="t1", matrix=(128, 160), slices=(16, 20)),
}


@pytest.mark.parametrize(("seed", "config"), [(3, "small"), (11, "small"), (5, "t1")])
def test_a_study_equals_the_torch_drawn_study(seed: int, config: str) -> None:
    ours = generate_study(seed, CONFIGS[config], labels={"acl": True})
    with former_ops():
        theirs = generate_study(seed, CONFIGS[config], labels={"acl": True})
    assert ours.labels == theirs.labels and ours.lesions == theirs.lesions
    assert ours.to_json() == theirs.to_json()  # truth slices and boxes, shapes
    for plane, series in ours.series.items():
        former = theirs.series[plane]
        assert series.array.dtype == np.float32 and series.shape == former.shape
        assert series.spacing == former.spacing and series.origin == former.origin
        np.testing.assert_allclose(series.array, former.array, rtol=2e-5, atol=1e-3)
        assert np.mean(series.array == former.array) > 0.8  # most pixels bit for bit
        np.testing.assert_allclose(series.window, former.window, rtol=1e-5)  # type: ignore[arg-type]
        for a, b in zip(ours.truth[plane], theirs.truth[plane], strict=True):
            np.testing.assert_array_equal(a.mask, b.mask)
