"""The multi-threaded JPEG 2000 plugin (napari_elnet.io.jpeg2000) against pydicom's own decoding.

Invariants, one test each:

1. The real knee, re-encoded as JPEG 2000 lossless, decodes through ``dicom_pixels.decode`` to exactly
   what pydicom's default plugin (pylibjpeg-openjpeg) gives, and the plugin (imagecodecs) did the work.
2. The same for generated frames: 8/10/12/16 bits, signed and unsigned, RGB with and without the
   reversible colour transform, lossy YBR_ICT, multi-frame, and a codestream whose signedness
   differs from the header's Pixel Representation (pydicom's sign correction).
3. One decoder thread and several give the same pixels; a thread count below 1 is refused.
4. A codestream whose image size differs from the header's is refused before OpenJPEG runs;
   corrupt and truncated codestreams become a FileProblem naming the file, never a crash.
5. A JP2-wrapped frame and 17+ bit samples are left to pylibjpeg-openjpeg (SIZ not taken), and a
   JP2-wrapped file still decodes as pydicom decodes it.
6. Registering the plugin leaves ``Dataset.pixel_array`` with pydicom's choice, and importing the
   io modules registers nothing and imports no imagecodecs.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless, MRImageStorage

from napari_elnet.io import dicom_pixels, jpeg2000
from napari_elnet.io.dicom_headers import read_dicom_file
from napari_elnet.io.scan import FileProblem
from tests.support.dicom_factory import file_dataset


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the thread count of every imagecodecs JPEG 2000 decode."""
    seen: list[int] = []
    original = imagecodecs.jpeg2k_decode

    def spy(data: bytes, **kwargs: Any) -> np.ndarray:
        seen.append(kwargs.get("numthreads") or 0)
        return original(data, **kwargs)

    monkeypatch.setattr(imagecodecs, "jpeg2k_decode", spy)
    return seen


def _encoded(
    bits: int,
    signed: bool,
    samples: int = 1,
    frames: int = 1,
    photometric: str | None = None,
    syntax: UID = JPEG2000Lossless,
    **options: Any,
) -> bytes:
    """A DICOM file of random pixels (40 x 48) compressed by pydicom's encoder."""
    allocated = 8 if bits <= 8 else 16
    dtype = np.dtype(f"{'i' if signed else 'u'}{allocated // 8}")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2**bits)
    shape = (frames, 40, 48, samples)
    pixels = np.random.default_rng(bits).integers(low, high, size=shape).astype(dtype)
    pixels = pixels.reshape(tuple(n for i, n in enumerate(shape) if n != 1 or i in (1, 2)))
    ds = file_dataset(MRImageStorage)
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 40, 48, samples
    ds.PhotometricInterpretation = photometric or ("MONOCHROME2" if samples == 1 else "RGB")
    if samples > 1:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, bits, bits - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = pixels.tobytes()
    ds.compress(syntax, pixels, **options)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _assert_same_as_pydicom(data: bytes) -> None:
    expected = pydicom.dcmread(io.BytesIO(data)).pixel_array
    _, pixels = dicom_pixels.decode(io.BytesIO(data), [])
    assert (pixels.dtype, pixels.shape) == (expected.dtype, expected.shape)
    np.testing.assert_array_equal(pixels, expected)


def test_real_knee_decodes_as_pydicom_does(knee_dir: Path, calls: list[int]) -> None:
    for path in sorted(knee_dir.glob("*.dcm"))[::7]:
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        out = io.BytesIO()
        ds.save_as(out)
        _assert_same_as_pydicom(out.getvalue())
    assert len(calls) == 3
    assert all(threads == jpeg2000.decoder_threads() for threads in calls)


@pytest.mark.parametrize(
    ("bits", "signed", "samples", "frames", "photometric", "syntax", "options"),
    [
        (8, False, 1, 1, None, JPEG2000Lossless, {}),
        (8, True, 1, 1, None, JPEG2000Lossless, {}),
        (10, True, 1, 3, None, JPEG2000Lossless, {}),
        (12, False, 1, 1, None, JPEG2000Lossless, {}),
        (12, True, 1, 1, None, JPEG2000Lossless, {}),
        (16, False, 1, 2, None, JPEG2000Lossless, {}),
        (16, True, 1, 1, None, JPEG2000Lossless, {}),
        (8, False, 3, 2, None, JPEG2000Lossless, {}),
        (8, False, 3, 1, "YBR_RCT", JPEG2000Lossless, {}),
        (8, False, 3, 1, "YBR_ICT", JPEG2000, {"j2k_cr": [20]}),
        (12, True, 1, 1, None, JPEG2000, {"j2k_cr": [10]}),
        (16, False, 1, 2, None, JPEG2000, {"j2k_psnr": [60]}),
    ],
)
def test_generated_frames_decode_as_pydicom_does(
    bits: int,
    signed: bool,
    samples: int,
    frames: int,
    photometric: str | None,
    syntax: UID,
    options: dict[str, Any],
    calls: list[int],
) -> None:
    _assert_same_as_pydicom(_encoded(bits, signed, samples, frames, photometric, syntax, **options))
    assert len(calls) == frames


