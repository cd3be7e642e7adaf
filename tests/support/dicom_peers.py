"""Real DICOM peers for the node tests: Orthanc as a child process on free loopback ports.

Helpers only (no tests). Orthanc runs with a temporary JSON configuration and storage, never as the
system service, and is stopped by its own PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
ORTHANC_AET = "ORTHANC"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_tool(name: str) -> str:
    """The path of a DICOM tool, or skip the test naming the package that provides it."""
    path = shutil.which(name) or (ORTHANC if name == "Orthanc" and Path(ORTHANC).exists() else None)
    if path is None:
        package = {"Orthanc": "orthanc"}.get(name, "dcmtk")
        pytest.skip(f"{name} not installed (apt-get install {package}; scripts/setup.sh does it)")
    return path


@dataclass
class Orthanc:
    """A running Orthanc: its ports, folder and process."""

    folder: Path
    http_port: int
    dicom_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        """A REST call; JSON in and out (``raw`` bytes are posted as they are)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=60) as response:
            text = response.read()
        return json.loads(text) if text else None

    def upload(self, files: list[Path]) -> str:
        """POST each file to /instances; returns the Orthanc id of their study."""
        study = ""
        for path in files:
            answer = self.request("POST", "/instances", raw=path.read_bytes())
            study = answer["ParentStudy"]
        return study

    def study_id(self, study_uid: str) -> str | None:
        """Orthanc's id of a StudyInstanceUID, or None."""
        found = self.request(
            "POST", "/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}
        )
        return found[0] if found else None

    def sop_classes(self, study_uid: str) -> list[str]:
        """SOPClassUID of each instance of a study (sorted; empty when Orthanc lacks the study)."""
        study = self.study_id(study_uid)
        if study is None:
            return []
        instances = self.request("GET", f"/studies/{study}/instances")
        return sorted(
            self.request("GET", f"/instances/{i['ID']}/simplified-tags")["SOPClassUID"]
            for i in instances
        )

    def modalities_in(self, study_uid: str) -> list[str]:
        """Modality of each series of a study (sorted)."""
        study = self.study_id(study_uid)
        if study is None:
            return []
        series = self.request("GET", f"/studies/{study}/series")
        return sorted(s["MainDicomTags"].get("Modality", "") for s in series)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_orthanc(folder: Path, modalities: dict[str, tuple[str, int]]) -> Orthanc:
    """Start Orthanc with storage in ``folder`` and the given DICOM modalities (id -> (AET, port)).

    Every modality may echo, store, find and get.
    """
    require_tool("Orthanc")
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "elnet-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {
            key: {
                "AET": aet,
                "Host": "127.0.0.1",
                "Port": port,
                "AllowEcho": True,
                "AllowFind": True,
                "AllowGet": True,
                "AllowMove": True,
                "AllowStore": True,
            }
            for key, (aet, port) in modalities.items()
        },
        "Plugins": [],
        "StableAge": 1,
        "HttpTimeout": 60,
        "DicomScuTimeout": 30,
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=1))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen(
        [ORTHANC, str(path)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    orthanc = Orthanc(folder, http_port, dicom_port, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"Orthanc exited with {process.returncode}; see {folder / 'orthanc.log'}"
            )
        try:
            orthanc.request("GET", "/system")
            return orthanc
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    orthanc.stop()
    raise RuntimeError(f"Orthanc did not answer within 30 s; see {folder / 'orthanc.log'}")


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate()`` until it returns something truthy (returned) or ``timeout`` s pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def dcmtk_env() -> dict[str, str]:
    """Environment for dcmtk tools (quiet, C locale)."""
    return {**os.environ, "LC_ALL": "C"}


PHANTOM_SLICES = 8
PHANTOM_MATRIX = 64


def phantom_cache_dir(request: Any, tmp_path_factory: Any) -> Path:
    """pytest's cache folder for the phantom (a temporary one when the cache plugin is off)."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return Path(tmp_path_factory.mktemp("phantom-cache"))
    return Path(cache.mkdir("napari-elnet-node"))


def phantom_template(cache_dir: Path) -> list[Path]:
    """Files of one small phantom knee study (3 planes x 8 slices of 64x64), made once per cache.

    The phantom takes seconds to simulate, so the files are kept in ``cache_dir`` (pytest's cache)
    under a key that changes with the phantom's source code.
    """
    import hashlib

    import napari_elnet.phantom as phantom_package

    sources = sorted(Path(phantom_package.__file__).parent.glob("*.py"))
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    folder = cache_dir / f"phantom-{PHANTOM_SLICES}x{PHANTOM_MATRIX}-{key}"
    files = sorted(folder.rglob("*.dcm"))
    if len(files) == 3 * PHANTOM_SLICES:
        return files
    from napari_elnet.phantom.study import PhantomConfig
    from napari_elnet.phantom.writers import studies, write_dicom_study

    config = PhantomConfig(
        slices=(PHANTOM_SLICES, PHANTOM_SLICES), matrix=(PHANTOM_MATRIX, PHANTOM_MATRIX)
    )
    shutil.rmtree(folder, ignore_errors=True)
    write_dicom_study(next(studies(1, 7, config)), folder)
    return sorted(folder.rglob("*.dcm"))


def clone_study(template: list[Path], folder: Path, accession: str) -> tuple[str, list[Path]]:
    """A copy of a study with new Study, Series, SOP Instance and Frame of Reference UIDs.

    Returns:
        The new StudyInstanceUID and the files written under ``folder``.
    """
    import pydicom
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    frame_uid = generate_uid()
    series_uids: dict[str, str] = {}
    files = []
    for index, path in enumerate(template):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uids.setdefault(str(ds.SeriesInstanceUID), generate_uid())
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "FrameOfReferenceUID" in ds:
            ds.FrameOfReferenceUID = frame_uid
        ds.AccessionNumber = accession
        target = folder / f"{path.parent.name}_{index:03d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        files.append(target)
    return study_uid, files


def storescu(port: int, folder: Path, called_ae: str = "ELNET") -> subprocess.Popen[str]:
    """dcmtk's storescu sending every file under ``folder`` to ``called_ae`` on a loopback port."""
    tool = require_tool("storescu")
    return subprocess.Popen(
        [tool, "-aec", called_ae, "-to", "20", "+sd", "+r", "127.0.0.1", str(port), str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dcmtk_env(),
    )  # fmt: skip
