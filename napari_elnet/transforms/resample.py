"""Anti-aliased bilinear resizing of slices: torch's own weights and arithmetic, in fewer passes.

``F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)`` resizes along
the width first, then along the height; each output is a weighted sum of 2-8 inputs, accumulated
tap by tap in ascending input order with fused multiply-adds, in a loop that looks up every
output's taps (13 ms for 32 slices of 416 x 416 -> 256 x 256 on one core).

When ``n_out / gcd(n_in, n_out)`` is small (8 outputs per 13 inputs for 416 -> 256, 1 per 2 for
512, 4 per 7 for 448) every period but the first and the last has the same weights, so:

- along the width, a row's periods are the positions and each period's inputs the channels of a
  channels-last convolution (oneDNN) whose output memory is the resized rows themselves; its
  kernel spans the neighbouring periods, and the weights outside a tap's support are zeros;
- along the height, each output row of a period is one multiply (its first tap) and one
  ``add_(alpha=weight)`` (a fused multiply-add) per further tap over strided views that take that
  row from every period at once;
- the border periods, whose weights torch renormalizes, are summed tap by tap the same way.

The weights are torch's: read off by resizing an identity matrix (a one-hot input returns its
weight exactly). On finite inputs the results equal ``F.interpolate``'s on this machine's build
(the tests compare them); a zero may come out with the other sign, and a NaN or infinity reaches
the neighbouring periods' outputs too (zero weight times infinity), so :func:`resize`
redoes such a series with ``F.interpolate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

MAX_PERIOD = 16
"""Longest period (outputs) resized by the convolution: more would be a dense matrix product."""

Taps = tuple[tuple[int, float], ...]
"""(input index, weight) pairs of one output, ascending input index, nonzero weights only."""


def reference_resize(volume: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate``'s anti-aliased bilinear resize of every slice (the definition).

    Shape:
        volume (S, H, W) float32 -> (S, size[0], size[1]) float32.
    """
    return F.interpolate(
        volume[:, None], size=size, mode="bilinear", align_corners=False, antialias=True
    )[:, 0]


