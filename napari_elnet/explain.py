"""FullGrad explanations of ELNet (Srinivas and Fleuret, NeurIPS 2019), per slice and volume-normalized.

With the statistics of every multi-slice normalization frozen (detached), ELNet in eval mode is piecewise
linear in its input and in the implicit per-slice, per-channel biases of the norm layers
``b[s, c] = beta[c] - gamma[c] * mean[s, c] / std[s, c]``. For the decision score
``f = logit_pos - logit_neg`` completeness then holds exactly::

    f(x) = <grad_x f, x> + sum_l <grad_{b_l} f, b_l> + (bias_pos - bias_neg)

and the saliency map is the input term plus one term per norm layer, each ``|t * grad_t f|``
min-max normalized over the whole volume, upsampled to the input size and summed over channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_elnet.errors import ConfigurationError
from napari_elnet.model import INPUT_SIZE, ELNet
from napari_elnet.multislice_norm import MultiSliceNorm


@dataclass(frozen=True, eq=False)
class Explanation:
    """FullGrad explanation of one ELNet decision on one series.

    Attributes:
        score: decision score ``f(x) = logit_pos - logit_neg``.
        probability: ``softmax(logits)[1]``, the probability of the positive class.
        logits: (negative, positive) logits of the explanation pass (equal to the plain forward).
        heatmap: saliency in [0, 1], normalized over the whole volume, at ``output_size``.
        relevance: slice relevance ``r(s) = sum_hw M(s, h, w)`` of the volume-normalized map M at the
            network's input resolution (256 x 256), i.e. before resampling to ``output_size``, so the
            ranking does not depend on the display size.
        top_slice: the most informative slice, ``argmax(relevance)`` (0 if all are equal).
        peak: (slice, row, col) of the heatmap maximum in ``output_size`` pixels (first one on ties).
        completeness_residual: ``|input term + bias terms - f(x)| / max(1, |f(x)|)``.

    Shape:
        heatmap (S, H, W) float32 with (H, W) = ``output_size``; relevance (S,) float64.
    """

    score: float
    probability: float
    logits: tuple[float, float]
    heatmap: np.ndarray
    relevance: np.ndarray
    top_slice: int
    peak: tuple[int, int, int]
    completeness_residual: float


@dataclass(frozen=True, eq=False)
class FullGradTerms:
    """Raw FullGrad terms of one explanation pass (no graph attached).

    Attributes:
        logits: (negative, positive) logits of the frozen-statistics forward.
        x: the input.
        grad_x: gradient of the score with respect to the input.
        biases: implicit bias of every norm layer, in forward order, constant over (H, W).
        grad_biases: gradient of the score with respect to each bias, per location.
        classifier_bias: ``bias_pos - bias_neg`` of the final Linear, a constant term.

    Shape:
        logits (2,); x and grad_x (S, 1, H, W); biases[l] and grad_biases[l] (S, C_l, H_l, W_l).
    """

    logits: torch.Tensor
    x: torch.Tensor
    grad_x: torch.Tensor
    biases: tuple[torch.Tensor, ...]
    grad_biases: tuple[torch.Tensor, ...]
    classifier_bias: float

    @property
    def score(self) -> float:
        """Decision score ``logit_pos - logit_neg``."""
        return float(self.logits[1] - self.logits[0])

    def completeness_residual(self) -> float:
        """``|<grad_x, x> + sum_l <grad_b_l, b_l> + classifier bias - f(x)| / max(1, |f(x)|)``."""
        total = _dot(self.grad_x, self.x) + self.classifier_bias
        total += sum(_dot(g, b) for g, b in zip(self.grad_biases, self.biases, strict=True))
        score = self.score
        return abs(total - score) / max(1.0, abs(score))


class FullGradHooks:
    """Context manager that freezes the statistics of every MultiSliceNorm of ``model``.

    On entry the model is put in eval mode and a forward hook on each norm layer replaces its output
    by ``x * gamma / std + b`` with mean and std detached and ``b`` a fresh leaf that requires grad;
    the leaves of the latest forward are in ``biases``. On exit, even after an error, the hooks are
    removed, the leaves dropped and the training flag of every module restored.

    Args:
        model: the network; its parameters and their ``requires_grad`` are not touched.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.biases: list[torch.Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> FullGradHooks:
        self._modes = [(module, module.training) for module in self.model.modules()]
        try:
            self.model.eval()
            for module in self.model.modules():
                if isinstance(module, MultiSliceNorm):
                    self._handles.append(module.register_forward_hook(self._freeze))
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        """Remove the hooks, drop the bias leaves and restore every module's training flag."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.biases.clear()
        for module, training in self._modes:
            module.training = training
        self._modes.clear()

    def _freeze(
        self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> torch.Tensor:
        """Frozen-statistics output of one norm layer; records its implicit bias leaf."""
        (x,) = inputs
        with torch.no_grad():
            mean, std = module.statistics(x)
            gamma = module.weight.detach()
            scale = (gamma / std)[:, :, None, None]
            bias = (module.bias.detach() - gamma * mean / std)[:, :, None, None]
            # A broadcast view: full (S, C, H, W) shape, one value per (slice, channel) in memory.
            bias = bias.expand(x.shape)
        bias.requires_grad_(True)
        self.biases.append(bias)
        return x * scale + bias


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """Inner product of two tensors of one shape, accumulated in float64."""
    return float((a * b).sum(dtype=torch.float64))


def _check_input(model: ELNet, x: torch.Tensor) -> None:
    """Raise ConfigurationError unless ``x`` is a (S, 1, 256, 256) series matching the model."""
    expected = (1, INPUT_SIZE, INPUT_SIZE)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected or x.shape[0] < 1:
        raise ConfigurationError(
            f"explain expects input of shape (S, 1, {INPUT_SIZE}, {INPUT_SIZE}) with S >= 1, "
            f"got {tuple(x.shape)}"
        )
    parameter = next(model.parameters())
    if x.dtype != parameter.dtype:
        raise ConfigurationError(f"input dtype {x.dtype} != model dtype {parameter.dtype}")
    if x.device != parameter.device:
        raise ConfigurationError(f"input device {x.device} != model device {parameter.device}")


def fullgrad_terms(model: ELNet, x: torch.Tensor) -> FullGradTerms:
    """Input and bias gradients of the score with frozen norm statistics (one forward, one backward).

    No gradient is accumulated on the model's parameters; the model's mode is restored.

    Shape:
        x: (S, 1, 256, 256) on the model's device and of its dtype.

    Raises:
        ConfigurationError: if ``x`` has the wrong shape, dtype or device.
    """
    _check_input(model, x)
    with torch.inference_mode(False), torch.enable_grad(), FullGradHooks(model) as hooks:
        leaf = x.detach().clone().requires_grad_(True)
        logits = model(leaf)
        score = logits[1] - logits[0]
        biases = tuple(hooks.biases)
        grads = torch.autograd.grad(score, (leaf, *biases))
        classifier = model.classifier.bias.detach()
        return FullGradTerms(
            logits=logits.detach(),
            x=leaf.detach(),
            grad_x=grads[0],
            biases=tuple(b.detach() for b in biases),
            grad_biases=tuple(grads[1:]),
            classifier_bias=float(classifier[1] - classifier[0]),
        )


def _normalize(t: torch.Tensor) -> torch.Tensor:
    """Min-max normalize over the whole tensor to [0, 1]; a constant tensor gives zeros."""
    low, high = t.amin(), t.amax()
    if not bool(torch.isfinite(high - low)) or float(high - low) <= 0.0:
        return torch.zeros_like(t)
    return (t - low) / (high - low)


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of the last two dimensions (identity at the same size).

    Shape:
        t: (N, C, h, w) -> (N, C, *size).
    """
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)


