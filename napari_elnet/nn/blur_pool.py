"""Anti-aliased downsampling (Zhang, ICML 2019) as used by ELNet: binomial blur, stride 2, no padding."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from napari_elnet.common.errors import ConfigurationError


def binomial_kernel(size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalized 2D binomial filter of shape (size, size); size 5 gives outer([1,4,6,4,1]) / 256."""
    if size < 1:
        raise ConfigurationError(f"blur size must be >= 1, got {size}")
    row = torch.tensor([math.comb(size - 1, i) for i in range(size)], dtype=dtype)
    kernel = torch.outer(row, row)
    return kernel / kernel.sum()


def blur_pool2d(x: torch.Tensor, kernel: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Blur every channel with ``kernel`` and subsample, without padding ("valid").

    Shape:
        x: (N, C, H, W); kernel: (k, k); output: (N, C, (H - k) // stride + 1, (W - k) // stride + 1).
    """
    c, h, w = x.shape[1:]
    k = kernel.shape[-1]
    if h < k or w < k:
        raise ConfigurationError(f"BlurPool input {h}x{w} is smaller than its {k}x{k} filter")
    weight = kernel.to(x.dtype).expand(c, 1, k, k)
    return F.conv2d(x, weight, stride=stride, groups=c)


class BlurPool2d(nn.Module):
    """Binomial blur of size ``size`` followed by stride-2 subsampling, no padding.

    The filter is a buffer, not a parameter: it is saved with the model and never trained.

    Shape:
        input (N, C, H, W) -> output (N, C, (H - size) // 2 + 1, (W - size) // 2 + 1)
    """

    kernel: torch.Tensor

    def __init__(self, size: int = 5, stride: int = 2) -> None:
        super().__init__()
        self.size = size
        self.stride = stride
        self.register_buffer("kernel", binomial_kernel(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur_pool2d(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"size={self.size}, stride={self.stride}"
