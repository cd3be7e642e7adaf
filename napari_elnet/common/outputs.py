"""Where results may be written: never inside a user's input folders, and only where writable."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from napari_elnet.common.errors import ConfigurationError


def ensure_outside_inputs(
    output: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    folder: bool | None = None,
) -> Path:
    """Return ``output`` resolved, refused inside an input folder or where it cannot be written.

    Called before any work is done, so that a run is not lost to an output it cannot write.

    Args:
        output: The file or folder to write.
        inputs: The command's input files and folders (an input file's folder counts as input).
        folder: True when ``output`` is a folder to write into, False when it is a file, None
            when either may stand there (see :func:`ensure_writable`).

    Raises:
        ConfigurationError: ``output`` lies inside an input folder, or cannot be written (the
            message names the path and the reason).
    """
    target = Path(output).resolve()
    for source in inputs:
        root = Path(source).resolve()
        place = root if root.is_dir() else root.parent
        if target == root or target.is_relative_to(place):
            raise ConfigurationError(
                f"refusing to write {target}: it is inside the input folder {place} "
                "(napari-elnet never writes into input folders)"
            )
    return ensure_writable(target, folder)


def ensure_writable(output: str | os.PathLike, folder: bool | None = None) -> Path:
    """Return ``output`` resolved if it can be written, else raise a ConfigurationError naming why.

    Missing folders on the way count as writable when the nearest existing one is a writable
    folder (they are created on writing). An existing ``output`` must be a folder when ``folder``
    is True, a file when False (either when None); a folder must be writable, and so must an
    existing file and the folder that holds it.

    Raises:
        ConfigurationError: a file stands where a folder is needed (on the way or at ``output``),
            a folder where a file is needed, or the user may not write there.
    """
    target = Path(output).resolve()
    try:
        exists = target.exists()
        if exists and folder is True and not target.is_dir():
            raise ConfigurationError(f"cannot write {target}: it is a file, not a folder")
        if exists and folder is False and target.is_dir():
            raise ConfigurationError(f"cannot write {target}: it is a folder, not a file")
        place = target if exists and target.is_dir() else target.parent
        while not place.exists():
            place = place.parent
        if not place.is_dir():
            raise ConfigurationError(f"cannot write {target}: {place} is a file, not a folder")
    except OSError as exc:  # e.g. a folder on the way that may not be searched
        raise ConfigurationError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if not os.access(place, os.W_OK | os.X_OK):
        raise ConfigurationError(f"cannot write {target}: no permission to write in {place}")
    if exists and not target.is_dir() and not os.access(target, os.W_OK):
        raise ConfigurationError(f"cannot write {target}: the file is read-only")
    return target
