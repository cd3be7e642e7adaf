"""Multi-slice normalization: statistics per slice (layer) or per slice and channel (contrast)."""

from __future__ import annotations

import pytest
import torch

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.nn.multislice_norm import MultiSliceNorm


def _reference(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


@pytest.mark.parametrize(("kind", "dims"), [("layer", (1, 2, 3)), ("contrast", (2, 3))])
def test_matches_the_paper_equations(kind: str, dims: tuple[int, ...]) -> None:
    x = torch.randn(4, 3, 6, 5, dtype=torch.float64) * 3 + 2
    norm = MultiSliceNorm(3, kind, eps=1e-5).double()
    torch.testing.assert_close(norm(x), _reference(x, dims, 1e-5))


def test_each_slice_is_normalized_independently() -> None:
    x = torch.randn(2, 3, 8, 8)
    norm = MultiSliceNorm(3, "layer")
    scaled = x.clone()
    scaled[1] = scaled[1] * 100 + 50
    torch.testing.assert_close(norm(x)[0], norm(scaled)[0])
    torch.testing.assert_close(norm(x)[1], norm(scaled)[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["layer", "contrast"])
def test_statistics_reproduce_forward(kind: str) -> None:
    x = torch.randn(3, 4, 7, 7, dtype=torch.float64)
    norm = MultiSliceNorm(4, kind).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    mean, std = norm.statistics(x)
    assert tuple(mean.shape) == (3, 4)
    manual = (x - mean[..., None, None]) / std[..., None, None] * norm.weight[:, None, None]
    torch.testing.assert_close(norm(x), manual + norm.bias[:, None, None])


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="unknown norm 'batch'"):
        MultiSliceNorm(4, "batch")  # type: ignore[arg-type]
