"""The KneeMRI layout (Stajduhar et al. 2017): ``metadata.csv`` and pickled ``.pck`` sagittal volumes.

Labels: ``aclDiagnosis`` is 0 healthy, 1 partially injured, 2 completely ruptured. With the default
``positive="injured"`` both 1 and 2 are positive (ACL injury, the paper's task, 25% positive);
``positive="ruptured"`` makes only 2 positive (partial tears then count as negative).
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path
from typing import Literal

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import Plane
from napari_elnet.datasets.base import Case, CaseDataset
from napari_elnet.datasets.safe_pickle import load_array_pickle

KneeMriPositive = Literal["injured", "ruptured"]
POSITIVE_DIAGNOSES: dict[str, frozenset[int]] = {
    "injured": frozenset({1, 2}),
    "ruptured": frozenset({2}),
}
METADATA = "metadata.csv"
TASKS: tuple[str, ...] = ("acl",)
PLANE: Plane = "sagittal"


def is_kneemri(root: Path) -> bool:
    """True when ``root`` holds a ``metadata.csv``."""
    return (root / METADATA).is_file()


def _volume_index(root: Path) -> dict[str, Path]:
    """File name -> path of every ``.pck`` under ``root`` (volumes may sit in sub-folders)."""
    index: dict[str, Path] = {}
    for path in sorted(root.rglob("*.pck")):
        index.setdefault(path.name, path)
    return index


def _diagnosis(value: str, path: Path, line: int) -> int:
    """aclDiagnosis as 0, 1 or 2; ConfigurationError naming file and line otherwise."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if number not in (0.0, 1.0, 2.0):
        raise ConfigurationError(
            f"{path}: line {line}: aclDiagnosis must be 0, 1 or 2, got {value!r}"
        )
    return int(number)


def read_kneemri(
    root: Path,
    task: str = "acl",
    plane: Plane = PLANE,
    positive: KneeMriPositive = "injured",
) -> CaseDataset:
    """The KneeMRI cases in metadata order, labelled by ``positive`` (see the module docstring).

    Raises:
        ConfigurationError: task is not ``acl``, plane not ``sagittal``, a metadata row is
            malformed, or a volume file is missing.
    """
    if task not in TASKS:
        raise ConfigurationError(f"KneeMRI only has ACL labels: task must be 'acl', got {task!r}")
    if plane != PLANE:
        raise ConfigurationError(f"KneeMRI only has sagittal series, got plane {plane!r}")
    if positive not in POSITIVE_DIAGNOSES:
        raise ConfigurationError(
            f"positive must be one of {tuple(POSITIVE_DIAGNOSES)}, got {positive!r}"
        )
    metadata = root / METADATA
    try:
        with metadata.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle, skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigurationError(f"{metadata}: cannot read ({exc})") from exc
    columns = set(rows[0]) if rows else set()
    if not {"aclDiagnosis", "volumeFilename"} <= columns:
        raise ConfigurationError(
            f"{metadata}: needs columns aclDiagnosis and volumeFilename, has {sorted(columns)}"
        )
    index = _volume_index(root)
    cases = []
    for line, row in enumerate(rows, start=2):
        name = (row["volumeFilename"] or "").strip()
        diagnosis = _diagnosis((row["aclDiagnosis"] or "").strip(), metadata, line)
        path = index.get(Path(name).name) if name else None
        if path is None:
            raise ConfigurationError(
                f"{metadata}: line {line}: volume {name!r} not found under {root}"
            )
        label = int(diagnosis in POSITIVE_DIAGNOSES[positive])
        cases.append(Case(Path(name).stem, label, path, partial(load_array_pickle, path)))
    if not cases:
        raise ConfigurationError(f"{metadata}: no cases")
    return CaseDataset(root, "kneemri", task, plane, None, tuple(cases))
