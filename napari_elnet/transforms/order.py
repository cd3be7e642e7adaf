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
        bucket: (N,) intp, each value's bucket; a larger value never has a smaller bucket (so the
            buckets of a volume also serve that volume clipped with ``np.minimum``).
        counts: (B,) int64, values per bucket.
        below: (B,) int64, values in the buckets before each bucket.
        bounds: (B, 2) float32, the smallest and largest value a bucket can hold (within the
            values' range), used to select one run of buckets by comparing values; None for
            clipped values (a clipped value can lie below its bucket's bounds).
        workers: Threads for the passes over all values.
    """

    values: np.ndarray
    bucket: np.ndarray
    counts: np.ndarray
    below: np.ndarray
    bounds: np.ndarray | None
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
        """Selects, in a part of the values, those in the ``needed`` buckets (ascending, distinct)."""
        first, last = int(needed[0]), int(needed[-1])
        # Buckets that hold every value between their bounds (the tail of a clip percentile) are
        # a value range: two comparisons instead of a table lookup per value, unless a bound is
        # zero (-0.0 and 0.0 compare equal but sit in different buckets).
        run = self.below[last] + self.counts[last] - self.below[first] == self.counts[needed].sum()
        bounds = self.bounds
        if run and bounds is not None and bounds[first, 0] != 0 and bounds[last, 1] != 0:
            low, high = bounds[first, 0], bounds[last, 1]
            top = last == self.counts.size - 1

            def in_range(part: slice) -> np.ndarray:
                values = self.values[part]
                inside = values >= low
                if not top:
                    inside &= values <= high
                return values[inside]

            return in_range
        wanted = np.zeros(self.counts.size, dtype=bool)
        wanted[needed] = True
        return lambda part: self.values[part][wanted.take(self.bucket[part])]

    def clipped(self, values: np.ndarray) -> RankIndex:
        """The index of ``np.minimum(self.values, ceiling)``, given as ``values`` (any shape).

        Clipping keeps the order, so the buckets still never decrease with the values; their
        bounds no longer hold (the clipped values are selected by bucket).
        """
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        if flat.shape != self.values.shape:
            raise ValueError(f"{flat.size} clipped values for an index of {self.size}")
        return replace(self, values=flat, bounds=None)


def rank_index(values: np.ndarray, workers: int = 1) -> RankIndex | None:
    """Histogram ``values`` (any shape, float32) for rank queries; None if any value is NaN or inf.

    The caller then uses numpy's own routines, which define what non-finite values do.
    ``workers`` threads share the passes over the values (here and in the index's queries).
    """
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if flat.size == 0 or not (np.isfinite(flat.min()) and np.isfinite(flat.max())):
        return None
    keys = flat.view(np.int32)
    signed = bool(int(keys.min()) < 0)  # negative values (or -0.0): flip their magnitude bits
    if signed:
        keys = keys ^ ((keys >> 31) & np.int32(0x7FFFFFFF))
    low, high = int(keys.min()), int(keys.max())
    shift = max(0, (high - low).bit_length() - HISTOGRAM_BITS)
    buckets = (high >> shift) - (low >> shift) + 1
    bucket = np.empty(flat.size, dtype=np.intp)

    def count(part: slice) -> np.ndarray:
        small = keys[part] >> np.int32(shift)
        small -= np.int32(low >> shift)
        bucket[part] = small
        return np.bincount(bucket[part], minlength=buckets)

    counts = np.sum(in_parts(count, flat.size, workers), axis=0)
    below = np.cumsum(counts) - counts
    first = (np.arange(buckets, dtype=np.int64) + (low >> shift)) << shift
    edges = np.stack([np.maximum(first, low), np.minimum(first + (1 << shift) - 1, high)], axis=1)
    bounds = _floats(edges, signed)
    return RankIndex(flat, bucket, counts, below, bounds, workers)


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