def test_codestream_signedness_differing_from_the_header_is_corrected_as_pydicom_does(
    calls: list[int],
) -> None:
    data = bytearray(_encoded(12, signed=True))
    siz = data.find(b"\xff\x4f\xff\x51")
    assert data[siz + 42] == 0x80 | 11  # signed, 12 bits
    data[siz + 42] = 11  # the codestream now says unsigned; the header still says signed
    _assert_same_as_pydicom(bytes(data))
    _, pixels = dicom_pixels.decode(io.BytesIO(bytes(data)), [])
    assert pixels.dtype == np.int16
    assert pixels.min() < 0
    assert len(calls) == 2  # both decodes went through the plugin


def test_thread_count_does_not_change_the_pixels() -> None:
    data = _encoded(16, signed=True, frames=2)
    results = []
    try:
        for threads in (1, 2, 3):
            jpeg2000.set_threads(threads)
            assert jpeg2000.decoder_threads() == threads
            results.append(dicom_pixels.decode(io.BytesIO(data), [])[1])
    finally:
        jpeg2000.set_threads(None)
    for pixels in results[1:]:
        np.testing.assert_array_equal(pixels, results[0])
    with pytest.raises(ValueError, match="threads must be >= 1"):
        jpeg2000.set_threads(0)
    assert 1 <= jpeg2000.decoder_threads() <= jpeg2000.MAX_THREADS


def _with_frame(data: bytes, frame: bytes) -> bytes:
    """``data`` (a one-frame JPEG 2000 file) with its frame replaced."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PixelData = encapsulate([frame])
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def _frame(data: bytes) -> bytes:
    return next(generate_frames(pydicom.dcmread(io.BytesIO(data)).PixelData, number_of_frames=1))


def test_codestream_larger_than_the_header_is_refused_before_decoding(calls: list[int]) -> None:
    small = _encoded(12, signed=False)
    other = file_dataset(MRImageStorage)
    other.Rows, other.Columns, other.SamplesPerPixel = 400, 480, 1
    other.PhotometricInterpretation = "MONOCHROME2"
    other.BitsAllocated, other.BitsStored, other.HighBit, other.PixelRepresentation = 16, 12, 11, 0
    pixels = np.zeros((400, 480), np.uint16)
    other.PixelData = pixels.tobytes()
    other.compress(JPEG2000Lossless, pixels)
    data = _with_frame(small, next(generate_frames(other.PixelData, number_of_frames=1)))

    with pytest.raises(RuntimeError, match="400 x 480 x 1 samples, the header declares 40 x 48"):
        dicom_pixels.decode(io.BytesIO(data), [])
    assert calls == []


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty tile data"])
def test_corrupt_codestream_is_a_problem_naming_the_file(damage: str, tmp_path: Path) -> None:
    data = _encoded(16, signed=True)
    frame = bytearray(_frame(data))
    if damage == "truncated":
        frame = frame[: len(frame) // 3]
    elif damage == "garbage":
        frame[60:] = bytes(range(256)) * ((len(frame) - 60) // 256 + 1)
        frame = frame[: len(_frame(data))]
    else:
        sot = frame.find(b"\xff\x90")
        frame = frame[:sot] + b"\xff\xd9"
    path = tmp_path / "damaged.dcm"
    path.write_bytes(_with_frame(data, bytes(frame)))

    result = read_dicom_file(path)

    assert isinstance(result, FileProblem)
    assert result.path == path
    assert "JPEG 2000" in result.reason


def test_jp2_and_wide_samples_are_left_to_pydicom() -> None:
    frame = _frame(_encoded(12, signed=False))
    assert jpeg2000.codestream_size(frame) == (40, 48, 1, 12, False)
    assert jpeg2000.codestream_size(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + frame) is None
    wide = bytearray(frame)
    wide[42] = 23  # 24-bit unsigned samples
    assert jpeg2000.codestream_size(bytes(wide)) is None
    assert jpeg2000.codestream_size(frame[:40]) is None


@pytest.mark.parametrize(("bits", "signed"), [(8, False), (12, False), (16, True)])
def test_jp2_wrapped_file_decodes_as_pydicom_does(
    bits: int, signed: bool, calls: list[int]
) -> None:
    data = _encoded(bits, signed=signed)
    pixels = pydicom.dcmread(io.BytesIO(data)).pixel_array
    jp2 = imagecodecs.jpeg2k_encode(pixels, codecformat="JP2", reversible=True, numthreads=1)
    assert jpeg2000.codestream_size(jp2) is None  # a JP2 box, not a bare codestream
    calls.clear()

    _assert_same_as_pydicom(_with_frame(data, jp2))

    assert calls == []  # decoded by pylibjpeg-openjpeg, not by imagecodecs


def test_plugin_is_registered_after_pydicoms_own(calls: list[int]) -> None:
    assert jpeg2000.plugin_for(JPEG2000Lossless) == jpeg2000.PLUGIN
    assert jpeg2000.plugin_for(UID("1.2.840.10008.1.2.1")) == ""
    plugins = list(get_decoder(JPEG2000Lossless)._available)
    assert plugins[-1] == jpeg2000.PLUGIN
    assert len(plugins) > 1
    pixels = pydicom.dcmread(io.BytesIO(_encoded(12, signed=False))).pixel_array
    assert pixels.shape == (40, 48)
    assert calls == []


def test_import_registers_nothing() -> None:
    code = (
        "import sys\n"
        "import napari_elnet.io.parallel, napari_elnet.io.study\n"
        "from pydicom.pixels import get_decoder\n"
        "from pydicom.uid import JPEG2000Lossless\n"
        "print('imagecodecs' in sys.modules, get_decoder(JPEG2000Lossless).available_plugins)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("False ")
    assert jpeg2000.PLUGIN not in out
