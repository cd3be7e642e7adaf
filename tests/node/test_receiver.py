"""The receiver against dcmtk's clients and hostile input: every association gets an answer or an
abort, and the node keeps serving the others."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pynetdicom import AE, build_context
from support.dicom_peers import clone_study, dcmtk_env, require_tool, storescu, wait_for

from napari_elnet.node.config import NodeConfig
from napari_elnet.node.receiver import Received, Receiver, Refused
from napari_elnet.node.store import INCOMING, Store

AET = "ELNET"


class Recorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused: list[Refused] = []
        self.lock = threading.Lock()

    def instance(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def refuse(self, item: Refused) -> None:
        with self.lock:
            self.refused.append(item)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def start(tmp_path: Path, recorder: Recorder, **settings: object) -> Receiver:
    config = NodeConfig(store=tmp_path / "store", port=0, network_timeout=5.0, **settings)  # type: ignore[arg-type]
    receiver = Receiver(config, Store(config.store), recorder.instance, recorder.refuse)
    receiver.start()
    return receiver


@pytest.fixture
def node(tmp_path: Path, recorder: Recorder) -> Iterator[Receiver]:
    receiver = start(tmp_path, recorder)
    yield receiver
    receiver.stop()


def echo(port: int, calling: str = "ECHOSCU") -> subprocess.CompletedProcess[str]:
    tool = require_tool("echoscu")
    return subprocess.run(
        [tool, "-aet", calling, "-aec", AET, "-to", "10", "127.0.0.1", str(port)],
        capture_output=True, text=True, timeout=30, env=dcmtk_env(),
    )  # fmt: skip


def stored_files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*.dcm") if INCOMING not in p.parts)


def test_echoscu(node: Receiver) -> None:
    result = echo(node.port)
    assert result.returncode == 0, result.stderr


def test_allow_list_rejects_other_calling_titles(tmp_path: Path, recorder: Recorder) -> None:
    receiver = start(tmp_path, recorder, allow=("SCANNER1",))
    try:
        refused = echo(receiver.port, "INTRUDER")
        assert refused.returncode != 0
        assert "Association Rejected" in refused.stderr or "rejected" in refused.stderr.lower()
        allowed = echo(receiver.port, "SCANNER1")
        assert allowed.returncode == 0, allowed.stderr
    finally:
        receiver.stop()


def test_three_concurrent_storescu(
    node: Receiver, recorder: Recorder, tmp_path: Path, phantom_files: list[Path]
) -> None:
    studies = [clone_study(phantom_files, tmp_path / f"src{i}", f"ACC{i}") for i in range(3)]
    senders = [storescu(node.port, tmp_path / f"src{i}") for i in range(3)]
    for sender in senders:
        output, _ = sender.communicate(timeout=60)
        assert sender.returncode == 0, output
    files = stored_files(node.store.root)
    assert len(files) == 3 * len(phantom_files)
    assert sorted(node.store.studies()) == sorted(uid for uid, _ in studies)
    assert len(recorder.received) == len(files)
    for path in files:  # each file is the whole instance, filed under its own UIDs
        ds = pydicom.dcmread(path)
        assert path.stem == ds.SOPInstanceUID
        assert path.parent.name == ds.SeriesInstanceUID
        assert path.parent.parent.name == ds.StudyInstanceUID
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    assert list((node.store.root / INCOMING).iterdir()) == []


def raw_exchange(port: int, payload: bytes) -> bytes:
    """Send raw bytes, return what the node answers before it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


def test_garbage_bytes_are_aborted_and_others_served(node: Receiver) -> None:
    answer = raw_exchange(node.port, bytes(range(256)) * 4)  # PDU type 0x00: not a PDU
    assert answer == b"" or answer[0] == 0x07  # connection closed, or an A-ABORT PDU
    assert echo(node.port).returncode == 0


def test_a_pdu_claiming_2gb_is_dropped_unread(node: Receiver) -> None:
    header = struct.pack(">BBL", 0x01, 0, 2**31)  # A-ASSOCIATE-RQ claiming 2 GiB
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(header + b"\x00" * 65536)
        try:
            closed = sock.recv(4096) == b""
        except ConnectionResetError:
            closed = True
    assert closed
    assert echo(node.port).returncode == 0


def scu(port: int, *contexts: tuple[str, str]) -> object:
    ae = AE(ae_title="PYSCU")
    ae.requested_contexts = [build_context(sop, syntax) for sop, syntax in contexts]
    assoc = ae.associate("127.0.0.1", port, ae_title=AET)
    assert assoc.is_established
    return assoc


