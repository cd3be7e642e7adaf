"""Exact order statistics from a radix histogram: the same values as sorting and np.percentile."""

from __future__ import annotations

import numpy as np
import pytest

from napari_elnet.transforms.intensity import DEFAULT_PERCENTILES
from napari_elnet.transforms.order import HISTOGRAM_BITS, in_parts, numpy_percentiles, rank_index


def _volume(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """float32 volumes of the shapes of trouble: ties, signs, zeros of both signs, wide ranges."""
    if kind == "normal":
        values = rng.normal(100.0, 30.0, shape)
    elif kind == "ties":
        values = np.round(rng.gamma(2.0, 3.0, shape))
    elif kind == "constant":
        values = np.full(shape, 7.25)
    elif kind == "signed":
        values = rng.normal(0.0, 1.0, shape) * 1e3
    elif kind == "zeros":
        values = np.where(rng.random(shape) < 0.5, -0.0, 0.0) + np.round(rng.normal(size=shape))
    elif kind == "wide":
        values = np.exp(rng.uniform(-60.0, 60.0, shape)) * rng.choice([-1.0, 1.0], shape)
    else:  # "tiny": subnormal and near-subnormal magnitudes
        values = rng.normal(size=shape) * 1e-39
    return values.astype(np.float32)


KINDS = ["normal", "ties", "constant", "signed", "zeros", "wide", "tiny"]
SHAPES = [(1,), (1, 1, 1), (1, 7, 5), (3, 17, 11), (2, 64, 64)]


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_values_at_ranks_are_the_sorted_values(
    kind: str, shape: tuple[int, ...], workers: int
) -> None:
    rng = np.random.default_rng(len(kind) * 31 + len(shape))
    volume = _volume(kind, shape, rng)
    index = rank_index(volume, workers=workers)
    assert index is not None
    ordered = np.sort(volume, axis=None)
    n = ordered.size
    for value in (ordered[0], ordered[n // 2], ordered[-1], np.float32(-1e30)):
        assert index.count_at_most(value) == np.count_nonzero(volume <= value)
    # Scattered ranks (the table-lookup selection) and adjacent tail ranks (the value-range one).
    for ranks in (
        rng.integers(0, n, 9),
        [n - 1],
        [0],
        [max(0, n - 2), n - 1],
        [int(0.995 * (n - 1))],
    ):
        got = index.at(ranks)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, ordered[np.asarray(ranks)])


@pytest.mark.parametrize("workers", [1, 2])
def test_both_selections_are_used_and_agree(workers: int) -> None:
    """The tail of the values is one run of buckets (selected by comparing values), scattered
    ranks are not (selected by a table lookup): both give the sorted values."""
    rng = np.random.default_rng(7)
    volume = rng.gamma(2.0, 100.0, (4, 128, 128)).astype(np.float32)
    index = rank_index(volume, workers=workers)
    assert index is not None
    ordered = np.sort(volume, axis=None)
    n = ordered.size
    tail = np.array([int(0.995 * (n - 1)), int(0.995 * (n - 1)) + 1])
    spread = np.array([n // 10, n // 2, 9 * n // 10])
    for ranks, run in ((tail, True), (spread, False)):
        holding = np.unique(np.searchsorted(index.below, ranks, side="right") - 1)
        between = index.counts[holding[0] : holding[-1] + 1].sum()
        assert (between == index.counts[holding].sum()) == run
        np.testing.assert_array_equal(index.at(ranks), ordered[ranks])


@pytest.mark.parametrize("workers", [1, 2])
def test_bucket_count_is_bounded_and_buckets_ascend_with_values(workers: int) -> None:
    volume = _volume("wide", (2, 64, 64), np.random.default_rng(3))
    index = rank_index(volume, workers=workers)
    assert index is not None
    assert index.counts.size <= 2**HISTOGRAM_BITS + 1
    assert index.counts.sum() == volume.size
    order = np.argsort(volume, axis=None, kind="stable")
    assert np.all(np.diff(index.bucket[order]) >= 0)
    np.testing.assert_array_equal(
        index.counts, np.bincount(index.bucket, minlength=index.counts.size)
    )


_NON_FINITE_BITS = [0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF]
"""+inf, -inf, the quiet NaNs of both signs, the smallest NaN payload, the largest negative NaN."""


@pytest.mark.parametrize("bits", _NON_FINITE_BITS)
@pytest.mark.parametrize("others", ["positive", "signed", "zeros"])
def test_non_finite_values_have_no_index(bits: int, others: str) -> None:
    """Finiteness is read from the ordered keys' range: every NaN and infinity is caught, next to
    positive values, values of both signs and zeros of both signs."""
    volume = {
        "positive": np.ones((2, 4, 4), np.float32),
        "signed": np.linspace(-5.0, 5.0, 32, dtype=np.float32).reshape(2, 4, 4),
        "zeros": np.where(np.arange(32) % 2 == 0, -0.0, 0.0).astype(np.float32).reshape(2, 4, 4),
    }[others]
    volume.reshape(-1).view(np.uint32)[19] = bits
    assert not np.isfinite(volume).all()
    assert rank_index(volume) is None


def test_the_largest_finite_values_have_an_index() -> None:
    largest = np.finfo(np.float32).max
    volume = np.array([largest, -largest, 0.0, -0.0, 1e-45, -1e-45], np.float32)
    index = rank_index(volume)
    assert index is not None
    np.testing.assert_array_equal(index.at(range(volume.size)), np.sort(volume))


def test_ranks_outside_the_volume_are_rejected() -> None:
    index = rank_index(np.arange(10, dtype=np.float32))
    assert index is not None
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        index.at([10])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [1, 2, 3, 10, 1000, 30011])
def test_percentiles_equal_numpys_bit_for_bit(kind: str, size: int) -> None:
    rng = np.random.default_rng(size)
    values = _volume(kind, (size,), rng)
    index = rank_index(values)
    assert index is not None
    for percentiles in (
        list(DEFAULT_PERCENTILES),
        [1.0, 99.0],
        [0, 100, 50],
        list(rng.uniform(0.0, 100.0, 8)),
        [99.5],
    ):
        got = numpy_percentiles(index.at, index.size, percentiles)
        expected = np.percentile(values, percentiles)
        assert got.dtype == expected.dtype == np.float64
        np.testing.assert_array_equal(got, expected)


def test_clipped_index_answers_for_the_clipped_values() -> None:
    rng = np.random.default_rng(11)
    volume = rng.gamma(2.0, 100.0, (3, 50, 40)).astype(np.float32)
    index = rank_index(volume)
    assert index is not None
    ceiling = np.float32(np.percentile(volume, 99.5))
    clipped = np.minimum(volume, ceiling)
    capped = index.clipped(clipped)
    ordered = np.sort(clipped, axis=None)
    n = ordered.size
    for ranks in (np.concatenate([rng.integers(0, n, 20), [n - 1]]), [n - 2, n - 1], [n - 1]):
        np.testing.assert_array_equal(capped.at(ranks), ordered[np.asarray(ranks)])
    with pytest.raises(ValueError, match="5 clipped values"):
        index.clipped(clipped.reshape(-1)[:5])


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_in_parts_covers_the_range_once_in_order(workers: int) -> None:
    parts = in_parts(lambda part: list(range(10)[part]), 10, workers)
    assert [i for part in parts for i in part] == list(range(10))
    assert len(parts) == min(workers, 10)


@pytest.mark.parametrize("kind", KINDS)
def test_value_range_is_the_min_and_max(kind: str) -> None:
    volume = _volume(kind, (3, 17, 11), np.random.default_rng(len(kind)))
    index = rank_index(volume)
    assert index is not None
    assert index.value_range == (float(volume.min()), float(volume.max()))
    assert index.clipped(volume).value_range is None
