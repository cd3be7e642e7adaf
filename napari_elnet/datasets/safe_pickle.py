"""Loading pickled NumPy arrays (KneeMRI ``.pck``) without letting the file run code.

A pickle names the callables that rebuild its objects; :class:`NumpyArrayUnpickler` resolves only
the handful NumPy uses to rebuild an ``ndarray`` and refuses every other name, so a crafted file
that asks for ``os.system`` or ``builtins.eval`` raises :class:`UnsafePickleError` instead.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # NumPy >= 2
    from numpy._core import multiarray, numeric
except ImportError:  # NumPy 1.26
    from numpy.core import multiarray, numeric  # type: ignore[no-redef]

from napari_elnet.common.errors import ElnetError


class UnsafePickleError(ElnetError):
    """A pickle asked for something other than NumPy array reconstruction."""


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode`` (how protocol <= 2 pickles carry bytes): latin-1 only."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") != "latin1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    (module, name): value
    for prefix in ("numpy.core", "numpy._core")
    for module, name, value in (
        (f"{prefix}.multiarray", "_reconstruct", multiarray._reconstruct),
        (f"{prefix}.multiarray", "scalar", multiarray.scalar),
        (f"{prefix}.numeric", "_frombuffer", numeric._frombuffer),  # type: ignore[attr-defined]
    )
} | {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
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


def load_array_pickle(path: Path) -> np.ndarray:
    """The NumPy array pickled in ``path`` (Python 2 pickles included).

    Raises:
        UnsafePickleError: the pickle names anything but NumPy array reconstruction.
        ElnetError: the file is unreadable, not a pickle, or holds no ndarray.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ElnetError(f"{path}: cannot read volume ({exc.strerror or exc})") from exc
    try:
        value = NumpyArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except Exception as exc:  # pickle raises many types for corrupt data
        raise ElnetError(f"{path}: not a readable array pickle ({type(exc).__name__})") from exc
    if not isinstance(value, np.ndarray):
        raise ElnetError(f"{path}: the pickle holds a {type(value).__name__}, not an array")
    return value
