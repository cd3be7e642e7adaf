"""Anti-aliased bilinear resizing of slices: torch's weights, the height pass first and strided.

``F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)`` resizes along
the width first, then along the height; each output is a weighted sum of 2-8 inputs, accumulated
tap by tap in ascending input order (the first a product, each further one a fused multiply-add),
in a loop that looks up every output's taps and weights.

When ``n_out / gcd(n_in, n_out)`` is small (8 outputs per 13 inputs for 416 -> 256, 1 per 2 for
512, 4 per 7 for 448) every period of the height axis but the first and the last has the same
weights, so each output row of a period is one multiply (its first tap) and one
``add_(alpha=weight)`` (a fused multiply-add) per further tap, over strided views that take that
row from every period at once: 32 passes over whole rows instead of a lookup per output (3.7 ms
instead of 4.8 ms for 32 slices of 416 x 256 -> 256 x 256 on one core, best of 30), bit for bit
torch's height pass (:func:`height_pass`; the border periods, whose weights torch renormalizes,
come from ``F.interpolate`` of a strip of whole periods: the same scale, so the same weights).

:func:`resize_finite` runs that pass **first**, then torch's width pass on the 256 rows left
(instead of 416): the same separable operator with the same float32 weights, its two sums
rounded in the other order, so each value differs from ``F.interpolate``'s by float32 rounding
only (<= 3e-7 of the value on the benchmark's series; 60% of the values equal); 13.5 vs 16.8 ms
best, 18.6 vs 23.3 ms median after a network forward (32 x 416 x 416, one core). Where the height
axis has no periodic plan, ``F.interpolate`` resizes the series, in its own order. Tried and
dropped: the width pass as a channels-last oneDNN convolution over the rows' periods (5.7 vs 7.8 ms
warm, but its renormalized border columns and the caches a forward leaves made it slower).

The weights are torch's: read off by resizing an identity matrix (a one-hot input returns its
weight exactly). torch's loop also multiplies the zero weights at a support's ends, so a NaN or
infinity reaches outputs there that the strided passes skip: :func:`resize` redoes such a series
with ``F.interpolate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

MAX_PERIOD = 16
"""Longest period (outputs) resized by strided passes; longer ones are left to ``F.interpolate``."""

Taps = tuple[tuple[int, float], ...]
"""(input offset, weight) pairs of one output, ascending input, nonzero weights only."""


def reference_resize(volume: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate``'s anti-aliased bilinear resize of every slice (the definition).

    Shape:
        volume (S, H, W) float32 -> (S, size[0], size[1]) float32.
    """
    return F.interpolate(
        volume[:, None], size=size, mode="bilinear", align_corners=False, antialias=True
    )[:, 0]


