"""The restricted unpickler is bounded (issue 10): tiny hostile pickles get a clear refusal, not gigabytes.

Invariants, one test each:

1. A memo index far beyond the limit (the 9-byte 4 GB pickle) is refused before unpickling.
2. ``_reconstruct`` with a huge shape (the ~60-byte multi-GB array) is refused.
3. Object, string and structured dtypes are refused; numeric ones load.
4. A declared byte length beyond the bytes present is refused (nothing allocated for it).
5. MARK nesting beyond the limit is refused.
6. A FIFO is refused without blocking.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from napari_elnet.datasets.safe_pickle import (
    MAX_MEMO,
    MAX_NESTING,
    ArrayPickleError,
    UnsafePickleError,
    load_array_pickle,
)


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "v.pck"
    path.write_bytes(data)
    return path


def test_huge_memo_index_is_refused(tmp_path: Path) -> None:
    data = b"\x80\x02N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b"."  # LONG_BINPUT 4e9
    assert len(data) == 9
    with pytest.raises(
        ArrayPickleError, match=f"memo index 4294967280 is beyond the limit of {MAX_MEMO}"
    ):
        load_array_pickle(_write(tmp_path, data))


def test_reconstruct_with_a_huge_shape_is_refused(tmp_path: Path) -> None:
    array = np.zeros(3, dtype=np.uint8)
    data = pickle.dumps(array, protocol=2).replace(b"K\x00\x85", b"J\x00\x00\x00\x40\x85")
    assert b"J\x00\x00\x00\x40" in data  # shape (0,) -> (2**30,)
    with pytest.raises(UnsafePickleError, match="refusing _reconstruct of shape"):
        load_array_pickle(_write(tmp_path, data))


@pytest.mark.parametrize("dtype", [object, "U3", [("a", "i4")]])
def test_non_numeric_dtypes_are_refused(tmp_path: Path, dtype: object) -> None:
    array = np.zeros(2, dtype=dtype)
    with pytest.raises(UnsafePickleError, match="dtype"):
        load_array_pickle(_write(tmp_path, pickle.dumps(array, protocol=2)))


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint16, np.float32, np.complex64])
def test_numeric_dtypes_load(tmp_path: Path, dtype: type) -> None:
    array = np.arange(6).reshape(2, 3).astype(dtype)
    loaded = load_array_pickle(_write(tmp_path, pickle.dumps(array, protocol=4)))
    np.testing.assert_array_equal(loaded, array)


def test_declared_length_beyond_the_bytes_present_is_refused(tmp_path: Path) -> None:
    data = (
        b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc"
    )  # BINBYTES8 of 1 TiB, 3 bytes present
    with pytest.raises(ArrayPickleError, match="not a readable array pickle"):
        load_array_pickle(_write(tmp_path, data))


def test_nesting_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    data = b"\x80\x02" + b"(" * (MAX_NESTING + 1) + b"t" * (MAX_NESTING + 1) + b"."
    with pytest.raises(ArrayPickleError, match="nested deeper"):
        load_array_pickle(_write(tmp_path, data))


def test_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "v.pck"
    os.mkfifo(fifo)
    with pytest.raises(ArrayPickleError, match="named pipe"):
        load_array_pickle(fifo)
