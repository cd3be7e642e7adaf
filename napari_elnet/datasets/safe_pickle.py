"""Loading pickled NumPy arrays (KneeMRI ``.pck``) without letting the file run code.

A pickle names the callables that rebuild its objects; :class:`NumpyArrayUnpickler` resolves only
the handful NumPy uses to rebuild an ``ndarray`` and refuses every other name, so a crafted file
that asks for ``os.system`` or ``builtins.eval`` raises :class:`UnsafePickleError` instead.

It is also bounded, so a small hostile file cannot make it allocate gigabytes:

- Before anything is built, the opcodes are scanned (``pickletools.genops``, which reads declared
  lengths against the bytes present): at most ``MAX_OPCODES`` opcodes, memo indices below
  ``MAX_MEMO``, ``MARK`` nesting at most ``MAX_NESTING``, no out-of-band buffers.
- ``_reconstruct`` may only create the empty placeholder NumPy pickles use (at most one element); the
  data comes from ``__setstate__``/``_frombuffer``, which check it against the declared shape.
- Only numeric dtypes (bool, integers, floats, complex) may be named; the result must be a numeric
  ``ndarray``.

Every refusal is an :class:`ArrayPickleError` (``UnsafePickleError`` for names that are not allowed).
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
from pathlib import Path
from typing import Any, cast

import numpy as np

try:  # NumPy >= 2
    from numpy._core import multiarray, numeric
except ImportError:  # NumPy 1.26
    from numpy.core import multiarray, numeric  # type: ignore[no-redef]

from napari_elnet.common.errors import ElnetError
from napari_elnet.io.files import read_regular_file

MAX_OPCODES = 100_000
MAX_MEMO = 10_000
MAX_NESTING = 64
MAX_FILE_BYTES = 4 * 2**30
_NUMERIC_KINDS = frozenset("biufc")
_MEMO_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})


class ArrayPickleError(ElnetError):
    """An array pickle that cannot be loaded (corrupt, over a limit, or not a numeric array)."""


class UnsafePickleError(ArrayPickleError):
    """A pickle asked for something other than NumPy array reconstruction."""


def _numeric_dtype(*args: Any, **kwargs: Any) -> np.dtype:
    """``np.dtype`` restricted to numeric kinds (no object, string, void or structured dtypes)."""
    try:
        dtype = np.dtype(*args, **kwargs)
    except Exception as exc:  # numpy raises TypeError/ValueError/... for nonsense specs
        raise UnsafePickleError(f"invalid dtype {str(args)[:60]}: {type(exc).__name__}") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
        raise UnsafePickleError(f"refusing dtype {dtype}: only numeric arrays may be unpickled")
    return dtype


def _placeholder(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``multiarray._reconstruct`` limited to the empty placeholder NumPy pickles rebuild from."""
    if subtype is not np.ndarray:
        raise UnsafePickleError("refusing _reconstruct of anything but numpy.ndarray")
    try:
        size = math.prod(int(n) for n in shape)
    except Exception:  # a shape that is not a sequence of integers
        raise UnsafePickleError(f"invalid placeholder shape {str(shape)[:60]}") from None
    if size > 1:
        raise UnsafePickleError(
            f"refusing _reconstruct of shape {str(shape)[:60]}: data must follow"
        )
    return cast(np.ndarray, multiarray._reconstruct(np.ndarray, shape, dtype))


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode`` (how protocol <= 2 pickles carry bytes): latin-1 only."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") != "latin1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    (module, name): value
    for prefix in ("numpy.core", "numpy._core")
    for module, name, value in (
        (f"{prefix}.multiarray", "_reconstruct", _placeholder),
        (f"{prefix}.multiarray", "scalar", multiarray.scalar),
        (f"{prefix}.numeric", "_frombuffer", numeric._frombuffer),  # type: ignore[attr-defined]
    )
} | {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numeric_dtype,
    ("_codecs", "encode"): _latin1_bytes,
}
"""(module, name) -> object: the only globals a volume pickle may name (NumPy 1 and 2 spellings).

``_codecs.encode`` is how Python 3 protocol 0-2 pickles store the array's bytes; it resolves to a
latin-1-only stand-in, never to the real codec machinery.
"""


class NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds NumPy arrays and refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed NumPy object for ``module.name``; UnsafePickleError for anything else."""
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: only NumPy arrays may be unpickled"
            ) from None


def check_opcodes(data: bytes) -> None:
    """Scan a pickle's opcodes without building anything; refuse what breaks the limits.

    Raises:
        ArrayPickleError: corrupt (a declared length beyond the bytes present, an unknown opcode,
            no STOP), more than ``MAX_OPCODES`` opcodes, a memo index of ``MAX_MEMO`` or more,
            ``MARK`` nesting deeper than ``MAX_NESTING``, or an out-of-band buffer.
    """
    depth = 0
    memoized = 0
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(io.BytesIO(data)), start=1):
            if count > MAX_OPCODES:
                raise ArrayPickleError(f"more than {MAX_OPCODES} pickle opcodes")
            name = opcode.name
            if name in _MEMO_OPCODES and isinstance(arg, int) and not 0 <= arg < MAX_MEMO:
                raise ArrayPickleError(f"memo index {arg} is beyond the limit of {MAX_MEMO}")
            if name == "MEMOIZE":
                memoized += 1
                if memoized >= MAX_MEMO:
                    raise ArrayPickleError(f"more than {MAX_MEMO} memoized objects")
            if name == "MARK":
                depth += 1
                if depth > MAX_NESTING:
                    raise ArrayPickleError(f"nested deeper than {MAX_NESTING} levels")
            elif pickletools.markobject in opcode.stack_before:
                depth = max(0, depth - 1)
            if name in ("NEXT_BUFFER", "READONLY_BUFFER"):
                raise ArrayPickleError("out-of-band buffers are not supported")
    except ArrayPickleError:
        raise
    except Exception as exc:  # genops raises ValueError and others for corrupt streams
        raise ArrayPickleError(f"not a readable array pickle ({str(exc)[:120]})") from None


def load_array_pickle(path: Path) -> np.ndarray:
    """The NumPy array pickled in ``path`` (Python 2 pickles included).

    Raises:
        UnsafePickleError: the pickle names anything but NumPy array reconstruction, or a dtype
            that is not numeric.
        ArrayPickleError: the file is unreadable, not a regular file, not a pickle, over a limit
            (see :func:`check_opcodes`), or holds no numeric ndarray. Messages start with the path.
    """
    try:
        data = read_regular_file(path, max_bytes=MAX_FILE_BYTES)
    except OSError as exc:
        raise ArrayPickleError(f"{path}: cannot read volume ({exc.strerror or exc})") from exc
    try:
        check_opcodes(data)
        value = NumpyArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except ArrayPickleError as exc:
        raise ArrayPickleError(f"{path}: {exc}") from None
    except Exception as exc:  # pickle raises many types for corrupt data
        raise ArrayPickleError(
            f"{path}: not a readable array pickle ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if not isinstance(value, np.ndarray):
        raise ArrayPickleError(f"{path}: the pickle holds a {type(value).__name__}, not an array")
    if value.dtype.kind not in _NUMERIC_KINDS or value.dtype.hasobject:
        raise UnsafePickleError(f"{path}: array of dtype {value.dtype} is not numeric")
    return value
