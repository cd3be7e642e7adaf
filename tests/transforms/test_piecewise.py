"""np.interp on float32 volumes: bit for bit (interp_float32) and in float32 (interp_single)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_elnet.transforms import piecewise
from napari_elnet.transforms.piecewise import CHUNK, interp_float32, interp_single


def _reference(values: np.ndarray, knots: np.ndarray, heights: np.ndarray) -> np.ndarray:
    return np.interp(values, knots, heights).astype(np.float32)


def _case(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 values, float64 knots, float64 heights) of the shapes of trouble."""
    n = int(rng.integers(1, 5000))
    if kind == "landmarks":  # as map_to_standard builds them: volume min, percentiles, volume max
        values = rng.gamma(2.0, 100.0, n).astype(np.float32)
        inner = np.percentile(values, [1, 10, 30, 50, 70, 90, 99])
        inner = np.maximum.accumulate(inner + np.arange(inner.size) * 1e-6 * (inner[-1] - inner[0]))
        knots = np.unique(np.concatenate([[values.min()], inner, [values.max()]]))
    elif kind == "on_knots":  # many values exactly at knots, knots exactly float32
        values = np.round(rng.normal(0.0, 4.0, n)).astype(np.float32)
        knots = np.unique(rng.choice(values, 6).astype(np.float64))
    elif kind == "between":  # knots between neighbouring float32 values
        values = rng.uniform(1.0, 2.0, n).astype(np.float32)
        knots = np.sort(rng.uniform(0.9, 2.1, 9)) + 1e-9
    elif kind == "signed_zeros":
        values = (np.where(rng.random(n) < 0.5, -0.0, 0.0) + np.round(rng.normal(size=n))).astype(
            np.float32
        )
        knots = np.array([-2.0, -0.0, 1.0, 3.0]) if rng.random() < 0.5 else np.array([-1.0, 0.0])
    else:  # "outside": values beyond both end knots
        values = rng.normal(0.0, 100.0, n).astype(np.float32)
        knots = np.sort(rng.normal(0.0, 10.0, 5))
    heights = np.cumsum(rng.random(knots.size)) - rng.random() * 2.0
    return values, knots, heights


