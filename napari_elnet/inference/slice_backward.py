"""ELNet's backward for chosen slices, from a record kept by a no-grad forward (no autograd graph).

With the statistics of every multi-slice normalization frozen, ELNet is a chain of convolutions and
blurs (linear), per-slice affine maps (the norms) and ReLUs, with residual sums, ending in a max over
each slice's last feature map. Its backward therefore needs from the forward only each ReLU's output,
each norm layer's statistics and the last feature map. :class:`ForwardRecorder` keeps these during
a plain no-grad forward; :func:`slice_gradients` then runs the backward of any subset of the
recorded slices, at the cost of a backward alone: no second forward, no graph of the other slices.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.inference.module_patches import ModulePatches
from napari_elnet.nn.blur_pool import BlurPool2d
from napari_elnet.nn.elnet import Block, ELNet
from napari_elnet.nn.multislice_norm import MultiSliceNorm

SUPPORTED = (nn.Sequential, Block, nn.Conv2d, MultiSliceNorm, nn.ReLU, BlurPool2d)
"""Module types :func:`slice_gradients` knows the backward of (ELNet's stem and stages)."""


@dataclass(frozen=True, eq=False)
class SliceRecord:
    """What the backward of K slices needs from their forward (detached tensors).

    Attributes:
        relu: the output of every ReLU module of the stem and stages, by module.
        stats: (mean, rstd) of every MultiSliceNorm on its input, by module, as the group-norm
            kernel returns them (``rstd = 1 / sqrt(var + eps)``).
        final: the last feature map, before the max over its pixels.

    Shape:
        relu[m] (K, C, H, W); stats[m] two (K, groups); final (K, C, h, w).
    """

    relu: dict[nn.Module, torch.Tensor]
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]
    final: torch.Tensor

    def __len__(self) -> int:
        return self.final.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the record's tensors."""
        tensors = [*self.relu.values(), *(t for pair in self.stats.values() for t in pair)]
        return sum(t.numel() * t.element_size() for t in (*tensors, self.final))

    def rows(self, index: torch.Tensor | slice) -> SliceRecord:
        """The record of some of the slices: a copy for an index tensor, views for a slice."""
        return SliceRecord(
            relu={m: _rows(t, index) for m, t in self.relu.items()},
            stats={m: (mean[index], rstd[index]) for m, (mean, rstd) in self.stats.items()},
            final=_rows(self.final, index),
        )

    @staticmethod
    def cat(records: Sequence[SliceRecord]) -> SliceRecord:
        """The records of several groups of slices, one after the other (at least one record)."""
        first = records[0]
        if len(records) == 1:
            return first
        return SliceRecord(
            relu={m: torch.cat([r.relu[m] for r in records]) for m in first.relu},
            stats={
                m: (
                    torch.cat([r.stats[m][0] for r in records]),
                    torch.cat([r.stats[m][1] for r in records]),
                )
                for m in first.stats
            },
            final=torch.cat([r.final for r in records]),
        )


def _rows(t: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
    """``t[index]`` along the first dimension, in ``t``'s memory format.

    Advanced indexing of a channels-last map is several times slower than copying each slice's
    block of its (N, H, W, C) view, which gives the same channels-last result.
    """
    if isinstance(index, slice) or not (
        t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last)
    ):
        return t[index]
    return t.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)


def _check_supported(model: ELNet) -> None:
    """Raise ConfigurationError if the stem or stages hold a module :func:`slice_gradients` lacks."""
    for name, module in (
        *model.stem.named_modules(prefix="stem"),
        *model.stages.named_modules(prefix="stages"),
    ):
        if not isinstance(module, SUPPORTED):
            raise ConfigurationError(
                f"no recorded backward for {name} ({type(module).__name__}); "
                f"supported: {', '.join(t.__name__ for t in SUPPORTED)}"
            )


