"""napari reader for knee MRI studies: DICOM folders or files and MRNet .npy volumes."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from napari_elnet.common.errors import ElnetWarning
from napari_elnet.plugin.layers import LayerDataTuple, study_layers

PathOrPaths = str | os.PathLike | list[str | os.PathLike]
ReaderFunction = Callable[[PathOrPaths], list[LayerDataTuple]]


def get_reader(path: PathOrPaths) -> ReaderFunction | None:
    """Return :func:`read_study_layers` when every path looks like a study; never raises."""
    from napari_elnet.io import is_study_path

    paths = path if isinstance(path, list) else [path]
    try:
        ok = bool(paths) and all(is_study_path(p) for p in paths)
    except Exception:  # a reader check must never raise into napari
        return None
    return read_study_layers if ok else None


def read_study_layers(path: PathOrPaths) -> list[LayerDataTuple]:
    """One image layer per series of the study (or studies) at ``path``, and the heatmap layers of
    napari-elnet DICOM results stored in the study folder (parametric maps and report).

    A file that cannot be read becomes a warning naming the file (napari shows it as a
    notification); the rest of the study still loads. A path with no usable series at all becomes
    a warning too, and yields no layers.
    """
    from napari_elnet.io import read_study
    from napari_elnet.io.study import NOTHING_FOUND
    from napari_elnet.plugin.dicom_results import saved_result_layers

    paths = path if isinstance(path, list) else [path]
    layers: list[LayerDataTuple] = []
    for item in paths:
        try:
            scan = read_study(item)
        except Exception as exc:  # bad input must never crash napari
            warnings.warn(f"ELNet: {item}: {exc}", ElnetWarning, stacklevel=2)
            continue
        for problem in scan.problems:
            warnings.warn(
                f"ELNet: skipped {problem.path}: {problem.reason}", ElnetWarning, stacklevel=2
            )
        if not scan.series:
            why = "" if scan.problems else f" ({scan.nothing_read(NOTHING_FOUND)})"  # else named
            warnings.warn(
                f"ELNet: {Path(item)}: no usable image series{why}", ElnetWarning, stacklevel=2
            )
        layers += study_layers(list(scan.series))
        layers += saved_result_layers(item, scan.series)  # napari-elnet DICOM results in the folder
    return layers
