"""Recorded forward and recorded backward of ELNet: same features and gradients as autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.inference.fullgrad import FullGradHooks
from napari_elnet.inference.slice_backward import (
    ForwardRecorder,
    SliceRecord,
    frozen_affine,
    slice_gradients,
)
from napari_elnet.nn.elnet import ELNet

SIZE = 256


def _model(norm: str, seed: int, dtype: torch.dtype = torch.float64, blur: int = 5) -> ELNet:
    """k=1 ELNet in eval mode with non-trivial gamma and beta drawn from ``seed``."""
    model = ELNet(k=1, norm=norm, seed=seed, blur=blur).to(dtype).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.norm_layers():
            layer.weight.copy_(0.5 + torch.rand(layer.weight.shape, generator=generator))
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) - 0.5)
    return model


def _series(slices: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(slices, 1, SIZE, SIZE, generator=generator, dtype=dtype)


def _autograd(
    model: ELNet, x: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Input gradient, biases and bias gradients of ``<weights, slice_features(x)>`` by autograd."""
    with torch.enable_grad(), FullGradHooks(model) as hooks:
        leaf = x.clone().requires_grad_(True)
        features = model.slice_features(leaf)
        biases = tuple(hooks.biases)
        grads = torch.autograd.grad(features, (leaf, *biases), weights)
    return grads[0], tuple(b[:, :, 0, 0].detach() for b in biases), tuple(grads[1:])


@pytest.mark.parametrize(
    ("norm", "dtype", "blur"),
    [("layer", torch.float64, 5), ("contrast", torch.float64, 3), ("layer", torch.float32, 5)],
)
def test_recorded_forward_is_the_plain_forward(norm: str, dtype: torch.dtype, blur: int) -> None:
    model = _model(norm, 1, dtype, blur)
    x = _series(3, 1, dtype)
    with torch.no_grad():
        expected = model.slice_features(x)
        with ForwardRecorder(model) as recorder:
            got = model.slice_features(x)
            record = recorder.take()
    torch.testing.assert_close(got, expected, rtol=0, atol=0)  # the same kernels: same bits
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert set(record.relu) == set(relus)
    assert set(record.stats) == set(model.norm_layers())
    assert len(record) == 3
    torch.testing.assert_close(record.final.amax(dim=(2, 3)), expected, rtol=0, atol=0)
    assert all(not t.requires_grad for t in record.relu.values())


@pytest.mark.parametrize(
    ("norm", "blur", "rows"),
    [("layer", 5, [0, 2]), ("contrast", 5, [1]), ("layer", 3, [0, 1, 2, 3]), ("contrast", 1, [3])],
)
def test_gradients_equal_autograd(norm: str, blur: int, rows: list[int]) -> None:
    model = _model(norm, 2, blur=blur)
    x = _series(4, 2)
    index = torch.tensor(rows)
    weights = torch.randn(len(rows), 16, generator=torch.Generator().manual_seed(2)).double()
    with torch.no_grad(), ForwardRecorder(model) as recorder:
        model.slice_features(x)
        record = recorder.take().rows(index)
        grad_x, biases, grad_biases = slice_gradients(model, record, recorder.shapes, weights)
    expected_x, expected_biases, expected_grads = _autograd(model, x[index], weights)
    torch.testing.assert_close(grad_x, expected_x, rtol=1e-10, atol=1e-12)
    assert len(biases) == len(grad_biases) == len(model.norm_layers())
    for got, expected in zip(biases, expected_biases, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    for got, expected in zip(grad_biases, expected_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_record_rows_cat_and_bytes() -> None:
    model = _model("layer", 3)
    x = _series(4, 3)
    with torch.no_grad(), ForwardRecorder(model) as recorder:
        model.slice_features(x)
        record = recorder.take()
    joined = SliceRecord.cat([record.rows(torch.tensor([3])), record.rows(slice(0, 2))])
    assert len(joined) == 3
    torch.testing.assert_close(joined.final, record.final[[3, 0, 1]], rtol=0, atol=0)
    for module, (mean, rstd) in joined.stats.items():
        torch.testing.assert_close(mean, record.stats[module][0][[3, 0, 1]], rtol=0, atol=0)
        torch.testing.assert_close(rstd, record.stats[module][1][[3, 0, 1]], rtol=0, atol=0)
    assert joined.nbytes * 4 == record.nbytes * 3
    assert record.rows(slice(0, 0)).nbytes == 0


def test_frozen_affine_is_the_norm() -> None:
    model = _model("contrast", 4)
    layer = model.norm_layers()[1]
    x = 2.0 * torch.randn(3, 4, 9, 9, generator=torch.Generator().manual_seed(4)).double() + 1.0
    _, mean, rstd = torch.native_group_norm(x, None, None, 3, 4, 81, layer.groups, layer.eps)
    scale, bias = frozen_affine(layer, mean, rstd)
    with torch.no_grad():
        torch.testing.assert_close(x * scale[:, :, None, None] + bias[:, :, None, None], layer(x))


def test_hooks_removed_after_error_and_take_without_forward() -> None:
    model = _model("layer", 5)
    with pytest.raises(RuntimeError, match="boom"), ForwardRecorder(model) as recorder:
        with pytest.raises(ConfigurationError, match="no forward was recorded"):
            recorder.take()
        raise RuntimeError("boom")
    assert all(len(m._forward_hooks) + len(m._forward_pre_hooks) == 0 for m in model.modules())
    assert all("forward" not in vars(m) for m in model.modules())


def test_unsupported_module_is_named() -> None:
    model = _model("layer", 6)
    model.stages[3][2] = nn.GELU()  # type: ignore[index]  # an activation without a recorded backward
    with pytest.raises(ConfigurationError, match=r"stages\.3\.2 \(GELU\).*supported: "):
        ForwardRecorder(model)
