"""Decoding in worker processes: same results as in this process, used only when it pays."""

from __future__ import annotations

import operator
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from support.dicom_peers import wait_for

from napari_elnet.common.errors import ConfigurationError, NoUsableSeriesError
from napari_elnet.io import jpeg2000
from napari_elnet.io.dicom_headers import DicomImage, read_dicom_file
from napari_elnet.io.files import FileKind
from napari_elnet.io.parallel import (
    DecodePolicy,
    LoaderProcess,
    _decoding_worker,
    _pool,
    decodes_on_one_core,
    decoding_pays,
    is_compressed,
    read_dicom_files,
)
from napari_elnet.io.study import read_files, read_study

FORCED = DecodePolicy(min_files=2, workers=2)


def _series(folder: Path, name: str, count: int) -> list[Path]:
    """``count`` slices of one series made from pydicom's test file ``name`` (positions apart)."""
    source = pydicom.dcmread(get_testdata_file(name))
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    paths = []
    for i in range(count):
        source.SOPInstanceUID = generate_uid()
        source.SeriesInstanceUID = series_uid
        source.InstanceNumber = i + 1
        source.ImagePositionPatient = [0.0, 0.0, 5.0 * i]
        path = folder / f"IM{i:03d}.dcm"
        source.save_as(path)
        paths.append(path)
    return paths


def test_worker_processes_give_the_in_process_results(tmp_path: Path) -> None:
    paths = _series(tmp_path / "rle", "MR_small_RLE.dcm", 3)
    paths += _series(tmp_path / "j2k", "MR_small_jp2klossless.dcm", 3)  # one thread per worker
    paths.append(tmp_path / "missing.dcm")  # a problem, reported the same way
    expected = [read_dicom_file(p) for p in paths]
    got = read_dicom_files(paths, FORCED)
    assert len(got) == len(expected) == 7
    for a, b in zip(got[:-1], expected[:-1], strict=True):
        assert isinstance(a, DicomImage) and isinstance(b, DicomImage)
        assert a.path == b.path
        np.testing.assert_array_equal(a.frames[0].pixels, b.frames[0].pixels)
    assert type(got[-1]) is type(expected[-1])
    assert str(got[-1]) == str(expected[-1])


def test_decoding_workers_decode_jpeg2000_on_one_thread_each() -> None:
    with _pool(1, _decoding_worker) as pool:
        assert pool.submit(jpeg2000.decoder_threads).result() == 1
    assert jpeg2000.decoder_threads() >= 1  # this process keeps its own setting


def test_read_study_reads_compressed_series(tmp_path: Path) -> None:
    _series(tmp_path / "study", "MR_small_jp2klossless.dcm", 16)
    assert not decoding_pays(sorted((tmp_path / "study").iterdir()), DecodePolicy(workers=2))
    scan = read_study(tmp_path / "study")
    assert [s.shape for s in scan.series] == [(16, 64, 64)]
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    np.testing.assert_array_equal(scan.series[0].array[3], reference.astype(np.float32))


def test_when_worker_processes_pay(tmp_path: Path) -> None:
    compressed = _series(tmp_path / "rle", "MR_small_RLE.dcm", 3)
    plain = _series(tmp_path / "plain", "MR_small.dcm", 3)
    j2k = _series(tmp_path / "j2k", "MR_small_jp2klossless.dcm", 3)
    assert is_compressed(compressed[0]) and not is_compressed(plain[0])
    assert not is_compressed(tmp_path / "missing.dcm")
    assert is_compressed(j2k[0]) and not decodes_on_one_core(j2k[0])
    assert decodes_on_one_core(compressed[0]) and not decodes_on_one_core(plain[0])
    assert not decodes_on_one_core(tmp_path / "missing.dcm")
    assert decoding_pays(compressed, FORCED)
    assert not decoding_pays(plain, FORCED)  # uncompressed: parsing is cheap, no processes
    assert not decoding_pays(j2k, FORCED)  # decoded on threads in this process
    assert not decoding_pays(compressed, DecodePolicy(min_files=4, workers=2))  # too few files
    assert not decoding_pays(compressed, DecodePolicy(min_files=2, workers=1))  # one CPU


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_files": 0}, "min_files must be >= 1, got 0"),
        ({"workers": 0}, "workers must be >= 1 or None, got 0"),
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        DecodePolicy(**kwargs)


def test_loader_process_runs_elsewhere_and_raises_the_loaders_errors(tmp_path: Path) -> None:
    from napari_elnet.worklist.discovery import StudyRef
    from napari_elnet.worklist.loading import load_study_ref

    with LoaderProcess(operator.call) as call:
        assert call(os.getpid) != os.getpid()
        assert call(os.getpid) == call(os.getpid)  # one long-lived worker
    paths = tuple(_series(tmp_path / "s", "MR_small.dcm", 3))
    good = StudyRef(study_id="a", name="a", kind="dicom", files=paths)
    bad = StudyRef(study_id="b", name="b", kind="dicom", files=(tmp_path / "none.dcm",))
    with LoaderProcess(read_files) as read:
        series = load_study_ref(good, read=read)
        np.testing.assert_array_equal(series[0].array, load_study_ref(good)[0].array)
        with pytest.raises(NoUsableSeriesError, match="study b"):
            load_study_ref(bad, read=read)
        assert read(paths, FileKind.DICOM).series[0].shape == (3, 64, 64)


ORPHAN = """
import operator, os, sys, time
from napari_elnet.io.parallel import LoaderProcess
if __name__ == "__main__":
    load = LoaderProcess(operator.call)
    print(load(os.getpid), flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert wait_for(lambda: not _alive(worker), 60, interval=0.2)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False
