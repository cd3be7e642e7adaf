"""Phantom writers: MRNet volumes are scaled as the preprocessing expects MRNet's to be."""

from __future__ import annotations

import numpy as np

from napari_elnet.common.series import Series
from napari_elnet.phantom.writers import MRNET_PERCENTILE, MRNET_SIZE, to_mrnet_volume
from napari_elnet.transforms.preprocess import BRIGHT_PERCENTILE


def test_the_mrnet_scale_is_the_preprocessing_clip() -> None:
    assert MRNET_PERCENTILE == BRIGHT_PERCENTILE


def test_a_volume_reaches_255_at_the_percentile() -> None:
    rng = np.random.default_rng(0)
    array = rng.gamma(2.0, 50.0, (4, MRNET_SIZE, MRNET_SIZE)).astype(np.float32)
    volume = to_mrnet_volume(Series(array=array, spacing=(3.0, 0.5, 0.5), plane="axial"))
    assert volume.dtype == np.uint8 and volume.shape == (4, MRNET_SIZE, MRNET_SIZE)
    share_at_top = float(np.mean(volume == 255))
    assert 0.004 <= share_at_top <= 0.01  # the top 0.5 % (plus rounding) saturates


def test_the_mrnet_volume_is_the_former_torch_resize() -> None:
    """The NumPy antialiased resize gives the former torch writer's uint8 volume."""
    from support.former_phantom import former_resize_antialiased

    array = np.random.default_rng(4).gamma(2.0, 300.0, (5, 448, 448)).astype(np.float32)
    resized = former_resize_antialiased(array, (MRNET_SIZE, MRNET_SIZE))
    high = float(np.percentile(resized, MRNET_PERCENTILE))
    former = np.clip(resized / high * 255.0, 0, 255).astype(np.uint8)
    volume = to_mrnet_volume(Series(array=array, spacing=(3.0, 0.3, 0.3), plane="coronal"))
    assert np.mean(volume != former) < 1e-4
    assert int(np.abs(volume.astype(int) - former).max()) <= 1
