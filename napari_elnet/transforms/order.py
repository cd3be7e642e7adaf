"""Exact order statistics of a float32 volume without sorting it (a radix-histogram select).

``np.percentile`` partitions the whole array around every rank it needs: 20 ms for the eleven
foreground landmarks of a 32 x 256 x 256 series. Here one histogram of the values' leading bits
tells which bucket holds each wanted rank (float32 bit patterns read as integers are ordered like the
floats once the negatives' magnitude bits are flipped), and only those buckets' values are gathered
and partitioned. The values returned are the very elements of the sorted array, not estimates, and
:func:`numpy_percentiles` turns them into ``np.percentile``'s results bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch

HISTOGRAM_BITS = 16
"""At most 2**16 + 1 buckets: coarse enough to count in one pass, fine enough that the buckets
holding the wanted ranks are a small fraction of the volume."""

_T = TypeVar("_T")


def in_parts(fn: Callable[[slice], _T], size: int, workers: int) -> list[_T]:
    """``fn`` on ``workers`` consecutive parts of ``range(size)``, on as many threads.

    numpy releases the GIL inside its loops, so the parts' passes over memory overlap.
    """
    step = max(1, -(-size // max(1, workers)))
    parts: Sequence[slice] = [slice(i, min(i + step, size)) for i in range(0, size, step)]
    if len(parts) <= 1:
        return [fn(part) for part in parts]
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        return list(pool.map(fn, parts))


@dataclass(frozen=True, eq=False)
class RankIndex:
    """A histogram of a volume's values by bucket, ready to answer rank queries.

    Attributes:
        values: (N,) float32, all finite, in their original order.
        bucket: (N,) int32, each value's bucket; a larger value never has a smaller bucket (so the
            buckets of a volume also serve that volume clipped with ``np.minimum``).
        counts: (B,) int64, values per bucket.
        below: (B,) int64, values in the buckets before each bucket.
        keys: The buckets' keys: ``(lowest, highest, shift, signed)``, where bucket b holds the
            ordered integer keys ``k`` (the float32 bit patterns, negatives' magnitude bits flipped
            when ``signed``) with ``k >> shift == b + (lowest >> shift)``, within
            [lowest, highest]. They give the smallest and largest value a bucket can hold, used to
            select one run of buckets by comparing values; None for clipped values (a clipped
            value can lie below its bucket's bounds).
        workers: Threads for the passes over all values.
    """

    values: np.ndarray
    bucket: np.ndarray
    counts: np.ndarray
    below: np.ndarray
    keys: tuple[int, int, int, bool] | None
    workers: int = 1

    @property
    def size(self) -> int:
        """Number of values N."""
        return int(self.values.size)

    def at(self, ranks: Iterable[int] | np.ndarray) -> np.ndarray:
        """The values of the given ranks in ascending order (rank 0 is the smallest).

        Args:
            ranks: Integer ranks in [0, N), any order, repeats allowed.

        Returns:
            float32 array, one value per rank: ``np.sort(values)[ranks]``.
        """
        ranks = np.asarray(ranks, dtype=np.int64)
        if ranks.size and (ranks.min() < 0 or ranks.max() >= self.size):
            raise IndexError(f"ranks must lie in [0, {self.size}): {ranks.min()}..{ranks.max()}")
        holding = np.searchsorted(self.below, ranks, side="right") - 1
        needed = np.unique(holding)
        select = self._members(needed)
        candidates = np.concatenate(in_parts(select, self.size, self.workers))
        # Ranks among the candidates: the candidate buckets keep their order.
        start = np.zeros(self.counts.size, dtype=np.int64)
        start[needed] = np.cumsum(self.counts[needed]) - self.counts[needed]
        local = ranks - self.below[holding] + start[holding]
        parted = np.partition(candidates, np.unique(local))
        return parted[local]

    def count_at_most(self, value: np.floating) -> int:
        """How many values are <= ``value``."""
        counts = in_parts(
            lambda part: int(np.count_nonzero(self.values[part] <= value)),
            self.size,
            self.workers,
        )
        return sum(counts)

    def _members(self, needed: np.ndarray) -> Callable[[slice], np.ndarray]:
        """Selects, in a part of the values, those in the ``needed`` buckets (ascending, distinct),
        and possibly values of later buckets (all larger, so the ranks within the needed buckets'
        values stay the same)."""
        first, last = int(needed[0]), int(needed[-1])
        # Buckets that hold every value between their bounds (the tail of a clip percentile) are
        # a value range: one or two comparisons instead of a table lookup per value, unless a
        # bound is zero (-0.0 and 0.0 compare equal but sit in different buckets).
        held = self.counts[needed].sum()
        run = self.below[last] + self.counts[last] - self.below[first] == held
        bounds = self._bounds(first, last) if run else None
        if bounds is not None and bounds[0] != 0 and bounds[1] != 0:
            low, high = bounds
            # Near the top, one comparison: the few larger values come along.
            top = self.size - self.below[first] <= max(2 * held, self.size // 64)

            def in_range(part: slice) -> np.ndarray:
                values = self.values[part]
                inside = values >= low
                if not top:
                    inside &= values <= high
                return values[inside]

            return in_range
        wanted = torch.zeros(self.counts.size, dtype=torch.bool)
        wanted[torch.from_numpy(needed)] = True

        def in_table(part: slice) -> np.ndarray:
            # torch looks up int32 numbers as they are; numpy's take first copies them to int64.
            inside = wanted.index_select(0, torch.from_numpy(self.bucket[part])).numpy()
            return self.values[part][inside]

        return in_table

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The smallest and the largest value; None for clipped values."""
        if self.keys is None:
            return None
        lowest, highest, _, signed = self.keys
        low, high = _floats(np.array([lowest, highest], dtype=np.int64), signed)
        return float(low), float(high)

    def _bounds(self, first: int, last: int) -> np.ndarray | None:
        """(2,) float32: the smallest value bucket ``first`` and the largest value bucket ``last``
        can hold (within the values' range); None for clipped values."""
        if self.keys is None:
            return None
        lowest, highest, shift, signed = self.keys
        offset = lowest >> shift
        start, stop = (first + offset) << shift, ((last + offset + 1) << shift) - 1
        edges = [max(start, lowest), min(stop, highest)]
        return _floats(np.array(edges, dtype=np.int64), signed)

    def clipped(self, values: np.ndarray) -> RankIndex:
        """The index of ``np.minimum(self.values, ceiling)``, given as ``values`` (any shape).

        Clipping keeps the order, so the buckets still never decrease with the values; their
        bounds no longer hold (the clipped values are selected by bucket).
        """
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        if flat.shape != self.values.shape:
            raise ValueError(f"{flat.size} clipped values for an index of {self.size}")
        return replace(self, values=flat, keys=None)


def rank_index(values: np.ndarray, workers: int = 1) -> RankIndex | None:
    """Histogram ``values`` (any shape, float32) for rank queries; None if any value is NaN or inf.

    The caller then uses numpy's own routines, which define what non-finite values do.
    ``workers`` threads share the passes over the values (here and in the index's queries).
    """
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if flat.size == 0:
        return None
    keys = flat.view(np.int32)
    low, high = _key_range(keys)
    signed = low < 0  # negative values (or -0.0): flip their magnitude bits
    if signed:
        keys = keys ^ ((keys >> 31) & np.int32(0x7FFFFFFF))
        low, high = _key_range(keys)
    # The keys of the finite values lie strictly between those of -inf and +inf; NaNs of either
    # sign lie beyond them.
    if not _NEGATIVE_INFINITY < low <= high < _POSITIVE_INFINITY:
        return None
    shift = max(0, (high - low).bit_length() - HISTOGRAM_BITS)
    buckets = (high >> shift) - (low >> shift) + 1
    bucket = np.empty(flat.size, dtype=np.int32)

    def count(part: slice) -> np.ndarray:
        np.right_shift(keys[part], np.int32(shift), out=bucket[part])
        bucket[part] -= np.int32(low >> shift)
        # torch counts int32 numbers as they are; np.bincount first copies them to int64.
        return torch.bincount(torch.from_numpy(bucket[part]), minlength=buckets).numpy()

    counts = np.sum(in_parts(count, flat.size, workers), axis=0)
    below = np.cumsum(counts) - counts
    return RankIndex(flat, bucket, counts, below, (low, high, shift, signed), workers)


_POSITIVE_INFINITY = 0x7F800000
"""The key of +inf (its bit pattern); positive NaNs have larger keys."""
_NEGATIVE_INFINITY = -0x7F800001
"""The key of -inf (its bit pattern, 0xFF800000, with the magnitude bits flipped, read as an
int32); negative NaNs have smaller keys."""


def _key_range(keys: np.ndarray) -> tuple[int, int]:
    """The smallest and largest of int32 ``keys``, in one pass (numpy's min and max take two)."""
    low, high = torch.aminmax(torch.from_numpy(keys))
    return int(low), int(high)


def _floats(keys: np.ndarray, signed: bool) -> np.ndarray:
    """The float32 values of ordered integer keys (the inverse of :func:`rank_index`'s keys)."""
    raw = keys.astype(np.int64)
    if signed:
        raw = np.where(raw < 0, raw ^ 0x7FFFFFFF, raw)
    return raw.astype(np.int32).view(np.float32)


def numpy_percentiles(
    at: Callable[[np.ndarray], np.ndarray], count: int, percentiles: Iterable[float]
) -> np.ndarray:
    """``np.percentile(values, percentiles)`` (method "linear") from the two ranks each reads.

    The arithmetic is numpy's own (its ``_quantile`` and ``_lerp`` on the same dtypes), so the
    results are equal, not close; the tests compare them with ``==``.

    Args:
        at: Returns the float32 values of given ranks (0 = smallest) of the ``count`` values.
        count: Number of values (>= 1).
        percentiles: In [0, 100].

    Returns:
        float64 array, one value per percentile.
    """
    quantiles = np.true_divide(np.asarray(list(percentiles), dtype=np.float64), 100)
    virtual = (count - 1) * quantiles
    previous = np.floor(virtual).astype(np.intp)
    following = previous + 1
    beyond = virtual >= count - 1
    previous[beyond] = following[beyond] = -1
    before = virtual < 0
    previous[before] = following[before] = 0
    ranks = np.concatenate([previous, following])
    low, high = np.split(at(np.where(ranks < 0, count - 1, ranks)), 2)
    gamma = np.asarray(virtual - previous, dtype=np.float64)
    diff = high - low
    result = np.add(low, diff * gamma)
    np.subtract(high, diff * (1 - gamma), out=result, where=gamma >= 0.5, casting="unsafe")
    return result
