"""``np.interp`` on float32 volumes, bit for bit, in cache-sized chunks on several threads.

``np.interp`` converts the whole volume to float64 and binary-searches every value: 21 ms for a
32 x 256 x 256 series, on one core. Here a value's segment comes from a table indexed by the
leading bits of its float32 pattern (the patterns, read as integers with the negatives' magnitude
bits flipped, ascend with the values); only the values of the few buckets that hold a knot are
compared with the knots (each rounded up to float32, which decides ``x >= knot`` exactly for a
float32 ``x``). Each value then gets numpy's own expression ``slope * (x - x_j) + y_j`` in float64
with numpy's slopes, so every result equals ``np.interp``'s, rounded to float32. When most values
share one segment (a series' background lies below its first foreground landmark), that
segment's numbers are scalars and only the other values are looked up.

:func:`interp_single` takes the same segments and evaluates the same expression in float32
(writing straight into the output): no float64 copy of the chunk, no rounding pass at the end,
2 ms less per 32 x 256 x 256 series (CPU, one thread), within a few float32 roundings of
``np.interp``. The preprocessing maps with it (:func:`~napari_elnet.transforms.intensity.map_to_standard`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

CHUNK = 1 << 17
"""Values per chunk: the chunk's float64 temporaries (1 MiB each) stay near a core's cache, and
the few dozen numpy calls per chunk cost little next to their loops."""

_LARGEST = float(np.finfo(np.float32).max)


def interp_single(
    values: np.ndarray,
    knots: np.ndarray,
    heights: np.ndarray,
    workers: int = 1,
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """:func:`interp_float32` with the expression ``slope * (x - x_j) + y_j`` in float32 (the
    knots, slopes and heights rounded to float32), one pass fewer and half the bytes per value.

    The segments are those of :func:`interp_float32` (the same exact comparisons); each result
    differs from ``np.interp``'s rounded to float32 by a few float32 rounding errors of the
    expression's terms (for the standard scale's 0..1: below 1e-6 absolute; the tests bound it).
    Inputs the fast path cannot take go to ``np.interp`` itself, as there.

    Args and returns: as :func:`interp_float32`.
    """
    return _interp(values, knots, heights, workers, bounds, np.float32)


def interp_float32(
    values: np.ndarray,
    knots: np.ndarray,
    heights: np.ndarray,
    workers: int = 1,
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """``np.interp(values, knots, heights).astype(np.float32)``, equal bit for bit.

    The fast path needs finite values, strictly increasing knots (at least 2) within float32's
    range, finite heights and slopes; otherwise this calls ``np.interp`` itself (the same results,
    at numpy's speed).

    Args:
        values: float32 array, any shape.
        knots: (K,) float64 knot positions.
        heights: (K,) float64 values at the knots.
        workers: Threads sharing the chunks (numpy releases the GIL in its loops).
        bounds: ``(values.min(), values.max())`` when the caller has them already (they must be
            those: the bucket tables span them and are read without a check per value).

    Returns:
        float32 array of the shape of ``values``.
    """
    return _interp(values, knots, heights, workers, bounds, np.float64)


def _interp(
    values: np.ndarray,
    knots: np.ndarray,
    heights: np.ndarray,
    workers: int,
    bounds: tuple[float, float] | None,
    work: type[np.floating],
) -> np.ndarray:
    """:func:`interp_float32` (``work`` float64) or :func:`interp_single` (float32)."""
    values = np.asarray(values)
    if bounds is None and values.size:
        bounds = (float(values.min()), float(values.max()))
    knots = np.asarray(knots, dtype=np.float64)
    heights = np.asarray(heights, dtype=np.float64)
    with np.errstate(all="ignore"):
        slopes = (heights[1:] - heights[:-1]) / (knots[1:] - knots[:-1])
    usable = (
        values.dtype == np.float32
        and values.size > 0
        and knots.ndim == 1
        and knots.shape == heights.shape
        and knots.size >= 2
        and bool(np.all(np.abs(knots) <= _LARGEST) and np.all(np.isfinite(heights)))
        and bool(np.all(np.diff(knots) > 0) and np.all(np.isfinite(slopes)))
        and bounds is not None
        and bool(np.isfinite(bounds[0]) and np.isfinite(bounds[1]))
    )
    if not usable:
        return np.interp(values, knots, heights).astype(np.float32)
    # Row s of the tables serves the values with s knots at or below them: row 0 (below the first
    # knot) and row K (at or above the last) are flat, as np.interp's left and right values.
    start = np.concatenate([knots[:1], knots]).astype(work)
    slope = np.concatenate([[0.0], slopes, [0.0]]).astype(work)
    base = np.concatenate([heights[:1], heights]).astype(work)
    # x >= knot  <=>  x >= (knot rounded up to float32), for every float32 x.
    with np.errstate(over="ignore"):
        rounded = knots.astype(np.float32)
    above = rounded.astype(np.float64) < knots
    rounded[above] = np.nextafter(rounded[above], np.float32(np.inf))
    flat = np.ascontiguousarray(values).reshape(-1)
    span = np.array(bounds, dtype=np.float32)
    table = _BucketTable(span, rounded)
    # The rows by bucket; a bucket that holds a knot gets NaN, so its values come out NaN and
    # are redone with their own rows.
    row = np.maximum(table.segment, 0)
    bucket_start, bucket_slope, bucket_base = start[row], slope[row], base[row]
    bucket_start[table.segment == _AMBIGUOUS] = np.nan
    out = np.empty(flat.size, dtype=np.float32)

    def by_table(x: np.ndarray) -> np.ndarray:
        """The float64 results of float32 values ``x``, each with its bucket's row."""
        bucket = table.buckets(x)
        # The working type first: numpy's mixed float32 - float64 loop casts through small buffers.
        result = x.astype(work)
        # Every bucket number lies in the tables (the values lie within ``bounds``): numpy's
        # "clip" mode only skips the per-index check of the default mode.
        result -= bucket_start.take(bucket, mode="clip")
        result *= bucket_slope.take(bucket, mode="clip")
        result += bucket_base.take(bucket, mode="clip")
        unsure = np.flatnonzero(np.isnan(result))
        if unsure.size:
            held = x[unsure]
            own = np.searchsorted(rounded, held, side="right")
            redone = held - start[own]
            redone *= slope[own]
            redone += base[own]
            result[unsure] = redone
        return result

    common = _common_row(flat, rounded)
    if common is not None:
        lower, upper = _row_limits(rounded, common, span)

    def run(first: int) -> None:
        chunk = flat[first : first + CHUNK]
        if common is None:
            out[first : first + chunk.size] = by_table(chunk)
            return
        # Most values share one row: its numbers are scalars, the others go through the table.
        if work is np.float32:
            result = np.subtract(chunk, start[common], out=out[first : first + chunk.size])
        else:
            result = chunk.astype(work)
            result -= start[common]
        result *= slope[common]
        result += base[common]
        other = _outside(chunk, lower, upper)
        if other is not None:
            result[other] = by_table(chunk.take(other, mode="clip"))
        if work is not np.float32:
            out[first : first + chunk.size] = result

    firsts = range(0, flat.size, CHUNK)
    if workers > 1 and flat.size > CHUNK:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, firsts))
    else:
        for first in firsts:
            run(first)
    return out.reshape(values.shape)