def _term_map(t: torch.Tensor, grad: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One FullGrad term: ``|t * grad|`` normalized over the volume, summed over channels, upsampled.

    Summing before the (linear) bilinear upsampling equals upsampling every channel, at 1 / C the cost.

    Shape:
        t, grad: (S, C, h, w) -> (S, 1, *size).
    """
    normalized = _normalize((t * grad).abs())
    return _resize(normalized.sum(dim=1, keepdim=True), size)


def saliency(terms: FullGradTerms) -> torch.Tensor:
    """FullGrad map at the input resolution, normalized over the whole volume to [0, 1].

    Shape:
        output (S, H, W) with (H, W) the input's in-plane size.
    """
    size = (terms.x.shape[-2], terms.x.shape[-1])
    total = _term_map(terms.x, terms.grad_x, size)
    for bias, grad in zip(terms.biases, terms.grad_biases, strict=True):
        total = total + _term_map(bias, grad, size)
    return _normalize(total[:, 0])


def _check_output_size(output_size: tuple[int, int]) -> tuple[int, int]:
    """Validated (H, W) of the heatmap."""
    if len(output_size) != 2 or any(int(n) != n or n < 1 for n in output_size):
        raise ConfigurationError(f"output_size must be two positive integers, got {output_size}")
    return int(output_size[0]), int(output_size[1])


def explain(
    model: ELNet, x: torch.Tensor, output_size: tuple[int, int] | None = None
) -> Explanation:
    """FullGrad explanation of ``model``'s decision on the series ``x``.

    Args:
        model: the network, on any device; its training flag and parameters are left as they were.
        x: the preprocessed series, on the model's device and of its dtype.
        output_size: (H, W) of the heatmap, the series' own in-plane size; the input size if None.

    Returns:
        The score, probability, volume-normalized heatmap, slice relevance and completeness check.

    Shape:
        x: (S, 1, 256, 256); heatmap (S, *output_size).

    Raises:
        ConfigurationError: if ``x`` has the wrong shape, dtype or device, or ``output_size`` is invalid.
    """
    _check_input(model, x)
    size = (x.shape[-2], x.shape[-1]) if output_size is None else _check_output_size(output_size)
    terms = fullgrad_terms(model, x)
    with torch.no_grad():
        volume = saliency(terms)
        relevance = volume.sum(dim=(1, 2), dtype=torch.float64).cpu().numpy()
        heatmap = _normalize(_resize(volume[:, None], size)[:, 0]).clamp_(0.0, 1.0)
        heatmap_np = heatmap.float().cpu().numpy()
        logits = terms.logits.double()
        probability = float(torch.softmax(logits, dim=0)[1])
    peak = np.unravel_index(int(np.argmax(heatmap_np)), heatmap_np.shape)
    return Explanation(
        score=terms.score,
        probability=probability,
        logits=(float(logits[0]), float(logits[1])),
        heatmap=heatmap_np,
        relevance=relevance,
        top_slice=int(np.argmax(relevance)),
        peak=(int(peak[0]), int(peak[1]), int(peak[2])),
        completeness_residual=terms.completeness_residual(),
    )
