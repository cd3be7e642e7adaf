"""The shared preprocessing path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_elnet.errors import ConfigurationError
from napari_elnet.intensity import fit_landmarks, standardize
from napari_elnet.preprocess import prepare_volume, resize_slices


@pytest.mark.parametrize("shape", [(3, 512, 512), (1, 100, 300), (2, 256, 256)])
def test_output_shape_and_dtype(shape: tuple[int, int, int]) -> None:
    out = prepare_volume(np.random.default_rng(0).random(shape, dtype=np.float32) * 1000)
    assert tuple(out.shape) == (shape[0], 1, 256, 256)
    assert out.dtype == torch.float32


def test_resize_keeps_a_constant_slice_constant_and_the_slice_order() -> None:
    vol = np.stack([np.full((64, 80), v, np.float32) for v in (1.0, 2.0, 3.0)])
    out = resize_slices(vol)
    np.testing.assert_allclose(out.mean(dim=(1, 2)).numpy(), [1.0, 2.0, 3.0], rtol=1e-6)


def test_uses_the_model_landmarks() -> None:
    rng = np.random.default_rng(1)
    vol = (rng.random((2, 256, 256)) * 500).astype(np.float32)
    lm = fit_landmarks([vol**1.5])
    expected = standardize(vol, lm)
    np.testing.assert_allclose(prepare_volume(vol, lm)[:, 0].numpy(), expected, atol=1e-6)


def test_rejects_non_volume() -> None:
    with pytest.raises(ConfigurationError, match=r"\(S, H, W\).*\(4, 4\)"):
        prepare_volume(np.zeros((4, 4)))