class ForwardRecorder(ModulePatches):
    """Context manager: every forward of ``model`` inside the block keeps a :class:`SliceRecord`.

    The norm layers run the same group-norm kernel as their own forward (same values) and keep its
    statistics; forward hooks keep the ReLU outputs, the last feature map and the input shape of
    every convolution and blur. On exit, even after an error, the hooks are removed. The caller
    runs the forward (e.g. ``model.slice_features``) without autograd and takes the record with
    :meth:`take` after each one.

    Args:
        model: the network; its modules' training flags are not touched (put it in eval mode).

    Raises:
        ConfigurationError: if the stem or stages hold a module type outside ``SUPPORTED``.
    """

    model: ELNet

    def __init__(self, model: ELNet) -> None:
        _check_supported(model)
        super().__init__(model)
        self.shapes: dict[nn.Module, tuple[int, ...]] = {}
        self._relu: dict[nn.Module, torch.Tensor] = {}
        self._stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        self._final: torch.Tensor | None = None

    def install(self) -> None:
        for module in self.model.modules():
            if isinstance(module, MultiSliceNorm):
                self.replace_forward(module, functools.partial(self._norm, module))
            elif isinstance(module, nn.ReLU):
                self.hook(module.register_forward_hook(self._keep_relu))
            elif isinstance(module, nn.Conv2d | BlurPool2d):
                self.hook(module.register_forward_pre_hook(self._keep_shape))
        self.hook(self.model.stages.register_forward_hook(self._keep_final))

    def release(self) -> None:
        self._relu.clear()
        self._stats.clear()
        self._final = None

    def take(self) -> SliceRecord:
        """The record of the latest forward; the recorder lets go of it."""
        if self._final is None:
            raise ConfigurationError("no forward was recorded")
        record = SliceRecord(relu=dict(self._relu), stats=dict(self._stats), final=self._final)
        self._relu.clear()
        self._stats.clear()
        self._final = None
        return record

    def _norm(self, module: MultiSliceNorm, x: torch.Tensor) -> torch.Tensor:
        """The norm's forward (``F.group_norm``'s kernel, same values), keeping its statistics."""
        s, c = x.shape[:2]
        if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            x = x.contiguous()
        out, mean, rstd = torch.native_group_norm(
            x, module.weight, module.bias, s, c, x[0, 0].numel(), module.groups, module.eps
        )
        self._stats[module] = (mean.detach(), rstd.detach())
        return out

    def _keep_relu(
        self, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor
    ) -> None:
        self._relu[module] = out.detach()

    def _keep_shape(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.shapes[module] = tuple(inputs[0].shape[1:])

    def _keep_final(
        self, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor
    ) -> None:
        self._final = out.detach()


def frozen_affine(
    module: MultiSliceNorm, mean: torch.Tensor, rstd: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale ``gamma / std`` and implicit bias ``beta - gamma * mean / std`` per slice and channel.

    The frozen-statistics norm is ``x * scale + bias``, as :class:`FullGradHooks` computes it.

    Shape:
        mean, rstd (K, groups) -> scale, bias (K, C).
    """
    repeat = module.channels // module.groups
    mean = mean.repeat_interleave(repeat, dim=1)
    std = rstd.reciprocal().repeat_interleave(repeat, dim=1)
    gamma = module.weight.detach()
    return gamma / std, module.bias.detach() - gamma * mean / std


def polyphase_weight(weight: torch.Tensor) -> torch.Tensor:
    """A stride-2 k x k kernel (k odd) as a stride-1 kernel over 2x2 pixel-unshuffled input.

    Shape:
        weight (O, C, k, k) -> (O, 4 C, (k + 1) / 2, (k + 1) / 2).
    """
    o, c, k, _ = weight.shape
    m = (k + 1) // 2
    padded = F.pad(weight, (1, 0, 1, 0))
    return padded.reshape(o, c, m, 2, m, 2).permute(0, 1, 3, 5, 2, 4).reshape(o, 4 * c, m, m)


def has_fast_input_grad(conv: nn.Conv2d, shape: Sequence[int]) -> bool:
    """True for a stride-2, odd-kernel, odd-padding 'same' convolution of an even-sized input.

    Args:
        shape: the input's shape; only its last two dimensions matter.
    """
    k, p = conv.kernel_size[0], conv.padding
    return (
        conv.kernel_size == (k, k)
        and k % 2 == 1
        and conv.stride == (2, 2)
        and isinstance(p, tuple)
        and p == ((k - 1) // 2, (k - 1) // 2)
        and p[0] % 2 == 1
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and shape[-2] % 2 == 0
        and shape[-1] % 2 == 0
    )


def stride2_input_grad(grad: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """Input gradient of a stride-2 'same' convolution (see :func:`has_fast_input_grad`).

    Computed on the 2x2 pixel-unshuffled grid as a stride-1 transposed convolution and shuffled
    back: 2-3x faster on CPU than the stride-2 transposed convolution (same values).

    Shape:
        grad (N, O, H, W), weight (O, C, k, k) -> (N, C, 2 H, 2 W).
    """
    left = (padding + 1) // 2
    full = F.conv_transpose2d(grad, polyphase_weight(weight.to(grad.dtype)))
    n, _, h, w = grad.shape
    c = weight.shape[1]
    cropped = full[:, :, left : left + h, left : left + w]
    # pixel_shuffle, written out: several times faster on the channels-last maps the convolution gives.
    shuffled = cropped.reshape(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return shuffled.reshape(n, c, 2 * h, 2 * w)


def _conv_input_grad(
    grad: torch.Tensor, weight: torch.Tensor, shape: tuple[int, ...], conv: nn.Conv2d | BlurPool2d
) -> torch.Tensor:
    """Input gradient of ``conv`` (weight given) at an input of ``shape`` (without the batch)."""
    if isinstance(conv, nn.Conv2d):
        stride, padding, dilation, groups = conv.stride, conv.padding, conv.dilation, conv.groups
    else:
        stride, padding, dilation, groups = (conv.stride,) * 2, (0, 0), (1, 1), shape[0]
    if not isinstance(padding, tuple):
        raise ConfigurationError(f"no recorded backward for padding {padding!r}")
    # Only the input's shape and layout matter to the kernel: an uninitialized channels-last tensor.
    like = torch.empty(
        (grad.shape[0], *shape),
        dtype=grad.dtype,
        device=grad.device,
        memory_format=torch.channels_last,
    )
    return torch.ops.aten.convolution_backward(
        grad,
        like,
        weight,
        None,
        list(stride),
        list(padding),
        list(dilation),
        False,
        [0, 0],
        groups,
        (True, False, False),
    )[0]


class _Backward:
    """The backward walk over ELNet's stem and stages for one record (see :func:`slice_gradients`)."""

    def __init__(self, record: SliceRecord, shapes: dict[nn.Module, tuple[int, ...]]) -> None:
        self.record = record
        self.shapes = shapes
        self.scales: dict[nn.Module, torch.Tensor] = {}
        self.bias_grads: dict[nn.Module, torch.Tensor] = {}

    def run(self, module: nn.Module, grad: torch.Tensor) -> torch.Tensor:
        """Gradient at ``module``'s input from the gradient at its output."""
        if isinstance(module, nn.Sequential):
            for child in reversed(module):
                grad = self.run(child, grad)
            return grad
        if isinstance(module, Block):  # x + relu(norm(conv(x)))
            branch = self.run(module.conv, self.run(module.norm, self.run(module.relu, grad)))
            return grad + branch
        if isinstance(module, nn.ReLU):
            return torch.ops.aten.threshold_backward(grad, self.record.relu[module], 0)
        if isinstance(module, MultiSliceNorm):
            self.bias_grads[module] = grad
            return grad * self.scales[module][:, :, None, None]
        if isinstance(module, nn.Conv2d):
            shape, padding = self.shapes[module], module.padding
            if isinstance(padding, tuple) and has_fast_input_grad(module, shape):
                return stride2_input_grad(grad, module.weight.detach(), int(padding[0]))
            return _conv_input_grad(grad, module.weight.detach(), shape, module)
        if isinstance(module, BlurPool2d):
            shape = self.shapes[module]
            k = module.kernel.shape[-1]
            weight = module.kernel.to(grad.dtype).expand(shape[0], 1, k, k)
            return _conv_input_grad(grad, weight, shape, module)
        raise ConfigurationError(f"no recorded backward for {type(module).__name__}")


def slice_gradients(
    model: ELNet,
    record: SliceRecord,
    shapes: dict[nn.Module, tuple[int, ...]],
    grad_features: torch.Tensor,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Input and norm-bias gradients of ``<grad_features, slice_features(x)>`` for recorded slices.

    The same gradients autograd gives through :class:`FullGradHooks` (frozen norm statistics,
    one bias leaf per norm layer), for the K slices of ``record`` only; the amax over each slice's
    last feature map splits the gradient between tied pixels as ``torch.amax`` does.

    Args:
        model: the recorded network.
        record: what the forward of the K slices kept (:class:`ForwardRecorder`).
        shapes: input shape of every convolution and blur (``ForwardRecorder.shapes``).
        grad_features: gradient with respect to each slice's features, (K, C).

    Returns:
        grad_x (K, 1, H, W); then, per norm layer in forward order, its implicit bias (K, C) and
        the gradient with respect to that bias at every location (K, C_l, H_l, W_l).
    """
    norms = model.norm_layers()
    walk = _Backward(record, shapes)
    biases = []
    for module in norms:
        scale, bias = frozen_affine(module, *record.stats[module])
        walk.scales[module] = scale
        biases.append(bias)
    final = record.final
    holds = final == final.amax(dim=(2, 3), keepdim=True)
    grad = holds * (grad_features[:, :, None, None] / holds.sum(dim=(2, 3), keepdim=True))
    grad = walk.run(model.stages, grad.contiguous(memory_format=torch.channels_last))
    grad_x = walk.run(model.stem, grad)
    return grad_x, tuple(biases), tuple(walk.bias_grads[m] for m in norms)
