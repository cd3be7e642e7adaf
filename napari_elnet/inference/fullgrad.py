"""FullGrad (Srinivas and Fleuret, NeurIPS 2019) for ELNet: per-slice maps, normalized per volume.

With the statistics of every multi-slice normalization frozen (detached), ELNet in eval mode is
piecewise linear in its input and in the implicit per-slice, per-channel biases of the norm layers
``b[s, c] = beta[c] - gamma[c] * mean[s, c] / std[s, c]``. For the decision score
``f = logit_pos - logit_neg`` completeness then holds exactly::

    f(x) = <grad_x f, x> + sum_l <grad_{b_l} f, b_l> + (bias_pos - bias_neg)

and the saliency map is the input term plus one term per norm layer, each ``|t * grad_t f|``
min-max normalized over the whole volume, upsampled to the input size and summed over channels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.inference.module_patches import ModulePatches
from napari_elnet.inference.slice_backward import (
    ForwardRecorder,
    SliceRecord,
    has_fast_input_grad,
    slice_gradients,
    stride2_input_grad,
)
from napari_elnet.nn.elnet import INPUT_SIZE, ELNet
from napari_elnet.nn.multislice_norm import MultiSliceNorm

DEFAULT_BUDGET_MB = 128.0
"""Activation memory per chunk of slices (MiB) unless a Chunking says otherwise."""
FORWARD_MAPS = 3.0
"""Peak of a no-grad forward per slice, in stem feature maps (4k x 128 x 128), measured."""
EXPLAIN_MAPS = 8.0
"""Peak of the explanation's backward (gradients + terms) per slice, in stem maps, measured."""
RECORD_MAPS = 4.0
"""Peak of the explanation's recorded forward per slice, in stem maps (measured: 3.1)."""


@dataclass(frozen=True, eq=False)
class Explanation:
    """FullGrad explanation of one ELNet decision on one series.

    Attributes:
        score: decision score ``f(x) = logit_pos - logit_neg``.
        probability: ``softmax(logits)[1]``, the probability of the positive class.
        logits: (negative, positive) logits of the explanation pass (equal to the plain forward).
        heatmap: saliency in [0, 1], normalized over the whole volume, at ``output_size``.
        relevance: slice relevance ``r(s) = sum_hw M(s, h, w)`` of the volume-normalized map M
            at the network's input resolution (256 x 256), i.e. before resampling to
            ``output_size``, so the ranking does not depend on the display size.
        top_slice: the most informative slice, ``argmax(relevance)`` (0 if all are equal).
        peak: (slice, row, col) of the heatmap maximum in ``output_size`` pixels (first on ties).
        completeness_residual: ``|input term + bias terms - f(x)| / max(1, |f(x)|)``.
        features: the pooled feature vector (max over slices, the classifier's input) of the
            plain forward, detached, on the model's device; None when not computed.

    Shape:
        heatmap (S, H, W) float32 with (H, W) = ``output_size``; relevance (S,) float64;
        features (16k,).
    """

    score: float
    probability: float
    logits: tuple[float, float]
    heatmap: np.ndarray
    relevance: np.ndarray
    top_slice: int
    peak: tuple[int, int, int]
    completeness_residual: float
    features: torch.Tensor | None = None


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

    @cached_property
    def contributions(self) -> tuple[torch.Tensor, ...]:
        """Elementwise contributions ``x * grad_x`` then ``b_l * grad_b_l``, one per term.

        Shape:
            (S, 1, H, W) for the input, then (S, C_l, H_l, W_l) per norm layer.
        """
        pairs = zip((self.x, *self.biases), (self.grad_x, *self.grad_biases), strict=True)
        return tuple(t * grad for t, grad in pairs)

    def completeness_residual(self) -> float:
        """``|<grad_x, x> + sum_l <grad_b_l, b_l> + classifier bias - f(x)| / max(1, |f(x)|)``."""
        total = sum(float(c.sum()) for c in self.contributions)
        score = self.score
        return abs(total + self.classifier_bias - score) / max(1.0, abs(score))


