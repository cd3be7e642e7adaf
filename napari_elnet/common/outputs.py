"""Where results may be written: never inside a user's input folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from napari_elnet.common.errors import ConfigurationError


def ensure_outside_inputs(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> Path:
    """Return ``output`` resolved, or raise ConfigurationError if it lies inside an input folder."""
    target = Path(output).resolve()
    for source in inputs:
        root = Path(source).resolve()
        folder = root if root.is_dir() else root.parent
        if target == root or target.is_relative_to(folder):
            raise ConfigurationError(
                f"refusing to write {target}: it is inside the input folder {folder} "
                "(napari-elnet never writes into input folders)"
            )
    return target