def test_unknown_sop_class_is_rejected_at_negotiation(node: Receiver) -> None:
    unknown = "1.2.826.0.1.3680043.9.9999.42"
    assoc = scu(
        node.port, (unknown, ExplicitVRLittleEndian), (MRImageStorage, ExplicitVRLittleEndian)
    )
    try:
        accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}  # type: ignore[attr-defined]
        rejected = {str(c.abstract_syntax) for c in assoc.rejected_contexts}  # type: ignore[attr-defined]
        assert accepted == {MRImageStorage}
        assert rejected == {unknown}
    finally:
        assoc.release()  # type: ignore[attr-defined]
    assert echo(node.port).returncode == 0


def bad_file(folder: Path, body: bytes, study_uid: str | None = None) -> Path:
    """A Part 10 file with valid file meta and the given dataset bytes."""
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = folder / f"{ds.file_meta.MediaStorageSOPInstanceUID}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    path.write_bytes(path.read_bytes() + body)
    return path


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("garbled stream", b"\xff" * 300),
        # (0008,0018) UI claiming a 2 GB value in a 20-byte message
        ("claimed 2 GB element", struct.pack("<HH2sH", 0x0008, 0x0018, b"UI", 2) + b"1\x00"
         + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 2**31) + b"\x00" * 8),
    ],
)  # fmt: skip
def test_a_dataset_that_does_not_parse_gets_c210(
    node: Receiver,
    recorder: Recorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    body: bytes,
) -> None:
    from pynetdicom import _config

    # send the file's bytes as they are (pynetdicom would otherwise parse and re-encode them)
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    path = bad_file(tmp_path / "bad", body)
    assoc = scu(node.port, (MRImageStorage, ExplicitVRLittleEndian))
    try:
        status = assoc.send_c_store(path)  # type: ignore[attr-defined]
        assert status.Status == 0xC210, name
    finally:
        assoc.release()  # type: ignore[attr-defined]
    assert stored_files(node.store.root) == []
    assert [r.status for r in recorder.refused] == [0xC210]
    assert echo(node.port).returncode == 0


def test_crafted_uids_never_leave_the_store(node: Receiver, recorder: Recorder) -> None:
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "../../escaped"
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Crafted"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    assoc = scu(node.port, (MRImageStorage, ExplicitVRLittleEndian))
    try:
        status = assoc.send_c_store(ds)  # type: ignore[attr-defined]
    finally:
        assoc.release()  # type: ignore[attr-defined]
    assert status.Status == 0xA900
    assert stored_files(node.store.root.parent) == []
    assert "StudyInstanceUID" in recorder.refused[0].reason


def test_per_study_byte_limit_answers_out_of_resources(
    tmp_path: Path, recorder: Recorder, phantom_files: list[Path]
) -> None:
    size = phantom_files[0].stat().st_size
    receiver = start(tmp_path, recorder, max_study_bytes=int(2.5 * size))
    _, files = clone_study(phantom_files[:4], tmp_path / "src", "ACC-LIMIT")
    syntax = str(pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID)
    try:
        assoc = scu(receiver.port, (MRImageStorage, syntax))
        try:
            codes = [assoc.send_c_store(path).Status for path in files]  # type: ignore[attr-defined]
        finally:
            assoc.release()  # type: ignore[attr-defined]
    finally:
        receiver.stop()
    assert codes == [0x0000, 0x0000, 0xA700, 0xA700]
    assert len(stored_files(receiver.store.root)) == 2
    receiver = start(tmp_path, recorder, max_study_bytes=int(2.5 * size))  # after a restart
    try:
        assoc = scu(receiver.port, (MRImageStorage, syntax))
        try:  # resending stored instances replaces them without counting them twice
            codes = [assoc.send_c_store(path).Status for path in files[:2]]  # type: ignore[attr-defined]
        finally:
            assoc.release()  # type: ignore[attr-defined]
    finally:
        receiver.stop()
    assert codes == [0x0000, 0x0000]


def test_an_endless_message_drops_its_association(tmp_path: Path, recorder: Recorder) -> None:
    receiver = start(tmp_path, recorder, max_study_bytes=10_000)  # messages up to 10 kB + 64 KiB
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows, ds.Columns, ds.BitsAllocated = 512, 512, 16
    ds.PixelData = b"\x00\x01" * 512 * 512  # 512 kB in one message
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    try:
        assoc = scu(receiver.port, (MRImageStorage, ExplicitVRLittleEndian))
        status = assoc.send_c_store(ds)  # type: ignore[attr-defined]
        assert not status  # no response: the node dropped the association mid-message
        assert wait_for(lambda: not assoc.is_established, 10)  # type: ignore[attr-defined]
        assert stored_files(receiver.store.root) == []
        assert echo(receiver.port).returncode == 0
    finally:
        receiver.stop()