class FullGradHooks(ModulePatches):
    """Context manager that freezes the statistics of every MultiSliceNorm of ``model``.

    Inside the block the model is in eval mode and each norm layer outputs ``x * gamma / std + b``
    with mean and std detached and ``b`` a fresh leaf that requires grad; ``biases`` holds the
    leaves of the latest forward, in forward order. Stride-2 convolutions (the stem) get a faster
    input gradient (same values). On exit, even after an error, the hooks are removed, the leaves dropped
    and the training flag of every module restored.

    Args:
        model: the network; its parameters and their ``requires_grad`` are not touched.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.biases: list[torch.Tensor] = []
        self._modes: list[tuple[nn.Module, bool]] = []

    def install(self) -> None:
        self._modes = [(module, module.training) for module in self.model.modules()]
        self.model.eval()
        self.hook(self.model.register_forward_pre_hook(self._new_pass))
        for module in self.model.modules():
            if isinstance(module, MultiSliceNorm):
                # Replace (not follow) the norm's forward: its own statistics pass is wasted work.
                self.replace_forward(module, functools.partial(self._freeze, module))
            elif isinstance(module, nn.Conv2d):
                self.hook(module.register_forward_hook(_fast_stem_grad))

    def release(self) -> None:
        """Drop the bias leaves and restore every module's training flag."""
        self.biases.clear()
        for module, training in self._modes:
            module.training = training
        self._modes.clear()

    def _new_pass(self, model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        """Forget the bias leaves of the previous forward."""
        self.biases.clear()

    def _freeze(self, module: MultiSliceNorm, x: torch.Tensor) -> torch.Tensor:
        """Frozen-statistics forward of one norm layer; records its implicit bias leaf."""
        with torch.no_grad():
            mean, std = frozen_statistics(module, x)
            gamma = module.weight.detach()
            scale = (gamma / std)[:, :, None, None]
            bias = (module.bias.detach() - gamma * mean / std)[:, :, None, None]
            # A broadcast view: full (S, C, H, W) shape, one value per (slice, channel) in memory.
            bias = bias.expand(x.shape)
        bias.requires_grad_(True)
        self.biases.append(bias)
        return torch.addcmul(bias, x, scale)


class _StemInputGrad(torch.autograd.Function):
    """Identity on the stem convolution's output whose input gradient runs at stride 1.

    The stem is a 7x7 stride-2 convolution of a single channel; its transposed convolution (the
    input gradient) is slow on CPU. The same gradient, computed on the 2x2 pixel-unshuffled grid
    as a stride-1 transposed convolution and shuffled back, is 2-3x faster (same values).
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor,
        padding: int,
    ) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.padding = padding  # type: ignore[attr-defined]
        return y.view_as(y)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None, None, None]:
        (weight,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return stride2_input_grad(grad, weight, ctx.padding), None, None, None  # type: ignore[attr-defined]


def _fast_stem_grad(
    module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
) -> torch.Tensor | None:
    """The same stem output, with the fast input gradient of ``_StemInputGrad`` where it applies."""
    (x,) = inputs
    if not (x.requires_grad and has_fast_input_grad(module, x.shape)):
        return None
    weight = module.weight.detach()
    return _StemInputGrad.apply(x, output.detach(), weight, module.padding[0])


def frozen_statistics(module: MultiSliceNorm, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Detached mean and std (sqrt(var + eps)) of ``module`` on ``x``, as its forward uses them.

    Equals ``module.statistics(x)``, from the fused group-norm kernel (several times faster on CPU).

    Shape:
        x: (S, C, H, W); mean and std (S, C).
    """
    s, c = x.shape[:2]
    if s == 1 and not x.is_contiguous():
        # A one-slice channels-last map may carry a slice stride the kernel rejects (S = 1 failed).
        x = x.contiguous()
    with torch.no_grad():
        _, mean, rstd = torch.native_group_norm(
            x, None, None, s, c, x[0, 0].numel(), module.groups, module.eps
        )
    repeat = c // module.groups
    return mean.repeat_interleave(repeat, dim=1), rstd.reciprocal().repeat_interleave(repeat, dim=1)


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
    """Input and bias gradients of the score with frozen norm statistics (one forward + backward).

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
    """Min-max normalize over the whole tensor to [0, 1]; a constant tensor gives zeros.

    Works in place on ``t`` (a temporary of the caller's), which saves passes over large volumes.
    """
    low, high = torch.aminmax(t)
    if not float(high - low) > 0.0:
        return t.zero_()
    return t.sub_(low).div_(high - low)


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of the last two dimensions (identity at the same size).

    Shape:
        t: (N, C, h, w) -> (N, C, *size).
    """
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)


def _magnitude_stats(
    contribution: torch.Tensor, in_place: bool = False
) -> tuple[torch.Tensor, float, float]:
    """Channel sum, minimum and maximum of ``|contribution|``.

    Args:
        in_place: overwrite ``contribution`` with its magnitude (saves a volume-sized allocation).

    Shape:
        contribution (S, C, h, w) -> channel sum (S, 1, h, w).
    """
    channels_last = contribution.is_contiguous(memory_format=torch.channels_last)
    # Reductions over a dense (S, h, w, C) view run several times faster than over the strided one.
    dense = contribution.permute(0, 2, 3, 1) if channels_last else contribution.movedim(1, -1)
    magnitude = dense.abs_() if in_place else dense.abs()
    low, high = torch.aminmax(magnitude.reshape(-1))
    return magnitude.sum(dim=-1)[:, None], float(low), float(high)


def _normalized_channel_sum(
    channel_sum: torch.Tensor, channels: int, low: float, high: float
) -> torch.Tensor:
    """Sum over ``channels`` channels of ``(|c| - low) / (high - low)``, from their plain sum.

    ``sum_c (a_c - low) / (high - low)`` applied after the channel sum: same values, fewer ops.
    A constant term (``high <= low``) gives zeros.
    """
    if not high - low > 0.0:
        return torch.zeros_like(channel_sum)
    return (channel_sum - channels * low) / (high - low)


def _channel_sum_normalized(contribution: torch.Tensor) -> torch.Tensor:
    """``|contribution|`` min-max normalized over the whole volume, then summed over channels.

    Shape:
        contribution (S, C, h, w) -> (S, 1, h, w).
    """
    channel_sum, low, high = _magnitude_stats(contribution)
    return _normalized_channel_sum(channel_sum, contribution.shape[1], low, high)


def _add_by_size(terms: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Sum of maps of several sizes, each upsampled (bilinear) to ``size``.

    Bilinear upsampling is linear: summing same-sized maps first gives the same sum as upsampling
    each one, at a fraction of the cost.

    Shape:
        terms[i] (N, 1, h_i, w_i) -> (N, 1, *size).
    """
    by_size: dict[tuple[int, int], torch.Tensor] = {}
    for term in terms:
        key = (term.shape[-2], term.shape[-1])
        by_size[key] = by_size[key] + term if key in by_size else term
    resized = [_resize(term, size) for term in by_size.values()]
    total = resized[0]
    for term in resized[1:]:
        total = total + term
    return total


def saliency(terms: FullGradTerms) -> torch.Tensor:
    """FullGrad map at the input resolution, normalized over the whole volume to [0, 1].

    Each term ``|t * grad_t|`` is min-max normalized over all its slices and channels, summed over
    channels, upsampled (bilinear) to the input size and added; the sum is normalized again.

    Shape:
        output (S, H, W) with (H, W) the input's in-plane size.
    """
    size = (terms.x.shape[-2], terms.x.shape[-1])
    maps = [_channel_sum_normalized(contribution) for contribution in terms.contributions]
    return _normalize(_add_by_size(maps, size)[:, 0])


def _check_output_size(output_size: tuple[int, int]) -> tuple[int, int]:
    """Validated (H, W) of the heatmap."""
    if len(output_size) != 2 or any(int(n) != n or n < 1 for n in output_size):
        raise ConfigurationError(f"output_size must be two positive integers, got {output_size}")
    return int(output_size[0]), int(output_size[1])


def _volume_maps(
    maps: torch.Tensor, winners: torch.Tensor, slices: int, size: tuple[int, int], everywhere: bool
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Heatmap, relevance and peak of the series from the maps of its winning slices.

    The map is normalized over the whole volume, its slice sums give the relevance, then it is
    resampled to ``size`` and normalized again. Slices without a winner hold zeros at every step
    (the maps are >= 0, so the zeros are the minimum whenever such slices exist), so only the
    winners are resampled. Both normalizations are affine and bilinear resampling commutes with
    affine maps (its weights sum to 1), so the map is resampled once, unnormalized, and the
    relevance comes from the plain slice sums: the same values, fewer passes over the volume; an
    additive constant in ``maps`` changes nothing when every slice is a winner.

    Shape:
        maps (W, h, w) for the W ``winners`` (increasing); heatmap (slices, *size) float32;
        relevance (slices,).
    """
    relevance = np.zeros(slices)
    heatmap = np.zeros((slices, *size), dtype=np.float32)
    if not len(winners):
        return heatmap, relevance, (0, 0, 0)
    index = winners.cpu().numpy()
    low, high = _range(maps, everywhere)
    if not high - low > 0.0:
        return heatmap, relevance, (0, 0, 0)
    sums = maps.sum(dim=(1, 2), dtype=torch.float64)
    relevance[index] = ((sums - maps[0].numel() * low) / (high - low)).cpu().numpy()
    resized = _resize(maps[:, None], size)[:, 0]
    if resized.data_ptr() == maps.data_ptr():
        resized = resized.clone()  # same size: normalized in place below
    low, high = _range(resized, everywhere)
    # Rounding is monotone: (r - low) / (high - low) stays within [0, 1], no clamp needed.
    if low != 0.0:
        resized.sub_(low)
    normalized = resized.div_(high - low).float().cpu().numpy()
    heatmap[index] = normalized
    s, r, c = np.unravel_index(int(np.argmax(normalized)), normalized.shape)  # first maximum
    return heatmap, relevance, (int(index[s]), int(r), int(c))


def _range(t: torch.Tensor, everywhere: bool) -> tuple[float, float]:
    """Minimum and maximum of ``t``, the minimum at most 0 unless ``everywhere`` (the zeros of the
    slices that are not winners count)."""
    low, high = (float(v) for v in torch.aminmax(t))
    return (low if everywhere else min(low, 0.0)), (high if everywhere else max(high, 0.0))


@dataclass(frozen=True)
class Chunking:
    """How many slices go through the network at once.

    ELNet's slices are independent until the max over slices, so a series can run in chunks of
    slices: peak memory then depends on the chunk, not on the slice count.

    Attributes:
        budget_mb: activation memory allowed per chunk (MiB); the chunk sizes follow from it and
            the model's width.
        forward_slices: slices per chunk of the no-grad forward (None: from the budget).
        grad_slices: slices per chunk of the explanation's backward (None: from the budget).
        record_slices: slices per chunk of the explanation's recorded forward, which keeps every
            ReLU output of its chunk until the chunk ends (None: from the budget). The records
            kept for the winning slices between the two passes are limited to the budget too.
    """

    budget_mb: float = DEFAULT_BUDGET_MB
    forward_slices: int | None = None
    grad_slices: int | None = None
    record_slices: int | None = None

    def __post_init__(self) -> None:
        if not self.budget_mb > 0:
            raise ConfigurationError(f"budget_mb must be > 0, got {self.budget_mb}")
        for name in ("forward_slices", "grad_slices", "record_slices"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigurationError(f"{name} must be >= 1 or None, got {value}")

    def _slices(self, model: ELNet, dtype: torch.dtype, maps: float) -> int:
        """Slices whose activations take ``maps`` stem feature maps each within the budget."""
        stem: nn.Conv2d = model.stem[0]  # type: ignore[assignment]  # ELNet's stem starts with a conv
        map_bytes = stem.out_channels * (INPUT_SIZE // 2) ** 2 * dtype.itemsize
        return max(1, int(self.budget_mb * 2**20 // (maps * map_bytes)))

    def sizes(self, model: ELNet, dtype: torch.dtype) -> tuple[int, int]:
        """(forward, backward) slices per chunk for ``model`` at ``dtype``."""
        forward = self.forward_slices or self._slices(model, dtype, FORWARD_MAPS)
        return forward, self.grad_slices or self._slices(model, dtype, EXPLAIN_MAPS)

    def record_size(self, model: ELNet, dtype: torch.dtype) -> int:
        """Slices per chunk of the explanation's recorded forward for ``model`` at ``dtype``."""
        return self.record_slices or self._slices(model, dtype, RECORD_MAPS)


class _EvalMode:
    """Context manager: ``model`` in eval mode inside, every module's training flag restored after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        self._modes = [(module, module.training) for module in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for module, training in self._modes:
            module.training = training


def _slice_features(model: ELNet, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Per-slice features from a no-grad forward in chunks of ``chunk`` slices.

    Shape:
        x (S, 1, 256, 256) -> (S, 16k).
    """
    with torch.no_grad():
        return torch.cat([model.slice_features(part) for part in x.split(chunk)])


def pooled_features(
    model: ELNet, x: torch.Tensor, chunking: Chunking | None = None
) -> torch.Tensor:
    """The pooled feature vector (max over slices) from a no-grad forward in chunks, in eval mode.

    Equals ``model.features(x)`` in eval mode; peak memory is that of one chunk.

    Shape:
        x (S, 1, 256, 256) -> (16k,).
    """
    _check_input(model, x)
    forward, _ = (chunking or Chunking()).sizes(model, x.dtype)
    with _EvalMode(model):
        return _slice_features(model, x, forward).amax(dim=0)


def winner_weights(features: torch.Tensor, score_weights: torch.Tensor) -> torch.Tensor:
    """Gradient of the score with respect to each slice's features through the max over slices.

    The max over slices passes the gradient only to the slices that hold a channel's maximum,
    split equally between ties (as ``torch.amax``'s backward does). Channels whose maximum is 0
    are left out: their value is 0 only when every ReLU output under it is 0, so no gradient
    would flow back through them anyway.

    Args:
        features: per-slice features (S, C).
        score_weights: d score / d pooled feature, (C,).

    Returns:
        (S, C): zero rows for the slices that hold no maximum.
    """
    maximum = features.amax(dim=0)
    holds = (features == maximum) & (maximum > 0)
    ties = holds.sum(dim=0).clamp_min(1)
    return holds * (score_weights / ties)


class _TermMaps:
    """Running FullGrad terms of the winning slices, chunk by chunk.

    For each term (input, then every norm layer's bias) it keeps the channel sum of ``|t * grad_t|``
    per winning slice and the term's min and max so far; and the sum of all contributions (for the
    completeness check).
    """

    def __init__(self) -> None:
        self.channel_sums: list[list[torch.Tensor]] = []
        self.lows: list[float] = []
        self.highs: list[float] = []
        self.total = 0.0

    def add(self, contributions: tuple[torch.Tensor, ...]) -> None:
        """Record one chunk's contributions (input term first, then the norm layers in order).

        The contributions are temporaries of the caller's: they are overwritten.
        """
        if not self.channel_sums:
            self.channel_sums = [[] for _ in contributions]
            self.lows = [float("inf")] * len(contributions)
            self.highs = [float("-inf")] * len(contributions)
        for i, contribution in enumerate(contributions):
            self.total += float(contribution.sum())
            channel_sum, low, high = _magnitude_stats(contribution, in_place=True)
            self.channel_sums[i].append(channel_sum)
            self.lows[i] = min(self.lows[i], low)
            self.highs[i] = max(self.highs[i], high)

    def maps(self, all_slices: bool, size: tuple[int, int]) -> torch.Tensor:
        """The summed, term-wise normalized map of the winning slices at ``size``.

        When ``all_slices`` the map is shifted by a constant (each term's ``C low / (high - low)``),
        which the volume normalization removes; otherwise every term's minimum is 0 (the other
        slices' contributions) and there is no shift. Needs at least one recorded chunk.

        Args:
            all_slices: every slice of the series is a winner; otherwise the others' contributions
                are zeros, which count in every term's min and max.

        Shape:
            (W, 1, *size) for W winning slices.
        """
        by_size: dict[tuple[int, int], torch.Tensor] = {}
        for sums, low, high in zip(self.channel_sums, self.lows, self.highs, strict=True):
            if not all_slices:
                low, high = min(low, 0.0), max(high, 0.0)
            if not high - low > 0.0:
                continue  # a constant term: zeros once normalized
            # (|c| - low) / (high - low) summed over the channels, less the constant C low / (high - low).
            term = torch.cat(sums) if len(sums) > 1 else sums[0]
            key = (term.shape[-2], term.shape[-1])
            if key in by_size:
                by_size[key].add_(term, alpha=1.0 / (high - low))
            else:
                by_size[key] = term / (high - low)
        if not by_size:
            first = torch.cat(self.channel_sums[0])
            return first.new_zeros((first.shape[0], 1, *size))
        resized = [_resize(term, size) for term in by_size.values()]
        total = resized[0]
        for term in resized[1:]:
            total += term
        return total


def _holders(features: torch.Tensor, maximum: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """Rows of ``features`` (S, C) equal to ``maximum`` (C,) in one of ``channels`` (C,) (bool)
    whose maximum is > 0.

    Returns:
        their indices, increasing.
    """
    return ((features == maximum) & (maximum > 0) & channels).any(dim=1).nonzero()[:, 0]


@dataclass(frozen=True, eq=False)
class _RecordedForward:
    """A recorded no-grad forward of a series, keeping the record of the candidate winners only.

    Attributes:
        features: per-slice features (S, C).
        kept: the slices whose record is kept, increasing (K,).
        record: the forward record of the ``kept`` slices, in that order.
        shapes: input shape of every convolution and blur (see ``ForwardRecorder.shapes``).
        dropped: slices that held a maximum when their chunk ran but whose record went beyond the
            memory budget (their backward needs a second forward if they are winners).
    """

    features: torch.Tensor
    kept: torch.Tensor
    record: SliceRecord | None
    shapes: dict[nn.Module, tuple[int, ...]]
    dropped: torch.Tensor


def _recorded_forward(
    model: ELNet, x: torch.Tensor, chunk: int, budget: int, channels: torch.Tensor
) -> _RecordedForward:
    """No-grad forward in chunks that keeps the forward record of every slice holding a maximum.

    After each chunk, only the slices that hold the running maximum of one of ``channels`` keep
    their record (a slice never regains a maximum it lost, so the final winners are among them);
    the kept records are limited to ``budget`` bytes, the slices beyond it are listed as dropped.

    Args:
        channels: the features whose maxima count (C,) bool: those with a weight in the score.

    Shape:
        x (S, 1, 256, 256).
    """
    features: list[torch.Tensor] = []
    kept = x.new_zeros(0, dtype=torch.long)
    kept_features = x.new_zeros(0)
    dropped: list[torch.Tensor] = []
    record: SliceRecord | None = None
    running: torch.Tensor | None = None
    start = 0
    count = -(-x.shape[0] // chunk)  # equal chunks run at a better batch size than a short tail
    with ForwardRecorder(model) as recorder:
        for part in x.tensor_split(count):
            part_features = model.slice_features(part)
            part_record = recorder.take()
            features.append(part_features)
            part_max = part_features.amax(dim=0)
            running = part_max if running is None else torch.maximum(running, part_max)
            new = _holders(part_features, running, channels)
            parts = [part_record.rows(new)]
            if record is not None:
                old = _holders(kept_features, running, channels)
                parts.insert(0, record.rows(old))
                kept, kept_features = kept[old], kept_features[old]
            kept = torch.cat([kept, new + start])
            kept_features = torch.cat(
                [kept_features.view(-1, part_features.shape[1]), part_features[new]]
            )
            record = SliceRecord.cat(parts)
            del part_record, parts
            if record.nbytes > budget:
                fits = int(budget // (record.nbytes / len(record)))
                dropped.append(kept[fits:])
                kept, kept_features = kept[:fits], kept_features[:fits]
                record = record.rows(slice(0, fits))
            start += len(part)
        shapes = dict(recorder.shapes)
    lost = torch.cat(dropped) if dropped else kept[:0]
    return _RecordedForward(torch.cat(features), kept, record, shapes, lost)


def _explain_winners(
    model: ELNet,
    x: torch.Tensor,
    weights: torch.Tensor,
    winners: torch.Tensor,
    recorded: _RecordedForward,
    chunk: int,
) -> tuple[_TermMaps, torch.Tensor]:
    """FullGrad terms of the winning slices, a chunk at a time, from their forward records.

    Winners whose record was kept need a backward only; the others (dropped for the memory budget)
    run the recorded forward again, in chunks, first.

    Args:
        weights: d score / d slice features (S, C) (see :func:`winner_weights`).
        winners: indices of the slices with a non-zero row of ``weights``, increasing.
        recorded: the recorded forward of the whole series.

    Returns:
        The terms, with the channel sums of the kept winners first, then those of the others;
        and the slice of each of those rows, in that order (W,).
    """
    terms = _TermMaps()
    # The kept slices hold the series' maximum of a feature with a weight in the score: winners.
    kept, record = recorded.kept, recorded.record
    if record is not None:
        for start in range(0, len(kept), chunk):
            rows = slice(start, start + chunk)
            index = kept[rows]
            _add_terms(terms, model, x[index], record.rows(rows), recorded.shapes, weights[index])
    missing = winners[~torch.isin(winners, kept)]
    if len(missing):
        with ForwardRecorder(model) as recorder:
            for index in missing.split(chunk):
                model.slice_features(x[index])
                _add_terms(terms, model, x[index], recorder.take(), recorder.shapes, weights[index])
    return terms, torch.cat([kept, missing])


def _add_terms(
    terms: _TermMaps,
    model: ELNet,
    x: torch.Tensor,
    record: SliceRecord,
    shapes: dict[nn.Module, tuple[int, ...]],
    weights: torch.Tensor,
) -> None:
    """Backward of some recorded slices and their FullGrad contributions into ``terms``."""
    grad_x, biases, grad_biases = slice_gradients(model, record, shapes, weights)
    # The gradients are this call's own tensors: the products overwrite them (fewer allocations).
    contributions = [grad_x.mul_(x)]
    contributions += [g.mul_(b[:, :, None, None]) for b, g in zip(biases, grad_biases, strict=True)]
    terms.add(tuple(contributions))


def explain(
    model: ELNet,
    x: torch.Tensor,
    output_size: tuple[int, int] | None = None,
    chunking: Chunking | None = None,
) -> Explanation:
    """FullGrad explanation of ``model``'s decision on the series ``x``.

    A no-grad forward in chunks of slices gives every slice's features, the pooled vector and the
    logits, and keeps the forward record (ReLU outputs, norm statistics) of the slices that hold
    the running maximum of some feature; then the backward runs (in chunks, without autograd) only
    through the slices that hold the maximum of some feature, since the max over slices passes no
    gradient to the others (their contributions are zeros). A winner whose record went beyond the
    memory budget runs its forward again. The maps, volume normalization and completeness residual
    are those of one full pass through every slice (same values).

    Args:
        model: the network, on any device; its training flag and parameters are left as they were.
        x: the preprocessed series, on the model's device and of its dtype.
        output_size: (H, W) of the heatmap, the series' own in-plane size; the input size if None.
        chunking: slices per chunk (default: from a memory budget of DEFAULT_BUDGET_MB).

    Returns:
        The score, probability, volume-normalized heatmap, slice relevance, completeness check and
        the pooled feature vector.

    Shape:
        x: (S, 1, 256, 256); heatmap (S, *output_size); features (16k,).

    Raises:
        ConfigurationError: if ``x`` has the wrong shape, dtype or device, or ``output_size``
            is not two positive integers.
    """
    size = None if output_size is None else _check_output_size(output_size)
    _check_input(model, x)
    chunking = chunking or Chunking()
    _, grad_chunk = chunking.sizes(model, x.dtype)
    record_chunk = chunking.record_size(model, x.dtype)
    budget = int(chunking.budget_mb * 2**20)
    input_size = (x.shape[-2], x.shape[-1])
    size = size or input_size
    classifier = model.classifier
    with _EvalMode(model), torch.no_grad():
        score_weights = (classifier.weight[1] - classifier.weight[0]).detach()
        recorded = _recorded_forward(model, x, record_chunk, budget, score_weights != 0)
        pooled = recorded.features.amax(dim=0)
        logits = model.classifier(model.dropout(pooled)).detach()  # ELNet.head
        weights = winner_weights(recorded.features, score_weights)
        winners = weights.any(dim=1).nonzero()[:, 0]
        terms, order = _explain_winners(model, x, weights, winners, recorded, grad_chunk)
        del recorded
    classifier_bias = float((classifier.bias[1] - classifier.bias[0]).detach())
    score = float(logits[1] - logits[0])
    with torch.no_grad():
        everywhere = len(winners) == x.shape[0]
        maps = terms.maps(everywhere, input_size)[:, 0] if len(winners) else x.new_zeros(0)
        if not torch.equal(order, winners):  # some winners were recomputed after the others
            maps = maps[torch.argsort(order)]
        heatmap, relevance, peak = _volume_maps(maps, winners, x.shape[0], size, everywhere)
        logits64 = logits.double()
        probability = float(torch.softmax(logits64, dim=0)[1])
    return Explanation(
        score=score,
        probability=probability,
        logits=(float(logits64[0]), float(logits64[1])),
        heatmap=heatmap,
        relevance=relevance,
        top_slice=int(np.argmax(relevance)),
        peak=peak,
        completeness_residual=abs(terms.total + classifier_bias - score) / max(1.0, abs(score)),
        features=pooled,
    )
