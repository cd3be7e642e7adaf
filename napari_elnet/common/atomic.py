"""Atomic file writes: readers see the old file or the new one, never a half-written one.

The data go to a temporary file in the target's folder (same file system, so the rename is atomic),
are flushed to disk (``fsync``), and the temporary file replaces the target (``os.replace``). On
any failure the temporary file is removed and the target is left as it was. The new file gets the
permissions a plain ``open(path, "w")`` would give (``0o666`` less the umask).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically; the folder must exist. Returns the path."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """:func:`write_atomic` of ``text`` encoded with ``encoding`` (no newline translation)."""
    return write_atomic(path, text.encode(encoding))


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry of the rename where the platform allows it (POSIX)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