def _common_row(flat: np.ndarray, rounded: np.ndarray) -> int | None:
    """The row (number of knots at or below) of at least half of a sample of the values, if any."""
    sample = flat[:: max(1, flat.size // _SAMPLE)]
    rows = np.bincount(np.searchsorted(rounded, sample, side="right"), minlength=rounded.size + 1)
    common = int(rows.argmax())
    return common if 2 * rows[common] >= sample.size else None


def _row_limits(
    rounded: np.ndarray, row: int, bounds: np.ndarray
) -> tuple[np.float32 | None, np.float32 | None]:
    """The float32 limits of ``row``: its values are those ``x`` with ``lower <= x < upper``
    (float32 comparisons with the rounded-up knots decide ``x >= knot`` exactly); None for a
    limit no value in ``bounds`` (lowest, highest) crosses."""
    lower = rounded[row - 1] if row > 0 and rounded[row - 1] > bounds[0] else None
    upper = rounded[row] if row < rounded.size and rounded[row] <= bounds[1] else None
    return lower, upper


def _outside(
    chunk: np.ndarray, lower: np.float32 | None, upper: np.float32 | None
) -> np.ndarray | None:
    """Positions of the values of ``chunk`` outside [lower, upper) (None: no limit), or None if
    there are none."""
    if lower is None and upper is None:
        return None
    if lower is None:
        outside = chunk >= upper
    elif upper is None:
        outside = chunk < lower
    else:
        outside = chunk < lower
        outside |= chunk >= upper
    where = np.flatnonzero(outside)
    return where if where.size else None


_SAMPLE = 1 << 12
"""Values sampled to find the row most values share."""

_AMBIGUOUS = -1

TABLE_BITS = 14
"""At most 2**14 + 1 buckets: tables (128 KiB each) that stay in a core's cache; the values of the
few buckets holding a knot are compared with the knots themselves (0.2% of a phantom series')."""


class _BucketTable:
    """Segment numbers (how many knots lie at or below a value) by the value's leading bits.

    The float32 bit patterns, read as integers (negatives' magnitude bits flipped), ascend with the
    values; each bucket of patterns that holds no knot has one segment, the others are marked.
    """

    def __init__(self, bounds: np.ndarray, rounded: np.ndarray) -> None:
        """``bounds``: float32 (lowest, highest) value; ``rounded``: float32 knots, rounded up."""
        # Any value <= 0 may be -0.0, whose bit pattern is negative: use the signed keys.
        self.signed = bool(bounds[0] <= 0)
        low, high = (int(k) for k in self._keys(bounds))
        if self.signed:
            low = min(low, -1)  # the key of -0.0
        if bounds[1] == 0:
            high = max(high, 0)  # the key of 0.0 (the maximum may have come back as -0.0)
        self.shift = max(0, (high - low).bit_length() - TABLE_BITS)
        self.offset = low >> self.shift
        size = (high >> self.shift) - self.offset + 1
        # The first and the last key of each bucket -> their segments.
        first = (np.arange(size, dtype=np.int64) + self.offset) << self.shift
        last = first + (1 << self.shift) - 1
        knots = self._keys(rounded)
        knots[rounded == 0] = -1  # x >= 0.0 holds for x = -0.0 too: the key of -0.0
        first_segment = np.searchsorted(knots, np.maximum(first, low), side="right")
        last_segment = np.searchsorted(knots, np.minimum(last, high), side="right")
        segment = first_segment.astype(np.intp)
        segment[first_segment != last_segment] = _AMBIGUOUS
        self.segment = segment  # (B,) the segment of each bucket, or _AMBIGUOUS

    @staticmethod
    def _keys(values: np.ndarray) -> np.ndarray:
        """int64 keys ordered like the float32 ``values`` (negatives' magnitude bits flipped)."""
        keys = values.view(np.int32).astype(np.int64)
        return np.where(keys < 0, -(keys & 0x7FFFFFFF) - 1, keys)

    def buckets(self, chunk: np.ndarray) -> np.ndarray:
        """(n,) intp bucket numbers of a chunk of the values."""
        keys = chunk.view(np.int32)
        if self.signed:
            keys = keys ^ ((keys >> 31) & np.int32(0x7FFFFFFF))
        bucket = np.right_shift(keys, self.shift, dtype=np.intp)
        bucket -= self.offset
        return bucket
