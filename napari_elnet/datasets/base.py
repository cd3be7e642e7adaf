"""The common data set interface: a sequence of labelled cases whose volumes load on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np

from napari_elnet.common.errors import ElnetError
from napari_elnet.common.series import Plane


@dataclass(frozen=True, eq=False)
class Case:
    """One labelled examination of a data set.

    Attributes:
        case_id: Identifier within the data set (e.g. ``0007`` or ``case_0003``).
        label: 1 for positive, 0 for negative, for the data set's task.
        source: File or folder the volume is read from (named in error messages).
        loader: Reads the volume; called by :meth:`volume`, never at construction.
    """

    case_id: str
    label: int
    source: Path
    loader: Callable[[], np.ndarray] = field(repr=False)

    def volume(self) -> np.ndarray:
        """The series of the data set's plane, (S, H, W) float32; read anew on every call.

        Raises:
            ElnetError: the file cannot be read or holds no (S, H, W) volume.
        """
        array = np.asarray(self.loader())
        if array.ndim != 3 or min(array.shape) < 1:
            raise ElnetError(f"{self.source}: expected a (S, H, W) volume, got shape {array.shape}")
        return array.astype(np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class CaseDataset(Sequence[Case]):
    """Labelled cases for one task and plane, read from one data folder (never written to).

    Attributes:
        root: The data folder.
        layout: ``mrnet``, ``dicom`` or ``kneemri``.
        task: The label the cases carry.
        plane: The plane whose series :meth:`Case.volume` returns.
        split: The split the cases come from (``train``/``valid`` for MRNet), or None for all.
        cases: The cases, in file order.
    """

    root: Path
    layout: str
    task: str
    plane: Plane
    split: str | None
    cases: tuple[Case, ...]

    @overload
    def __getitem__(self, index: int) -> Case: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Case]: ...
    def __getitem__(self, index: int | slice) -> Case | Sequence[Case]:
        return self.cases[index]

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 labels in case order."""
        return np.asarray([case.label for case in self.cases], dtype=np.int64)

    def describe(self) -> str:
        """One line: layout, task, plane, split and class counts."""
        positives = int(self.labels.sum())
        split = f" {self.split}" if self.split else ""
        return (
            f"{self.layout}{split} {self.task}/{self.plane}: {len(self)} cases "
            f"({positives} positive, {len(self) - positives} negative)"
        )


def subset(cases: Sequence[Case], indices: Sequence[int]) -> tuple[Case, ...]:
    """The cases at ``indices``, in that order."""
    return tuple(cases[int(i)] for i in indices)
