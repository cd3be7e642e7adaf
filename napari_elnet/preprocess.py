"""The one preprocessing path shared by training and inference: resize to 256 x 256, standardize."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_elnet.errors import ConfigurationError
from napari_elnet.intensity import Landmarks, standardize
from napari_elnet.model import INPUT_SIZE


def resize_slices(volume: np.ndarray | torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Resize every slice to size x size (bilinear, anti-aliased when shrinking).

    Shape:
        volume (S, H, W) -> (S, size, size) float32.
    """
    tensor = torch.as_tensor(
        np.asarray(volume, dtype=np.float32) if isinstance(volume, np.ndarray) else volume
    )
    if tensor.ndim != 3 or min(tensor.shape) < 1:
        raise ConfigurationError(f"expected a (S, H, W) volume, got shape {tuple(tensor.shape)}")
    if tuple(tensor.shape[1:]) == (size, size):
        return tensor.float()
    resized = F.interpolate(
        tensor.float()[:, None],
        size=(size, size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return resized[:, 0]


def prepare_volume(volume: np.ndarray, landmarks: Landmarks | None = None) -> torch.Tensor:
    """Turn a series' pixels into ELNet input.

    Args:
        volume: (S, H, W) intensities of one series, any scale.
        landmarks: The model's intensity landmarks; None for the per-volume percentile fallback.

    Returns:
        (S, 1, 256, 256) float32 tensor on the CPU.
    """
    resized = resize_slices(volume)
    standardized = standardize(resized.numpy(), landmarks)
    return torch.from_numpy(standardized)[:, None]
