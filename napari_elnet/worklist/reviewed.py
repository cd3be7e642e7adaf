"""Reviewed marks of worklist studies, remembered in a small JSON file in the user's data folder.

The file (``reviewed.json``) maps a study key to the UTC time it was marked::

    {"format": "napari-elnet-reviewed", "version": 1, "reviewed": {"dicom-0123...": "2024-..."}}

Keys hold no patient data: a DICOM study is keyed by its id (a hash of the StudyInstanceUID, unique
across roots); a ``.npy`` study's id is root-relative (``train/0001``), so its key adds a hash of the
root folder. The folder is ``$NAPARI_ELNET_DATA_DIR`` when set, else the platform's user data folder
for ``napari-elnet`` (``platformdirs``). Every change re-reads the file before writing it atomically,
so two viewers marking studies do not undo each other's marks; an unreadable file is kept aside
(``reviewed.json.bad``) with a warning rather than silently overwritten.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from napari_elnet.common.atomic import write_text_atomic
from napari_elnet.worklist.discovery import StudyRef, uid_hash

FORMAT = "napari-elnet-reviewed"
VERSION = 1
FILE_NAME = "reviewed.json"
DATA_DIR_VARIABLE = "NAPARI_ELNET_DATA_DIR"
APP_NAME = "napari-elnet"

logger = logging.getLogger(__name__)


def default_data_dir() -> Path:
    """``$NAPARI_ELNET_DATA_DIR`` if set, else the user data folder of ``napari-elnet``."""
    override = os.environ.get(DATA_DIR_VARIABLE, "").strip()
    if override:
        return Path(override).expanduser()
    try:
        from platformdirs import user_data_dir
    except ImportError:  # platformdirs comes with napari; the core does not require it
        return Path.home() / ".local" / "share" / APP_NAME
    return Path(user_data_dir(APP_NAME, appauthor=False))


def mark_key(ref: StudyRef, root: str | os.PathLike[str]) -> str:
    """The key of a study's mark: its id, plus a hash of the root for root-relative ``.npy`` ids."""
    if ref.kind == "dicom":
        return ref.study_id
    return f"{ref.study_id}@{uid_hash(str(Path(root).resolve()), 12)}"


class ReviewedMarks:
    """The set of reviewed study keys, backed by ``<data_dir>/reviewed.json``.

    Args:
        data_dir: Folder of the file (default: :func:`default_data_dir`). Created on the first write.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        folder = Path(data_dir) if data_dir is not None else default_data_dir()
        self.path = folder / FILE_NAME
        self._marks: dict[str, str] = self._read()

    def __contains__(self, key: object) -> bool:
        return key in self._marks

    def __len__(self) -> int:
        return len(self._marks)

    def keys(self) -> set[str]:
        """The reviewed keys."""
        return set(self._marks)

    def reload(self) -> None:
        """Read the file again (marks made by another viewer appear)."""
        self._marks = self._read()

    def set(self, key: str, reviewed: bool) -> None:
        """Mark (or unmark) a study and write the file.

        Raises:
            OSError: The file cannot be written; the mark is still kept in memory.
        """
        marks = self._read()
        if reviewed:
            marks.setdefault(key, datetime.now(UTC).isoformat(timespec="seconds"))
        else:
            marks.pop(key, None)
        self._marks = marks
        self._write(marks)

    def _read(self) -> dict[str, str]:
        """The marks in the file ({} when there is none; a damaged file is moved aside)."""
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            marks = data["reviewed"]
            if not isinstance(marks, dict):
                raise ValueError('"reviewed" is not an object')
            return {str(k): str(v) for k, v in marks.items()}
        except (OSError, ValueError, KeyError) as exc:
            aside = self.path.with_name(self.path.name + ".bad")
            logger.warning(
                "reviewed marks %s cannot be read (%s); moved to %s", self.path, exc, aside
            )
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            return {}

    def _write(self, marks: dict[str, str]) -> None:
        """Write ``marks`` atomically (temporary file in the same folder, then rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "version": VERSION, "reviewed": marks}, indent=1)
        write_text_atomic(self.path, text + "\n")
