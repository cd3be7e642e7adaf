"""Hostile and damaged inputs to study loading (issue 10): each one is a clear per-file answer.

Invariants, one test each:

1. A FIFO in a study folder (and a FIFO given directly) is a FileProblem; nothing blocks.
2. A ``.dcm`` symlink to ``/dev/zero`` is a FileProblem naming a character device; nothing reads it.
3. A deflate bomb (a deflated file whose data inflates far beyond its header's image) is refused
   without inflating it; a well-formed deflated file still loads.
4. A header declaring an image larger than ``MAX_DECODED_BYTES`` is refused before decoding.
5. A ``.npy`` whose header claims a huge shape is a FileProblem, not a MemoryError; a non-numeric
   case name loads with no series number.
6. Pixel spacing 0, negative or beyond 1 m: a warning and 1 mm.
7. An ImagePositionPatient beyond 100 m is ignored with a warning (no inf/NaN slice spacing).
8. Non-finite values after rescale (slope 1e38) are set to 0 and counted in a warning.
9. A damaged header value (a character set that cannot decode, a sequence that is not one) does not
   escape as an exception.
10. An ACR-NEMA style file without File Meta is read as pydicom reads it (implicit VR little endian).
11. ``load_study("")`` is refused instead of reading the current folder.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian
from support.dicom_factory import write_slice, write_stack

from napari_elnet.common.errors import NoUsableSeriesError
from napari_elnet.io import dicom_pixels, load_study, read_study


def test_fifo_is_a_problem_and_never_blocks(tmp_path: Path) -> None:
    write_stack(tmp_path, 2)
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)

    scan = read_study(tmp_path)

    assert len(scan.series) == 1
    (problem,) = scan.problems
    assert problem.path == fifo
    assert "named pipe" in problem.reason
    (direct,) = read_study(fifo).problems
    assert direct.path == fifo


def test_symlink_to_dev_zero_is_a_problem(tmp_path: Path) -> None:
    write_stack(tmp_path, 2)
    link = tmp_path / "zero.dcm"
    link.symlink_to("/dev/zero")

    scan = read_study(tmp_path)

    (problem,) = scan.problems
    assert problem.path == link
    assert "character device" in problem.reason


def _deflated_copy(source: Path, target: Path, extra: bytes = b"") -> Path:
    """``source`` re-encoded as Deflated Explicit VR Little Endian, ``extra`` appended before deflating."""
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    if not extra:
        return target
    raw = target.read_bytes()
    meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
    body = zlib.decompress(raw[meta_end:], -zlib.MAX_WBITS) + extra
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    target.write_bytes(raw[:meta_end] + packer.compress(body) + packer.flush())
    return target


def test_deflated_file_loads_and_a_deflate_bomb_is_refused(tmp_path: Path) -> None:
    plain = write_slice(tmp_path / "src" / "plain.dcm", value=7)
    good = _deflated_copy(plain, tmp_path / "good" / "good.dcm")
    (series,) = read_study(good.parent).series
    assert series.array[0, 0, 0] == 7

    # 64 MiB of zeros after an 8x8 image: far beyond what its header declares
    bomb = _deflated_copy(plain, tmp_path / "bomb" / "bomb.dcm", extra=b"\0" * (64 * 2**20))
    assert bomb.stat().st_size < 200_000
    (problem,) = read_study(bomb).problems
    assert "inflates beyond" in problem.reason


def test_declared_image_beyond_the_bound_is_refused(tmp_path: Path) -> None:
    path = write_slice(tmp_path / "huge.dcm")
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    ds.save_as(path, enforce_file_format=True)

    (problem,) = read_study(path).problems

    assert "more than the" in problem.reason
    assert str(dicom_pixels.MAX_DECODED_BYTES) in problem.reason


def test_npy_header_claiming_a_huge_shape_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "0001.npy"
    np.save(path, np.zeros((2, 4, 4), dtype=np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"(2, 4, 4)", b"(99999999, 99999, 4)"))

    (problem,) = read_study(path).problems

    assert "declares shape (99999999, 99999, 4)" in problem.reason
    named = tmp_path / "case².npy"
    np.save(named, np.zeros((2, 4, 4), dtype=np.float32))
    (series,) = read_study(named).series
    assert series.number is None


@pytest.mark.parametrize("spacing", [(0.0, 0.5), (-1.0, -1.0), (0.5, 5000.0)])
def test_invalid_pixel_spacing_warns_and_falls_back(
    tmp_path: Path, spacing: tuple[float, float]
) -> None:
    write_stack(tmp_path, 2, pixel_spacing=spacing)

    (series,) = read_study(tmp_path).series

    assert series.spacing[1:] == (1.0, 1.0)
    assert any("PixelSpacing" in w and "1 mm assumed" in w for w in series.warnings)


def test_far_position_is_ignored_with_a_warning(tmp_path: Path) -> None:
    write_slice(tmp_path / "a.dcm", position=(1e300, 0.0, 0.0), instance=1)
    write_slice(tmp_path / "b.dcm", position=(-1e300, 0.0, 1.0), instance=2)

    (series,) = read_study(tmp_path).series

    assert all(np.isfinite(series.spacing))
    assert series.plane == "unknown"
    assert any("ImagePositionPatient" in w and "ignored" in w for w in series.warnings)


def test_non_finite_values_after_rescale_are_reported(tmp_path: Path) -> None:
    write_slice(tmp_path / "a.dcm", value=100, slope=1e38)

    (series,) = read_study(tmp_path).series

    assert np.all(np.isfinite(series.array))
    assert float(series.array.max()) == 0.0
    assert any("64 voxel(s) are not finite" in w for w in series.warnings)


def test_damaged_header_values_do_not_escape(tmp_path: Path) -> None:
    path = write_slice(tmp_path / "a.dcm")
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO 2022 IR 87"
    ds.PatientName = "Doe^Jane"
    ds.add_new(0x52009230, "OB", b"\x01\x02\x03")  # PerFrameFunctionalGroups that is not a sequence
    ds.NumberOfFrames = 1
    ds.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"Doe^Jane", b"\x1b$B\xff\xff\xff\xff\xff"))
    (series,) = read_study(tmp_path).series
    assert isinstance(series.study.patient_name, str)  # converted lazily: must not raise either

    # the same name with a wrong length: the header is damaged, the file a problem (never dropped)
    path.write_bytes(raw.replace(b"Doe^Jane", b"\x1b$B\xff\xff\xff"))
    (problem,) = read_study(tmp_path).problems
    assert problem.path == path


def test_acr_nema_file_without_file_meta_is_read_as_implicit_little(tmp_path: Path) -> None:
    source = write_slice(tmp_path / "src.dcm", value=5)
    ds = pydicom.dcmread(source)
    target = tmp_path / "acr" / "IM0001.dcm"
    target.parent.mkdir()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    ds.save_as(target, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert target.read_bytes()[128:132] != b"DICM"

    (series,) = read_study(target).series

    assert series.array[0, 0, 0] == 5


def test_empty_path_is_refused() -> None:
    with pytest.raises(NoUsableSeriesError, match="no path given"):
        load_study("")


def test_float32_npy_with_nan_loads_writable_with_a_warning(tmp_path: Path) -> None:
    volume = np.zeros((2, 4, 4), dtype=np.float32)
    volume[0, 0, 0] = np.nan
    np.save(tmp_path / "case².npy", volume)  # found by the fuzzer: a read-only float32 view

    (series,) = read_study(tmp_path).series

    assert series.array[0, 0, 0] == 0.0
    assert any("1 voxel(s) are not finite" in w for w in series.warnings)
