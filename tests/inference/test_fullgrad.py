"""FullGrad on ELNet: completeness, frozen statistics, shapes, hooks and state, a known answer."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.inference.fullgrad import (
    Chunking,
    Explanation,
    FullGradHooks,
    _recorded_forward,
    explain,
    frozen_statistics,
    fullgrad_terms,
    pooled_features,
    saliency,
    winner_weights,
)
from napari_elnet.nn.elnet import ELNet
from napari_elnet.nn.multislice_norm import MultiSliceNorm

SIZE = 256


def _perturbed_model(norm: str, seed: int, dtype: torch.dtype = torch.float64) -> ELNet:
    """k=1 ELNet with non-trivial gamma, beta and classifier bias drawn from ``seed``."""
    model = ELNet(k=1, norm=norm, seed=seed).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.norm_layers():
            layer.weight.copy_(0.5 + torch.rand(layer.weight.shape, generator=generator))
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) - 0.5)
        model.classifier.bias.copy_(2.0 * torch.rand(2, generator=generator) - 1.0)
    return model


def _series(slices: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Random series of ``slices`` slices, (S, 1, 256, 256)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(slices, 1, SIZE, SIZE, generator=generator, dtype=dtype)


@pytest.fixture(scope="module")
def explained() -> tuple[ELNet, torch.Tensor, Explanation]:
    """A float64 model, a 3-slice series and its explanation at 300 x 200."""
    model = _perturbed_model("layer", 3)
    x = _series(3, 3)
    return model, x, explain(model, x, output_size=(300, 200))


# --- completeness and frozen statistics ---------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm", ["layer", "contrast"])
def test_completeness_float64(norm: str, seed: int) -> None:
    model = _perturbed_model(norm, seed)
    x = _series(2, seed)
    terms = fullgrad_terms(model, x)
    total = (terms.grad_x * x).sum().item() + terms.classifier_bias
    total += sum((g * b).sum().item() for g, b in zip(terms.grad_biases, terms.biases, strict=True))
    model.eval()
    with torch.no_grad():
        logits = model(x)
    score = (logits[1] - logits[0]).item()
    assert abs(total - score) / max(1.0, abs(score)) < 1e-4
    assert explain(model, x).completeness_residual < 1e-4


def test_completeness_float32() -> None:
    model = _perturbed_model("contrast", 5, torch.float32)
    assert explain(model, _series(2, 5, torch.float32)).completeness_residual < 1e-4


def test_bias_terms_cover_every_norm_layer() -> None:
    model = _perturbed_model("contrast", 4)
    x = _series(2, 4)
    inputs: list[torch.Tensor] = []
    handles = [
        layer.register_forward_hook(lambda _m, args, _out: inputs.append(args[0].detach()))
        for layer in model.norm_layers()
    ]
    terms = fullgrad_terms(model, x)
    for handle in handles:
        handle.remove()
    assert len(terms.biases) == len(model.norm_layers()) == len(inputs)
    for layer, bias, grad, layer_input in zip(
        model.norm_layers(), terms.biases, terms.grad_biases, inputs, strict=True
    ):
        mean, std = layer.statistics(layer_input)
        expected = layer.bias - layer.weight * mean / std
        assert bias.shape == grad.shape == layer_input.shape
        torch.testing.assert_close(bias[:, :, 0, 0], expected.detach())
        torch.testing.assert_close(bias, bias[:, :, :1, :1].expand_as(bias))


@pytest.mark.parametrize("norm", ["layer", "contrast"])
def test_frozen_statistics_equal_module_statistics(norm: str) -> None:
    layer = MultiSliceNorm(8, norm).double()
    x = 3.0 * torch.randn(3, 8, 20, 20, generator=torch.Generator().manual_seed(0)).double() + 1.0
    for got, expected in zip(frozen_statistics(layer, x), layer.statistics(x), strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(("channels", "kernel", "size"), [(1, 7, 16), (2, 3, 10), (1, 7, 15)])
def test_fast_stem_gradient_is_exact(channels: int, kernel: int, size: int) -> None:
    conv = nn.Conv2d(channels, 3, kernel, stride=2, padding=kernel // 2, bias=False).double()
    x = torch.randn(2, channels, size, size, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn_like(conv(x))
    (expected,) = torch.autograd.grad(conv(x), x, grad_out)
    with FullGradHooks(conv):
        assert torch.autograd.gradcheck(conv, (x,))
        (got,) = torch.autograd.grad(conv(x), x, grad_out)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(
    ("norm", "dtype", "tol"),
    [
        ("layer", torch.float64, 1e-10),
        ("contrast", torch.float64, 1e-10),
        ("layer", torch.float32, 1e-4),
    ],
)
def test_frozen_forward_equals_plain_forward(norm: str, dtype: torch.dtype, tol: float) -> None:
    model = _perturbed_model(norm, 7, dtype).eval()
    x = _series(3, 7, dtype)
    with torch.no_grad():
        plain = model(x)
    frozen = fullgrad_terms(model, x).logits
    torch.testing.assert_close(frozen, plain, atol=tol, rtol=tol)
    result = explain(model, x)
    torch.testing.assert_close(torch.tensor(result.logits, dtype=dtype), plain, atol=tol, rtol=tol)
    assert result.score == pytest.approx(float(plain[1] - plain[0]), abs=tol)
    assert result.probability == pytest.approx(float(torch.softmax(plain, 0)[1]), abs=tol)


# --- shapes and values ------------------------------------------------------------------------


def test_heatmap_at_output_size(explained: tuple[ELNet, torch.Tensor, Explanation]) -> None:
    _, _, result = explained
    assert result.heatmap.shape == (3, 300, 200)
    assert result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0
    assert result.heatmap.max() == 1.0
    assert result.relevance.shape == (3,)
    assert result.relevance.dtype == np.float64
    assert result.top_slice == int(np.argmax(result.relevance))
    s, r, c = result.peak
    assert 0 <= s < 3 and 0 <= r < 300 and 0 <= c < 200
    assert result.heatmap[s, r, c] == result.heatmap.max()


def test_heatmap_default_size_and_relevance(
    explained: tuple[ELNet, torch.Tensor, Explanation],
) -> None:
    model, x, resized = explained
    result = explain(model, x)
    volume = saliency(fullgrad_terms(model, x)).numpy()
    assert result.heatmap.shape == (3, SIZE, SIZE)
    np.testing.assert_allclose(result.heatmap, volume, atol=1e-6)
    # Relevance is taken at the network's resolution: it does not depend on output_size.
    np.testing.assert_allclose(result.relevance, volume.sum(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(resized.relevance, result.relevance, rtol=1e-12)
    assert result.heatmap.max() == 1.0


def test_volume_normalization_is_not_per_slice() -> None:
    model = _perturbed_model("layer", 8)
    x = _series(3, 8)
    x[1] *= 0.0  # a blank slice: its map must stay low, not be stretched to [0, 1] on its own
    result = explain(model, x)
    per_slice_max = result.heatmap.reshape(3, -1).max(axis=1)
    assert per_slice_max.max() == 1.0
    assert per_slice_max.min() < 0.5


def test_constant_map_gives_zeros() -> None:
    model = _perturbed_model("layer", 9)
    with torch.no_grad():
        model.classifier.weight.zero_()
    result = explain(model, _series(2, 9), output_size=(64, 48))
    assert not np.isnan(result.heatmap).any()
    np.testing.assert_array_equal(result.heatmap, np.zeros((2, 64, 48), np.float32))
    np.testing.assert_array_equal(result.relevance, np.zeros(2))
    assert (result.top_slice, result.peak) == (0, (0, 0, 0))
    assert result.completeness_residual < 1e-12


# --- state of the model -----------------------------------------------------------------------


def _hook_counts(model: nn.Module) -> list[int]:
    """Number of forward hooks and pre-hooks on every module."""
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]


def test_model_state_restored_after_explain() -> None:
    model = _perturbed_model("layer", 10).train()
    model.stem.eval()  # a mixed state must come back as it was
    model.classifier.bias.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    x = _series(2, 10)
    first = explain(model, x)
    second = explain(model, x)
    assert first.logits == second.logits  # dropout is off during the explanation pass
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert _hook_counts(model) == [0] * len(modes)


def test_hooks_removed_and_mode_restored_after_error() -> None:
    model = _perturbed_model("contrast", 11).train()
    with pytest.raises(RuntimeError, match="boom"), FullGradHooks(model):
        assert not model.training
        raise RuntimeError("boom")
    assert model.training
    assert all(m.training for m in model.modules())
    assert _hook_counts(model) == [0] * len(list(model.modules()))


def test_error_inside_explain_leaves_user_hooks_only() -> None:
    model = _perturbed_model("layer", 12).train()

    def fail(_module: nn.Module, _args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        raise RuntimeError("user hook failed")

    handle = model.stages[1].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="user hook failed"):
        explain(model, _series(2, 12))
    handle.remove()
    assert all(m.training for m in model.modules())
    assert _hook_counts(model) == [0] * len(list(model.modules()))


def test_terms_hold_no_graph() -> None:
    terms = fullgrad_terms(_perturbed_model("layer", 13), _series(2, 13))
    tensors = [terms.logits, terms.x, terms.grad_x, *terms.biases, *terms.grad_biases]
    assert [t.requires_grad for t in tensors] == [False] * len(tensors)


def test_works_under_no_grad_and_inference_mode() -> None:
    model = _perturbed_model("layer", 14)
    x = _series(2, 14)
    expected = explain(model, x).heatmap
    with torch.no_grad():
        np.testing.assert_array_equal(explain(model, x).heatmap, expected)
    with torch.inference_mode():
        np.testing.assert_array_equal(explain(model, x.clone()).heatmap, expected)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(2, 256, 256), (2, 3, 256, 256), (2, 1, 128, 128), (0, 1, 256, 256)]
)
def test_wrong_input_shape(shape: tuple[int, ...]) -> None:
    model = ELNet(k=1)
    with pytest.raises(ConfigurationError, match=r"\(S, 1, 256, 256\).*got"):
        explain(model, torch.zeros(shape))


def test_wrong_dtype() -> None:
    with pytest.raises(
        ConfigurationError,
        match=re.escape("input dtype torch.float64 != model dtype torch.float32"),
    ):
        explain(ELNet(k=1), torch.zeros(1, 1, SIZE, SIZE, dtype=torch.float64))


@pytest.mark.parametrize("size", [(0, 10), (10,), (10.5, 10)])
def test_wrong_output_size(size: tuple[float, ...]) -> None:
    with pytest.raises(ConfigurationError, match="output_size must be two positive integers"):
        explain(ELNet(k=1), torch.zeros(1, 1, SIZE, SIZE), output_size=size)  # type: ignore


# --- known answer -----------------------------------------------------------------------------

SQUARE = (150, 60, 32)  # top row, left column and side of the bright square, off-centre on purpose


def _square_detector(norm: str) -> ELNet:
    """k=1 ELNet that fires only on compact bright structures.

    Every convolution is a box filter; the stem norm has beta = -6, so only pixels more than six
    standard deviations above their slice's mean pass its ReLU (noise never does, a small bright
    square does); the positive logit is the sum of the features.
    """
    model = ELNet(k=1, norm=norm, dropout=0.0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0 / module.weight[0].numel())
        model.norm_layers()[0].bias.fill_(-6.0)
        model.classifier.weight.zero_()
        model.classifier.weight[1].fill_(1.0)
        model.classifier.bias.zero_()
    return model


@pytest.mark.parametrize(("norm", "winner"), [("layer", 3), ("contrast", 1)])
def test_known_answer_bright_square(norm: str, winner: int) -> None:
    generator = torch.Generator().manual_seed(winner)
    x = 0.3 * torch.randn(5, 1, SIZE, SIZE, generator=generator)
    top, left, side = SQUARE
    x[winner, 0, top : top + side, left : left + side] += 1.0
    model = _square_detector(norm)

    result = explain(model, x)
    assert result.score > 0.0
    assert result.top_slice == winner
    s, r, c = result.peak
    assert s == winner
    assert top <= r < top + side and left <= c < left + side
    others = np.delete(result.relevance, winner)
    assert others.max() < 0.01 * result.relevance[winner]

    # The same structure found at the series' own size (rows x 1.25, columns x 0.75).
    resized = explain(model, x, output_size=(320, 192))
    s, r, c = resized.peak
    assert s == winner
    assert 1.25 * top <= r < 1.25 * (top + side) and 0.75 * left <= c < 0.75 * (left + side)


# --- winning slices, chunks -------------------------------------------------------------------

SMALL_CHUNKS = Chunking(forward_slices=5, grad_slices=3, record_slices=4)
TINY_BUDGET = Chunking(budget_mb=0.5, grad_slices=3, record_slices=5)
"""Room for the records of about one k=1 float64 slice: most winners run their forward again."""
NO_ROOM = Chunking(budget_mb=1e-4, grad_slices=2, record_slices=1)
"""No room for any record: every winner runs its forward again, one slice at a time."""


def _full_pass(model: ELNet, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, float]:
    """Map, relevance and completeness residual of one pass through every slice (the reference)."""
    terms = fullgrad_terms(model, x)
    volume = saliency(terms)
    return volume, volume.sum(dim=(1, 2)).numpy(), terms.completeness_residual()


@pytest.mark.parametrize(
    ("norm", "slices"),
    [("layer", 1), ("layer", 3), ("layer", 64), ("contrast", 1), ("contrast", 2), ("contrast", 33)],
)
def test_winning_slices_equal_the_full_pass(norm: str, slices: int) -> None:
    model = _perturbed_model(norm, slices)
    x = _series(slices, slices)
    volume, relevance, residual = _full_pass(model, x)
    result = explain(model, x, chunking=SMALL_CHUNKS)
    np.testing.assert_allclose(result.heatmap, volume.float().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.relevance, relevance, rtol=0, atol=1e-6)
    assert result.completeness_residual == pytest.approx(residual, abs=1e-6)
    assert result.completeness_residual < 1e-10
    assert result.top_slice == int(np.argmax(relevance))
    if slices > 16:  # k = 1 has 16 features: most slices hold no maximum and get zeros
        assert (result.relevance == 0).sum() >= slices - 16
        assert (result.heatmap.reshape(slices, -1).max(axis=1) == 0).sum() >= slices - 16


@pytest.mark.parametrize(
    ("norm", "slices", "chunking"),
    [
        ("layer", 1, TINY_BUDGET),
        ("contrast", 2, Chunking()),
        ("layer", 5, Chunking()),
        ("layer", 17, TINY_BUDGET),
        ("contrast", 17, NO_ROOM),
        ("layer", 40, NO_ROOM),
        ("contrast", 40, TINY_BUDGET),
    ],
)
def test_budget_and_chunks_keep_the_full_pass_values(
    norm: str, slices: int, chunking: Chunking
) -> None:
    model = _perturbed_model(norm, 100 + slices)
    x = _series(slices, 100 + slices)
    volume, relevance, residual = _full_pass(model, x)
    result = explain(model, x, output_size=(200, 300), chunking=chunking)
    np.testing.assert_allclose(result.relevance, relevance, rtol=0, atol=1e-6)
    assert result.completeness_residual == pytest.approx(residual, abs=1e-6)
    assert result.top_slice == int(np.argmax(relevance))
    resized = F.interpolate(volume[:, None], size=(200, 300), mode="bilinear")[:, 0]
    low, high = torch.aminmax(resized)
    expected = ((resized - low) / (high - low)).clamp(0, 1).float().numpy()
    np.testing.assert_allclose(result.heatmap, expected, rtol=0, atol=1e-6)


def test_tiny_budget_drops_records_and_recomputes() -> None:
    model = _perturbed_model("layer", 21).eval()
    x = _series(12, 21)
    budget = int(TINY_BUDGET.budget_mb * 2**20)
    cl = model.classifier
    score_weights = (cl.weight[1] - cl.weight[0]).detach()
    with torch.no_grad():
        recorded = _recorded_forward(model, x, 5, budget, score_weights != 0)
        roomy = _recorded_forward(model, x, 5, 2**30, score_weights != 0)
        expected = model.slice_features(x)
    assert recorded.record is not None and roomy.record is not None
    assert recorded.record.nbytes <= budget < roomy.record.nbytes
    assert len(recorded.dropped) > 0
    torch.testing.assert_close(recorded.features, expected, rtol=0, atol=0)
    weights = winner_weights(expected, score_weights)
    winners = weights.any(dim=1).nonzero()[:, 0]
    # Without a budget every winner keeps its record; with it, the kept ones are winners still.
    torch.testing.assert_close(roomy.kept, winners)
    assert set(recorded.kept.tolist()) < set(winners.tolist())
    assert set(winners.tolist()) <= set(recorded.kept.tolist()) | set(recorded.dropped.tolist())


def test_tied_slices_share_the_gradient() -> None:
    model = _perturbed_model("layer", 11)
    x = _series(4, 11)
    x[2] = x[0]  # two identical slices tie for every feature they hold
    _volume, relevance, residual = _full_pass(model, x)
    result = explain(model, x, chunking=SMALL_CHUNKS)
    np.testing.assert_allclose(result.relevance, relevance, rtol=0, atol=1e-6)
    assert result.relevance[0] == pytest.approx(result.relevance[2], rel=1e-9)
    assert result.completeness_residual == pytest.approx(residual, abs=1e-6)


def test_single_slice_float32_and_output_size() -> None:
    model = _perturbed_model("contrast", 1, torch.float32)
    result = explain(model, _series(1, 1, torch.float32), output_size=(300, 200))
    assert result.heatmap.shape == (1, 300, 200)
    assert result.relevance.shape == (1,)
    assert result.top_slice == 0
    assert result.completeness_residual < 1e-4


def test_winner_weights_split_ties_like_amax() -> None:
    features = torch.tensor(
        [[1.0, 0.0, 2.0], [3.0, 0.0, 2.0], [0.5, 0.0, 1.0]], dtype=torch.float64, requires_grad=True
    )
    score_weights = torch.tensor([2.0, -1.0, 4.0], dtype=torch.float64)
    (expected,) = torch.autograd.grad(features.amax(dim=0) @ score_weights, features)
    got = winner_weights(features.detach(), score_weights)
    # Channel 1 is 0 everywhere: amax splits its weight, the winners skip it (no gradient flows).
    expected[:, 1] = 0.0
    torch.testing.assert_close(got, expected)
    assert got.any(dim=1).tolist() == [True, True, False]


@pytest.mark.parametrize("norm", ["layer", "contrast"])
def test_pooled_features_and_explanation_features(norm: str) -> None:
    model = _perturbed_model(norm, 8).train()
    x = _series(7, 8)
    pooled = pooled_features(model, x, Chunking(forward_slices=2))
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        expected = torch.amax(model.slice_features(x), dim=0)
        logits = model(x)
    torch.testing.assert_close(pooled, expected, rtol=0, atol=1e-12)
    result = explain(model, x, chunking=SMALL_CHUNKS)
    assert result.features is not None
    torch.testing.assert_close(result.features, expected, rtol=0, atol=1e-12)
    assert result.score == pytest.approx(float(logits[1] - logits[0]), abs=1e-12)


def test_chunk_sizes_from_the_budget() -> None:
    model = ELNet(k=4)
    forward, grad = Chunking(budget_mb=64).sizes(model, torch.float32)
    assert forward > grad >= 1
    assert Chunking(budget_mb=128).sizes(model, torch.float32) >= (2 * forward - 1, 2 * grad - 1)
    assert Chunking(budget_mb=64).sizes(model, torch.float64) < (forward, grad)
    assert Chunking(forward_slices=3, grad_slices=2).sizes(model, torch.float32) == (3, 2)
    assert Chunking(budget_mb=0.001).sizes(model, torch.float32) == (1, 1)
    record = Chunking(budget_mb=64).record_size(model, torch.float32)
    assert forward > record > grad
    assert Chunking(budget_mb=128).record_size(model, torch.float32) >= 2 * record - 1
    assert Chunking(record_slices=7).record_size(model, torch.float32) == 7
    assert Chunking(budget_mb=0.001).record_size(model, torch.float32) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_mb": 0}, "budget_mb must be > 0, got 0"),
        ({"forward_slices": 0}, "forward_slices must be >= 1 or None, got 0"),
        ({"grad_slices": -2}, "grad_slices must be >= 1 or None, got -2"),
        ({"record_slices": 0}, "record_slices must be >= 1 or None, got 0"),
    ],
)
def test_chunking_rejects_bad_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Chunking(**kwargs)  # type: ignore[arg-type]