def resize(volume: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`resize_finite`; a series with a NaN or an infinity is resized by ``F.interpolate``
    itself (checked on the output's minimum and maximum, which NaN reaches).

    Shape:
        volume (S, H, W) float32 -> (S, size[0], size[1]) float32.
    """
    resized = resize_finite(volume, size)
    if not bool(torch.isfinite(torch.stack(torch.aminmax(resized))).all()):
        return reference_resize(volume, size)
    return resized


def resize_finite(volume: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`reference_resize`'s operator, the height first (by periodic passes) where its sizes
    allow, for finite values (the caller checks them, e.g. with a rank index of the output).

    Within float32 rounding of ``F.interpolate`` (the two passes' sums rounded in the other
    order); bit for bit ``F.interpolate`` where the height keeps its size or has no plan.

    Shape:
        volume (S, H, W) float32 -> (S, size[0], size[1]) float32.
    """
    _, height, width = volume.shape
    plan = None if height == size[0] else axis_plan(height, size[0])
    if plan is None:
        return reference_resize(volume, size) if (height, width) != size else volume
    resized = height_pass(volume, plan)
    return resized if width == size[1] else reference_resize(resized, size)


def height_pass(volume: torch.Tensor, plan: AxisPlan) -> torch.Tensor:
    """torch's anti-aliased resize of axis 1 alone, bit for bit, by the plan's strided passes.

    Shape:
        volume (S, plan.n_in, C) float32 -> (S, plan.n_out, C) float32.
    """
    return _along_columns(volume.contiguous(), plan)


@dataclass(frozen=True, eq=False)
class AxisPlan:
    """How one axis of ``n_in`` samples is resized to ``n_out``.

    Attributes:
        period_in: Inputs per period, ``n_in // gcd(n_in, n_out)``.
        period_out: Outputs per period, ``n_out // gcd(n_in, n_out)``.
        reach: Neighbouring periods each side that an output's taps reach.
        taps: Per output of a period, its taps as (offset from the period's first input, weight),
            nonzero weights in ascending input order.
        interior: ``(first, stop)``: the periods with these weights (every period between); the
            others' weights are renormalized at the axis' ends.
    """

    n_in: int
    n_out: int
    period_in: int
    period_out: int
    reach: int
    taps: tuple[Taps, ...]
    interior: tuple[int, int]

    @property
    def borders(self) -> tuple[tuple[int, int, int], ...]:
        """The border strips ``(first, stop, width)``: output periods ``first..stop-1`` come from
        ``F.interpolate`` of ``width`` periods of input at the same end of the axis.

        A strip of whole periods has torch's scale of the whole axis, so its outputs that the
        strip's inner end does not truncate (those ``reach`` periods or more from it) are the
        whole axis' outputs, bit for bit.
        """
        periods = self.n_in // self.period_in
        first, stop = self.interior
        strips = []
        if first > 0:
            strips.append((0, first, first + self.reach))
        if stop < periods:
            strips.append((stop, periods, periods - stop + self.reach))
        return tuple(strips)


def resize_weights(n_in: int, n_out: int) -> torch.Tensor:
    """torch's weights for one axis: ``(n_in, n_out)`` float32, column o the weights of output o.

    Read off by resizing the identity (row i: the one-hot input i), so exactly the kernel's own.
    Not cached: :func:`axis_plan`, its one caller, is, and keeps only the taps it needs.
    """
    eye = torch.eye(n_in, dtype=torch.float32)
    return reference_resize(eye[None], (n_in, n_out))[0]


@lru_cache(maxsize=32)
def axis_plan(n_in: int, n_out: int) -> AxisPlan | None:
    """The periodic plan of an axis, or None when the period is longer than ``MAX_PERIOD``, the
    weights do not repeat, a border strip would not hold its outputs' taps or the passes do not
    reproduce ``F.interpolate`` bit for bit on a random probe."""
    periods = math.gcd(n_in, n_out)
    period_in, period_out = n_in // periods, n_out // periods
    if period_out > MAX_PERIOD or periods < 3:
        return None
    weights = resize_weights(n_in, n_out)
    middle = periods // 2
    block = weights[:, middle * period_out : (middle + 1) * period_out]
    rows = torch.nonzero(block.any(dim=1))[:, 0]
    first = int(rows[0]) - middle * period_in
    stop = int(rows[-1]) + 1 - middle * period_in
    reach = max(-math.floor(first / period_in), math.ceil(stop / period_in) - 1, 0)
    low, high = (middle - reach) * period_in, (middle + reach + 1) * period_in
    if low < 0 or high > n_in:
        return None
    window = block[low:high]  # (span, period_out): periods middle - reach .. middle + reach
    periodic = [_repeats(weights, window, m, reach, period_in, period_out) for m in range(periods)]
    start, end = middle, middle + 1
    while start > 0 and periodic[start - 1]:
        start -= 1
    while end < periods and periodic[end]:
        end += 1
    offset = -reach * period_in
    taps = tuple(_taps(window[:, r], offset) for r in range(period_out))
    plan = AxisPlan(n_in, n_out, period_in, period_out, reach, taps, (start, end))
    for first_period, stop_period, width in plan.borders:
        if width > periods:
            return None
        inputs, _ = _strip(plan, first_period, stop_period, width)
        outputs = weights[:, first_period * period_out : stop_period * period_out]
        if int(torch.count_nonzero(outputs[inputs])) != int(torch.count_nonzero(outputs)):
            return None
    # torch's loop need not be one fused multiply-add per tap on every build and support length
    # (on this one, supports of 5+ taps differ in the last bit): a plan is used only where it
    # gives F.interpolate's bits on a probe.
    probe = torch.randn(2, n_in, 16, generator=torch.Generator().manual_seed(n_in)).exp()
    if not torch.equal(_along_columns(probe, plan), reference_resize(probe, (n_out, 16))):
        return None
    return plan


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


def _taps(column: torch.Tensor, offset: int) -> Taps:
    """The nonzero weights of ``column`` as (index + offset, weight), ascending index."""
    where = torch.nonzero(column)[:, 0].tolist()
    return tuple((i + offset, float(column[i])) for i in where)


def _strip(plan: AxisPlan, first: int, stop: int, width: int) -> tuple[slice, slice]:
    """The inputs of the border strip of output periods ``first..stop-1`` (``width`` periods at
    that end of the axis), and the rows of the strip's output that are those periods'."""
    pi, po = plan.period_in, plan.period_out
    low = 0 if first == 0 else plan.n_in - width * pi
    skipped = low // pi * po  # outputs before the strip's first
    return slice(low, low + width * pi), slice(first * po - skipped, stop * po - skipped)


def _along_columns(volume: torch.Tensor, plan: AxisPlan) -> torch.Tensor:
    """Resize axis 1 of a contiguous (S, n_in, C) ``volume`` -> (S, n_out, C)."""
    slices, _, columns = volume.shape
    out = torch.empty(slices, plan.n_out, columns, dtype=volume.dtype)
    first, stop = plan.interior
    pi, po = plan.period_in, plan.period_out

    def rows(offset: int) -> torch.Tensor:
        """Input row ``offset`` (from each period's first) of every interior period."""
        return volume[:, first * pi + offset : (stop - 1) * pi + offset + 1 : pi]

    for r, ((offset, weight), *rest) in enumerate(plan.taps):
        target = out[:, first * po + r : stop * po : po]
        # t = x0 * w0, then t += x * w fused, tap by tap: torch's loop, row by row.
        torch.mul(rows(offset), weight, out=target)
        for offset_, weight_ in rest:
            target.add_(rows(offset_), alpha=weight_)
    for border_first, border_stop, width in plan.borders:
        inputs, outputs = _strip(plan, border_first, border_stop, width)
        strip = reference_resize(volume[:, inputs], (width * po, columns))
        out[:, border_first * po : border_stop * po] = strip[:, outputs]
    return out
