"""ELNet (Tsai et al., MIDL 2020): a < 1 MB CNN that classifies one MRI series from all its slices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.nn.blur_pool import BlurPool2d
from napari_elnet.nn.multislice_norm import MultiSliceNorm
from napari_elnet.nn.norm_kinds import NORM_KINDS, NormKind

INPUT_SIZE = 256
"""Every slice is resized to INPUT_SIZE x INPUT_SIZE before the network (smaller inputs fail)."""


@dataclass(frozen=True)
class ELNetConfig:
    """Architecture of one ELNet.

    k: width multiplier (channels 4k, 8k, 16k); norm: multi-slice normalization kind; blur: BlurPool
    filter size; dropout: probability before the classifier; eps: normalization epsilon (the paper
    says 1e-8, its reference code uses 1e-5, which we keep for float32 stability).
    """

    k: int = 4
    norm: NormKind = "layer"
    blur: int = 5
    dropout: float = 0.2
    eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigurationError(f"k must be >= 1, got {self.k}")
        if self.norm not in NORM_KINDS:
            raise ConfigurationError(f"unknown norm {self.norm!r}; expected one of {NORM_KINDS}")
        if self.blur < 1:
            raise ConfigurationError(f"blur must be >= 1, got {self.blur}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigurationError(f"dropout must be in [0, 1), got {self.dropout}")


def expected_parameter_count(k: int) -> int:
    """Trainable parameters of ELNet with width k (paper, Table 1): 13120 k^2 + 348 k + 2."""
    return 13120 * k * k + 348 * k + 2


class Block(nn.Module):
    """Residual unit ``x + ReLU(norm(conv(x)))`` with a same-padded, bias-free k x k convolution."""

    def __init__(self, channels: int, kernel: int, norm: NormKind, eps: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)
        self.norm = MultiSliceNorm(channels, norm, eps)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.relu(self.norm(self.conv(x)))


def _stage(
    channels_in: int, channels_out: int, kernel: int, blocks: int, cfg: ELNetConfig
) -> nn.Sequential:
    """``blocks`` Blocks, then a channel-changing conv, ReLU and BlurPool (no norm after that conv)."""
    layers: list[nn.Module] = [Block(channels_in, kernel, cfg.norm, cfg.eps) for _ in range(blocks)]
    layers += [
        nn.Conv2d(channels_in, channels_out, kernel, padding=kernel // 2, bias=False),
        nn.ReLU(),
        BlurPool2d(cfg.blur),
    ]
    return nn.Sequential(*layers)


class ELNet(nn.Module):
    """The Efficiently-Layered Network; one series in, two logits (negative, positive) out.

    Args:
        k: width multiplier; 4 gives 211,314 and 2 gives 53,178 trainable parameters.
        norm: ``"layer"`` or ``"contrast"`` multi-slice normalization.
        blur: BlurPool filter size (5 in the paper).
        dropout: dropout probability before the classifier.
        seed: seed of the weight initialization; the global RNG is left untouched.

    Shape:
        input (S, 1, 256, 256) for a series of S >= 1 slices; output (2,) logits.
        Feature maps are 62, 29, 13, 5 and 1 pixels wide after the five BlurPools.
    """

    def __init__(
        self,
        k: int = 4,
        norm: NormKind = "layer",
        blur: int = 5,
        dropout: float = 0.2,
        seed: int = 0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        cfg = ELNetConfig(k=k, norm=norm, blur=blur, dropout=dropout, eps=eps)
        self.config = cfg
        c1, c2, c3 = 4 * k, 8 * k, 16 * k
        # torch's layer constructors draw default weights from the global RNG: restore it afterwards.
        with torch.random.fork_rng(devices=[]):
            self._build(c1, c2, c3, cfg)
        self.reset_parameters(seed)
        # Channels-last (NHWC) runs the convolutions and the depthwise blur 1.5-2x faster on CPU.
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in torch's stub

    def _build(self, c1: int, c2: int, c3: int, cfg: ELNetConfig) -> None:
        norm, eps, blur = cfg.norm, cfg.eps, cfg.blur
        self.stem = nn.Sequential(
            nn.Conv2d(1, c1, 7, stride=2, padding=3, bias=False),
            MultiSliceNorm(c1, norm, eps),
            nn.ReLU(),
            BlurPool2d(blur),
        )
        self.stages = nn.Sequential(
            _stage(c1, c2, 5, 2, cfg),
            _stage(c2, c3, 3, 2, cfg),
            _stage(c3, c3, 3, 1, cfg),
            _stage(c3, c3, 3, 1, cfg),
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(c3, 2)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Initialize weights deterministically from ``seed`` (He-uniform convs, default linear)."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu", generator=generator)
            elif isinstance(module, MultiSliceNorm):
                module.weight.fill_(1.0)
                module.bias.fill_(0.0)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / module.in_features**0.5
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)

    def slice_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-slice feature vectors, (S, 1, 256, 256) -> (S, 16k)."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ConfigurationError(f"ELNet expects (S, 1, H, W) input, got {tuple(x.shape)}")
        if x.shape[0] < 1:
            raise ConfigurationError("ELNet needs at least one slice")
        x = x.contiguous(memory_format=torch.channels_last)
        feature_map = self.stages(self.stem(x))
        return torch.amax(feature_map, dim=(2, 3))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector of a series (max over slices), (S, 1, 256, 256) -> (16k,)."""
        return torch.amax(self.slice_features(x), dim=0)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from a pooled feature vector (dropout, then the classifier), (16k,) -> (2,)."""
        return self.classifier(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def norm_layers(self) -> list[MultiSliceNorm]:
        """Every multi-slice normalization layer, in forward order."""
        return [m for m in self.modules() if isinstance(m, MultiSliceNorm)]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