@pytest.mark.parametrize("kind", ["landmarks", "on_knots", "between", "signed_zeros", "outside"])
@pytest.mark.parametrize("seed", range(8))
def test_equals_numpy_interp_bit_for_bit(kind: str, seed: int) -> None:
    values, knots, heights = _case(kind, np.random.default_rng(seed))
    assert knots.size >= 2
    got = interp_float32(values, knots, heights)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _reference(values, knots, heights))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_chunks_and_threads_do_not_change_values(workers: int) -> None:
    rng = np.random.default_rng(5)
    values = rng.gamma(2.0, 100.0, (3, CHUNK // 100 + 7, 100)).astype(np.float32)  # 3+ chunks
    knots = np.concatenate(
        [[values.min()], np.percentile(values, [5, 50, 95]) + 1e-4, [values.max()]]
    )
    heights = np.array([-0.3, 0.0, 0.4, 1.0, 1.7])
    got = interp_float32(values, knots, heights, workers=workers)
    assert got.shape == values.shape
    np.testing.assert_array_equal(got, _reference(values, knots, heights))


def test_the_fast_path_does_not_call_numpy_interp(monkeypatch: pytest.MonkeyPatch) -> None:
    values, knots, heights = _case("landmarks", np.random.default_rng(1))
    expected = _reference(values, knots, heights)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("np.interp called on the fast path")

    monkeypatch.setattr(np, "interp", forbidden)
    np.testing.assert_array_equal(interp_float32(values, knots, heights), expected)


@pytest.mark.parametrize(
    ("values", "knots"),
    [
        (np.array([1.0, np.nan, 3.0], np.float32), np.array([0.0, 2.0, 4.0])),
        (np.array([1.0, np.inf, -np.inf], np.float32), np.array([0.0, 2.0, 4.0])),
        (np.array([1.0, 2.0, 3.0], np.float64), np.array([0.0, 2.0, 4.0])),  # not float32
        (np.array([1.0, 2.0, 3.0], np.float32), np.array([0.0, 2.0, 2.0, 4.0])),  # repeated knot
        (np.array([1.0, 2.0, 3.0], np.float32), np.array([0.0, np.inf])),
        (np.array([1.0, 2.0, 3.0], np.float32), np.array([-1e300, 0.0, 1e300])),  # beyond float32
        (np.array([], np.float32), np.array([0.0, 1.0])),
    ],
)
def test_outside_the_fast_path_numpy_decides(
    values: np.ndarray, knots: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    heights = np.linspace(0.0, 1.0, knots.size)
    expected = _reference(values, knots, heights)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bucket table was built for a volume numpy should handle")

    monkeypatch.setattr(piecewise, "_BucketTable", forbidden)
    np.testing.assert_array_equal(interp_float32(values, knots, heights), expected)


def _crowded(row: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values of which most share one row of the knots (``row``: "below" the first knot, "inner",
    "above" the last, "zero" around knots at 0.0 with values of both zeros' signs, or "none"),
    with values at, just below and just above every knot."""
    knots = np.array([-3.0, -1.0 + 1e-9, 0.0, 2.5, 7.0 + 1e-9, 11.0])
    centre = {"below": -8.0, "inner": 4.5, "above": 20.0, "zero": 0.0, "none": 4.0}[row]
    spread = 12.0 if row == "none" else 0.6
    values = rng.normal(centre, spread, 3 * CHUNK // 2)
    if row == "zero":
        values = np.where(rng.random(values.size) < 0.5, -0.0, 0.0) * (values > 0)
        values[: values.size // 4] = rng.normal(0.0, 5.0, values.size // 4)
    near = knots.astype(np.float32)
    edges = np.concatenate([near, np.nextafter(near, -np.inf), np.nextafter(near, np.inf)])
    values[rng.integers(0, values.size, 3 * edges.size)] = np.tile(edges, 3)
    heights = np.array([0.3, -0.1, 0.0, 0.4, 1.0, 1.7])
    return values.astype(np.float32), knots, heights


@pytest.mark.parametrize("row", ["below", "inner", "above", "zero", "none"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_row_most_values_share_gives_numpys_values(
    row: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most values in one row take that row's numbers as scalars, the others the bucket table;
    both give np.interp's values, bit for bit (signed zeros compared by their bits)."""
    values, knots, heights = _crowded(row, np.random.default_rng(len(row)))
    calls: list[int] = []
    limits = piecewise._row_limits

    def counted(
        rounded: np.ndarray, row: int, bounds: np.ndarray
    ) -> tuple[np.float32 | None, np.float32 | None]:
        calls.append(row)
        return limits(rounded, row, bounds)

    monkeypatch.setattr(piecewise, "_row_limits", counted)
    got = interp_float32(values, knots, heights, workers=workers)
    expected = _reference(values, knots, heights)
    np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))
    common = {"below": 0, "inner": 4, "above": 6, "zero": 3, "none": None}[row]
    assert set(calls) == (set() if common is None else {common})


@pytest.mark.parametrize("row", [0, 1, 3, 6])
def test_values_outside_a_row_are_those_with_other_knot_counts(row: int) -> None:
    """A value is in row r when exactly r knots (float64) lie at or below it, as np.interp counts;
    the float32 comparisons with the rounded-up knots must pick out exactly the others, and a
    limit beyond the values' range is not compared at all."""
    values, knots, _ = _crowded("none", np.random.default_rng(row))
    values = np.concatenate([values, np.array([-0.0, 0.0, -0.0], np.float32)])  # a knot is 0.0
    rounded = knots.astype(np.float32)
    above = rounded.astype(np.float64) < knots
    rounded[above] = np.nextafter(rounded[above], np.float32(np.inf))
    rows = np.searchsorted(knots, values.astype(np.float64), side="right")
    for span in (values, values[(rows >= row - 1) & (rows <= row)], values[rows == row]):
        bounds = np.array([span.min(), span.max()], np.float32)
        lower, upper = piecewise._row_limits(rounded, row, bounds)
        assert (lower is None) == (row == 0 or not (span < rounded[row - 1]).any())
        assert (upper is None) == (row == knots.size or not (span >= rounded[row]).any())
        expected = np.flatnonzero(np.searchsorted(knots, span.astype(np.float64), "right") != row)
        got = piecewise._outside(span, lower, upper)
        if expected.size:
            assert got is not None
            np.testing.assert_array_equal(got, expected)
        else:
            assert got is None


def _single_bound(values: np.ndarray, knots: np.ndarray, heights: np.ndarray) -> float:
    """A few float32 roundings of the terms of ``slope * (x - x_j) + y_j`` (x, the knots, the
    slopes and the heights each rounded to float32, then three operations)."""
    slopes = np.diff(heights) / np.diff(knots)
    reach = max(float(np.abs(values).max(initial=0.0)), float(np.abs(knots).max()))
    scale = float(np.abs(heights).max()) + float(np.abs(slopes).max()) * 2 * reach
    return 4 * float(np.finfo(np.float32).eps) * scale


@pytest.mark.parametrize("kind", ["landmarks", "on_knots", "between", "signed_zeros", "outside"])
@pytest.mark.parametrize("seed", range(8))
def test_single_is_numpy_interp_within_float32_rounding(kind: str, seed: int) -> None:
    values, knots, heights = _case(kind, np.random.default_rng(seed))
    got = interp_single(values, knots, heights)
    assert got.dtype == np.float32
    expected = _reference(values, knots, heights)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_single_bound(values, knots, heights))


@pytest.mark.parametrize("row", ["below", "inner", "above", "zero", "none"])
@pytest.mark.parametrize("workers", [1, 2])
def test_single_takes_numpys_segments(row: str, workers: int) -> None:
    """The rows (common, table, and the knots' own buckets) are interp_float32's: a value at a
    float32 knot gets that knot's height rounded to float32, the others stay within rounding."""
    values, knots, heights = _crowded(row, np.random.default_rng(len(row)))
    got = interp_single(values, knots, heights, workers=workers)
    expected = _reference(values, knots, heights)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_single_bound(values, knots, heights))
    exact = knots.astype(np.float32).astype(np.float64) == knots
    for knot, height in zip(knots[exact], heights[exact], strict=True):
        at = values == np.float32(knot)
        assert at.any()
        assert (got[at] == np.float32(height)).all()


def test_single_is_one_pass_cheaper_and_equal_for_float32_exact_terms() -> None:
    """With knots, slopes and heights exact in float32 and exact arithmetic (small integers and
    halves), float32 and float64 give the same bits."""
    values = np.arange(-40, 41, dtype=np.float32) / 4
    knots = np.array([-8.0, -2.0, 0.0, 4.0, 6.0])
    heights = np.array([-3.0, 0.0, 0.5, 1.5, 2.5])
    np.testing.assert_array_equal(
        interp_single(values, knots, heights), _reference(values, knots, heights)
    )


def test_single_outside_the_fast_path_is_numpys() -> None:
    values = np.array([1.0, np.nan, 3.0], np.float32)
    knots, heights = np.array([0.0, 2.0, 4.0]), np.array([0.0, 0.25, 1.0])
    np.testing.assert_array_equal(
        interp_single(values, knots, heights), _reference(values, knots, heights)
    )
