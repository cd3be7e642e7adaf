"""The node's store: received instances as ``ROOT/<study>/<series>/<instance>.dcm``, written atomically.

Rules:

1. Folder and file names are the StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID, each checked
   against the DICOM UID syntax (digits and dots, at most 64 characters, no empty component), so no
   crafted UID can name ``..``, a separator or anything outside ``ROOT``.
2. An instance is first written to ``ROOT/.incoming/`` and then renamed into place: a reader (the
   worklist, a restart after ``kill -9``) never sees a partial file. Leftovers of ``.incoming`` are
   removed when the store is opened.
3. Hidden names (``.incoming``, ``.results``) are skipped by the worklist's discovery, so
   ``napari-elnet triage ROOT`` reads the same studies as the node.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from napari_elnet.common.errors import ConfigurationError

UID_MAX = 64
_LENIENT_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # leading zeros occur in the wild
INCOMING = ".incoming"
RESULTS = ".results"


class UidError(ConfigurationError):
    """A UID that cannot name a folder or file of the store."""


def check_uid(uid: object, what: str) -> str:
    """``uid`` as text when it is a syntactically valid UID, else UidError naming ``what``.

    Leading zeros inside a component are tolerated (some scanners write them); anything but digits
    and single dots between them is not.
    """
    text = str(uid or "").strip().rstrip("\x00").strip()
    if not text or len(text) > UID_MAX or not _LENIENT_UID.match(text):
        raise UidError(f"{what} {str(uid)[:80]!r} is not a valid UID (digits and dots, <= 64)")
    return text


class Store:
    """A folder of received instances (see the module docstring).

    Args:
        root: The store folder; created when missing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.incoming = self.root / INCOMING
        shutil.rmtree(self.incoming, ignore_errors=True)  # partial files of a killed run
        self.incoming.mkdir()

    def study_dir(self, study_uid: str) -> Path:
        """Folder of one study (checked UID)."""
        return self.root / check_uid(study_uid, "StudyInstanceUID")

    def results_dir(self, study_uid: str) -> Path:
        """Folder for the DICOM results made from one study (outside the study folder)."""
        return self.root / RESULTS / check_uid(study_uid, "StudyInstanceUID")

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where an instance lives; every part checked, and the result checked to lie in the store."""
        path = (
            self.study_dir(study_uid)
            / check_uid(series_uid, "SeriesInstanceUID")
            / f"{check_uid(sop_uid, 'SOPInstanceUID')}.dcm"
        )
        if not path.resolve().is_relative_to(self.root):  # belt and braces: symlinks in the store
            raise UidError(f"instance path {path} leaves the store {self.root}")
        return path

    def write(self, study_uid: str, series_uid: str, sop_uid: str, data: bytes) -> Path:
        """Write one instance's file bytes atomically; returns its path (replaced if it existed)."""
        target = self.instance_path(study_uid, series_uid, sop_uid)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="rx-", suffix=".part", dir=self.incoming)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())  # acknowledged instances survive a crash
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def studies(self) -> list[str]:
        """StudyInstanceUIDs with at least one stored instance, sorted."""
        found = []
        for entry in sorted(self.root.iterdir()):
            if (
                entry.name.startswith(".")
                or not entry.is_dir()
                or not _LENIENT_UID.match(entry.name)
            ):
                continue
            if any(entry.glob("*/*.dcm")):
                found.append(entry.name)
        return found

    def instances(self, study_uid: str) -> list[Path]:
        """The stored instance files of one study, sorted."""
        return sorted(self.study_dir(study_uid).glob("*/*.dcm"))

    def study_bytes(self, study_uid: str) -> int:
        """Bytes stored for one study."""
        return sum(p.stat().st_size for p in self.instances(study_uid))
