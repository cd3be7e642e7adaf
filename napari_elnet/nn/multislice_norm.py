"""Multi-slice normalization of ELNet: statistics per slice (layer) or per slice and channel (contrast)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.nn.norm_kinds import NORM_KINDS, NormKind


class MultiSliceNorm(nn.Module):
    """Standardize each slice of a series, then apply a per-channel affine transform.

    ``layer``: mean and variance over (C, H, W) of each slice; ``contrast``: over (H, W) of each slice
    and channel. Slices are the batch dimension, so this is GroupNorm with 1 or C groups.

    Shape:
        input and output (S, C, H, W); weight (gamma) and bias (beta) (C,).
    """

    def __init__(self, channels: int, kind: NormKind = "layer", eps: float = 1e-5) -> None:
        super().__init__()
        if kind not in NORM_KINDS:
            raise ConfigurationError(f"unknown norm {kind!r}; expected one of {NORM_KINDS}")
        self.channels = channels
        self.kind = kind
        self.eps = eps
        self.groups = 1 if kind == "layer" else channels
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.groups, self.weight, self.bias, self.eps)

    def statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation (sqrt(var + eps)) used by ``forward``, each (S, C).

        For ``layer`` the values are repeated over the channels of a slice.
        """
        s, c = x.shape[:2]
        grouped = x.reshape(s, self.groups, -1)
        mean = grouped.mean(dim=-1)
        std = torch.sqrt(grouped.var(dim=-1, unbiased=False) + self.eps)
        repeat = c // self.groups
        return mean.repeat_interleave(repeat, dim=1), std.repeat_interleave(repeat, dim=1)

    def extra_repr(self) -> str:
        return f"{self.channels}, kind={self.kind}, eps={self.eps}"