def resize(volume: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`reference_resize`, by the periodic passes where the sizes allow.

    Equal values for finite inputs; a series with a NaN or an infinity is resized by
    ``F.interpolate`` itself (checked on the output's minimum and maximum, which NaN reaches).

    Shape:
        volume (S, H, W) float32 -> (S, size[0], size[1]) float32, contiguous.
    """
    resized = resize_finite(volume, size)
    if not bool(torch.isfinite(torch.stack(torch.aminmax(resized))).all()):
        return reference_resize(volume, size)
    return resized


def resize_finite(volume: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`resize_slices` without the check: for a volume of finite values (the caller checks,
    e.g. with the rank index of the output).

    Shape:
        volume (S, H, W) float32 -> (S, size[0], size[1]) float32, contiguous.
    """
    slices, height, width = volume.shape
    out_height, out_width = size
    x = volume.contiguous()
    if width != out_width:
        across = axis_plan(width, out_width)
        if across is None:
            x = reference_resize(x, (height, out_width))
        else:
            x = _along_rows(x.reshape(slices * height, width), across).reshape(
                slices, height, out_width
            )
    if height != out_height:
        down = axis_plan(height, out_height)
        x = (
            reference_resize(x, (out_height, out_width))
            if down is None
            else _along_columns(x, down)
        )
    return x


@dataclass(frozen=True, eq=False)
class AxisPlan:
    """How one axis of ``n_in`` samples is resized to ``n_out``.

    Attributes:
        period_in: Inputs per period, ``n_in // gcd(n_in, n_out)``.
        period_out: Outputs per period, ``n_out // gcd(n_in, n_out)``.
        reach: Neighbouring periods each side that an output's taps reach.
        kernel: (period_out, period_in, 1, 2 * reach + 1) float32, the convolution's weights:
            ``kernel[r, c, 0, k]`` weighs input ``c`` of period ``m + k - reach`` for output ``r``
            of period ``m``.
        taps: Per output of a period, its taps as (offset from the period's first input, weight).
        interior: ``(first, stop)``: the periods whose outputs have ``taps`` (all periods between).
        borders: The other outputs: (output index, its taps by absolute input index).
        border_kernels: The other periods: (period, its own ``kernel``, zero beyond the axis).
    """

    n_in: int
    n_out: int
    period_in: int
    period_out: int
    reach: int
    kernel: torch.Tensor
    taps: tuple[Taps, ...]
    interior: tuple[int, int]
    borders: tuple[tuple[int, Taps], ...]
    border_kernels: tuple[tuple[int, torch.Tensor], ...]


@lru_cache(maxsize=32)
def resize_weights(n_in: int, n_out: int) -> torch.Tensor:
    """torch's weights for one axis: ``(n_in, n_out)`` float32, column o the weights of output o.

    Read off by resizing the identity (row i: the one-hot input i), so exactly the kernel's own.
    """
    eye = torch.eye(n_in, dtype=torch.float32)
    return reference_resize(eye[None], (n_in, n_out))[0]


@lru_cache(maxsize=32)
def axis_plan(n_in: int, n_out: int) -> AxisPlan | None:
    """The periodic plan of an axis, or None when the period is longer than ``MAX_PERIOD``, the
    axis holds fewer than three periods or the weights do not repeat."""
    periods = math.gcd(n_in, n_out)
    period_in, period_out = n_in // periods, n_out // periods
    if period_out > MAX_PERIOD or periods < 3:
        return None
    weights = resize_weights(n_in, n_out)
    middle = periods // 2
    block = weights[:, middle * period_out : (middle + 1) * period_out]
    rows = torch.nonzero(block.any(dim=1))[:, 0]
    if rows.numel() == 0:
        return None
    first = int(rows[0]) - middle * period_in
    stop = int(rows[-1]) + 1 - middle * period_in
    reach = max(-math.floor(first / period_in), math.ceil(stop / period_in) - 1, 0)
    low, high = (middle - reach) * period_in, (middle + reach + 1) * period_in
    if low < 0 or high > n_in:
        return None
    window = block[low:high]  # (span, period_out)
    periodic = [_repeats(weights, window, m, reach, period_in, period_out) for m in range(periods)]
    start = middle
    while start > 0 and periodic[start - 1]:
        start -= 1
    end = middle + 1
    while end < periods and periodic[end]:
        end += 1
    offset = -reach * period_in
    taps = tuple(_taps(window[:, r], offset) for r in range(period_out))
    outside = [m for m in range(periods) if not start <= m < end]
    borders = tuple(
        (o, _taps(weights[:, o], 0))
        for m in outside
        for o in range(m * period_out, (m + 1) * period_out)
    )
    border_kernels = []
    margin, span = reach * period_in, (2 * reach + 1) * period_in
    for m in outside:
        # Row j of ``padded`` weighs input j - margin: periods m - reach .. m + reach.
        padded = F.pad(weights[:, m * period_out : (m + 1) * period_out], (0, 0, margin, margin))
        shifted = padded[m * period_in : m * period_in + span]
        if int(torch.count_nonzero(shifted)) != int(torch.count_nonzero(padded)):
            return None  # a border output reaches further than the kernel
        border_kernels.append((m, _kernel(shifted, reach, period_in)))
    return AxisPlan(
        n_in,
        n_out,
        period_in,
        period_out,
        reach,
        _kernel(window, reach, period_in),
        taps,
        (start, end),
        borders,
        tuple(border_kernels),
    )


def _repeats(
    weights: torch.Tensor, window: torch.Tensor, m: int, reach: int, period_in: int, period_out: int
) -> bool:
    """Whether period ``m`` has the middle period's weights, shifted by whole periods."""
    low, high = (m - reach) * period_in, (m + reach + 1) * period_in
    if low < 0 or high > weights.shape[0]:
        return False
    block = weights[:, m * period_out : (m + 1) * period_out]
    inside = block[low:high]
    return bool(torch.equal(inside, window)) and int(torch.count_nonzero(block)) == int(
        torch.count_nonzero(inside)
    )


def _kernel(window: torch.Tensor, reach: int, period_in: int) -> torch.Tensor:
    """The convolution weights (period_out, period_in, 1, 2 * reach + 1) of a period's window of
    weights ((2 * reach + 1) * period_in, period_out)."""
    period_out = window.shape[1]
    kernel = window.T.reshape(period_out, 2 * reach + 1, period_in).permute(0, 2, 1)
    return kernel.contiguous()[:, :, None, :]


def _taps(column: torch.Tensor, offset: int) -> Taps:
    """The nonzero weights of ``column`` as (index + offset, weight), ascending index."""
    where = torch.nonzero(column)[:, 0].tolist()
    return tuple((i + offset, float(column[i])) for i in where)


def _along_rows(rows: torch.Tensor, plan: AxisPlan) -> torch.Tensor:
    """Resize the contiguous last axis of (N, n_in) ``rows`` -> (N, n_out)."""
    count = rows.shape[0]
    periods = plan.n_in // plan.period_in
    # (N, period_in, 1, periods) with channels-last strides: the rows' own memory.
    view = rows.reshape(count, 1, periods, plan.period_in).permute(0, 3, 1, 2)
    out = F.conv2d(view, plan.kernel, padding=(0, plan.reach))  # (N, period_out, 1, periods)
    out = out.permute(0, 2, 3, 1).reshape(count, plan.n_out)
    for outputs in _runs([o for o, _ in plan.borders]):
        # Border outputs tap by tap, on a transposed copy of the inputs they read.
        taps = [dict(plan.borders)[o] for o in outputs]
        low = min(i for t in taps for i, _ in t)
        high = max(i for t in taps for i, _ in t) + 1
        strip = rows[:, low:high].T.contiguous()  # (high - low, N)
        sums = torch.empty(len(outputs), count, dtype=rows.dtype)
        for k, t in enumerate(taps):
            _accumulate(sums[k], [(strip[i - low], w) for i, w in t])
        out[:, outputs[0] : outputs[-1] + 1] = sums.T
    return out


def _runs(indices: list[int]) -> list[list[int]]:
    """Ascending ``indices`` split into runs of consecutive numbers."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _along_columns(volume: torch.Tensor, plan: AxisPlan) -> torch.Tensor:
    """Resize axis 1 of (S, n_in, C) ``volume`` -> (S, n_out, C)."""
    slices, _, columns = volume.shape
    out = torch.empty(slices, plan.n_out, columns, dtype=volume.dtype)
    first, stop = plan.interior
    pi, po = plan.period_in, plan.period_out
    for r, taps in enumerate(plan.taps):
        target = out[:, first * po + r : stop * po : po]
        sources = [
            (volume[:, first * pi + offset : (stop - 1) * pi + offset + 1 : pi], w)
            for offset, w in taps
        ]
        _accumulate(target, sources)
    for o, taps in plan.borders:
        _accumulate(out[:, o], [(volume[:, i], w) for i, w in taps])
    return out


def _accumulate(target: torch.Tensor, sources: list[tuple[torch.Tensor, float]]) -> None:
    """``target = s0 * w0``, then ``target += s * w`` per further tap (fused), in order."""
    (head, weight), *rest = sources
    torch.mul(head, weight, out=target)
    for source, weight in rest:
        target.add_(source, alpha=weight)
