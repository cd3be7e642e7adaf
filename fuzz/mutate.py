"""Mutations: bytes (flips, interesting integers, cuts, splices), DICOM elements, ``.npy`` headers,
model payloads and pickle opcodes. Each takes a ``random.Random`` and returns the mutated bytes plus
a short label of what was done (the label is what the per-class counts group by).
"""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
               0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)  # fmt: skip


# --- bytes -----------------------------------------------------------------------------------


def _flip(rng: random.Random, data: bytearray) -> str:
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return "bitflip"


def _byte(rng: random.Random, data: bytearray) -> str:
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return "byte"


def _integer(rng: random.Random, data: bytearray) -> str:
    width = rng.choice((2, 4))
    value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
    i = rng.randrange(max(1, len(data) - width))
    data[i : i + width] = value.to_bytes(width, rng.choice(("little", "big")))
    return f"int{8 * width}"


def _cut(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data))
    del data[i : i + rng.randint(1, 64)]
    return "delete"


def _insert(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data) + 1)
    chunk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    data[i:i] = chunk
    return "insert"


def _duplicate(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data))
    chunk = data[i : i + rng.randint(1, 256)]
    j = rng.randrange(len(data) + 1)
    data[j:j] = chunk
    return "duplicate"


def _truncate(rng: random.Random, data: bytearray) -> str:
    del data[rng.randrange(len(data)) :]
    return "truncate"


_BYTE_MUTATORS: tuple[Callable[[random.Random, bytearray], str], ...] = (
    _flip, _flip, _byte, _integer, _integer, _cut, _insert, _duplicate, _truncate,
)  # fmt: skip


def mutate_bytes(rng: random.Random, data: bytes, rounds: int | None = None) -> tuple[bytes, str]:
    """1-4 random byte-level mutations; the label names the first (e.g. ``bitflip``)."""
    out = bytearray(data or b"\0")
    labels = []
    for _ in range(rounds or rng.randint(1, 4)):
        if not out:  # an earlier truncation or cut emptied it
            out.append(0)
        labels.append(rng.choice(_BYTE_MUTATORS)(rng, out))
    return bytes(out), labels[0]


def mutate_header_bytes(rng: random.Random, data: bytes, header: int) -> tuple[bytes, str]:
    """Byte mutations aimed at the first ``header`` bytes (where a DICOM/npy/pickle header lives)."""
    out = bytearray(data)
    span = max(1, min(header, len(out)))
    labels = []
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(span)
        kind = rng.randrange(3)
        if kind == 0:
            out[i] ^= 1 << rng.randrange(8)
            labels.append("head-bitflip")
        elif kind == 1:
            width = rng.choice((2, 4))
            value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            out[i : i + width] = value.to_bytes(width, "little")
            labels.append("head-int")
        else:
            out[i] = rng.randrange(256)
            labels.append("head-byte")
    return bytes(out), labels[0]


# --- DICOM elements ---------------------------------------------------------------------------

_NUMBERS = ("0", "-1", "1e38", "-1e38", "nan", "inf", "-inf", "1e308", "1e-320", "2147483648",
            "99999999999999999999", "", "abc", "1\\2", "0.5\\0.5\\0.5", "\\", "  ", "1e+999")  # fmt: skip
_GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
             "SpacingBetweenSlices", "RescaleSlope", "RescaleIntercept", "WindowCenter",
             "WindowWidth", "SeriesNumber", "InstanceNumber", "NumberOfFrames")  # fmt: skip
_PIXEL_US = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
             "SamplesPerPixel", "PlanarConfiguration")  # fmt: skip
_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
             DeflatedExplicitVRLittleEndian, RLELossless, JPEGBaseline8Bit, JPEG2000Lossless,
             "1.2.840.10008.1.2.4.999", "", "garbage\0", "1.2.840.10008.1.2.1.99")  # fmt: skip
_TEXTS = ("", "\x1b$B\xff\xff", "ISO 2022 IR 87", "ISO_IR 192", "GB18030", "bogus", "\\\\\\",
          "A" * 70, "ISO 2022 IR 149\\ISO 2022 IR 13")  # fmt: skip


def _set_raw(ds: Dataset, keyword: str, vr: str, raw: bytes) -> None:
    """Put an element with raw (unconverted) bytes, as a damaged file would hold it."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if tag is None:
        return
    ds[tag] = pydicom.dataelem.DataElement(tag, vr, raw)


def _dicom_geometry(rng: random.Random, ds: Dataset) -> str:
    keyword = rng.choice(_GEOMETRY)
    values = "\\".join(rng.choice(_NUMBERS) for _ in range(rng.choice((1, 2, 3, 6))))
    vr = "IS" if keyword in ("SeriesNumber", "InstanceNumber", "NumberOfFrames") else "DS"
    _set_raw(ds, keyword, vr, values.encode("latin-1"))
    return f"geometry:{keyword}"


def _dicom_pixel_field(rng: random.Random, ds: Dataset) -> str:
    keyword = rng.choice(_PIXEL_US)
    value = rng.choice((0, 1, 3, 7, 8, 12, 15, 16, 17, 32, 64, 255, 4096, 65535))
    tag = pydicom.datadict.tag_for_keyword(keyword)
    ds[tag] = pydicom.dataelem.DataElement(tag, "US", value)
    return f"pixel:{keyword}"


def _dicom_photometric(rng: random.Random, ds: Dataset) -> str:
    ds.PhotometricInterpretation = rng.choice(
        ("RGB", "PALETTE COLOR", "YBR_FULL_422", "MONOCHROME1", "", "NONSENSE")
    )
    return "pixel:PhotometricInterpretation"


def _dicom_syntax(rng: random.Random, ds: Dataset) -> str:
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = rng.choice(_SYNTAXES)
    return "encoding:TransferSyntaxUID"


def _dicom_drop_meta(rng: random.Random, ds: Dataset) -> str:
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    return "encoding:no-meta"


def _dicom_drop(rng: random.Random, ds: Dataset) -> str:
    keyword = rng.choice(_GEOMETRY + _PIXEL_US + ("PixelData", "SeriesInstanceUID", "SOPClassUID"))
    if keyword in ds:
        delattr(ds, keyword)
    return f"drop:{keyword}"


def _dicom_text(rng: random.Random, ds: Dataset) -> str:
    keyword = rng.choice(("SpecificCharacterSet", "PatientName", "SeriesDescription",
                          "StudyDescription", "SeriesInstanceUID", "ImageType", "Modality"))  # fmt: skip
    vr = {"PatientName": "PN", "SeriesInstanceUID": "UI", "ImageType": "CS", "Modality": "CS",
          "SpecificCharacterSet": "CS"}.get(keyword, "LO")  # fmt: skip
    _set_raw(ds, keyword, vr, rng.choice(_TEXTS).encode("latin-1"))
    return f"text:{keyword}"


def _dicom_vr(rng: random.Random, ds: Dataset) -> str:
    keyword = rng.choice((*_GEOMETRY, "PixelData", "PerFrameFunctionalGroupsSequence"))
    vr = rng.choice(("OB", "UN", "SQ", "US", "FD", "AT", "XX"))
    raw = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 3, 8, 13))))
    try:
        _set_raw(ds, keyword, vr, raw)
    except Exception:  # pydicom refuses some VRs at construction
        return "vr:refused"
    return f"vr:{keyword}"


def _dicom_groups(rng: random.Random, ds: Dataset) -> str:
    """Damaged Enhanced MR functional groups: wrong counts, empty items, bad positions."""
    frames = rng.choice((0, 1, 2, 5))
    items = []
    for _ in range(frames):
        item = Dataset()
        if rng.random() < 0.7:
            inner = Dataset()
            _set_raw(inner, "ImagePositionPatient", "DS", rng.choice(_NUMBERS).encode())
            item.PlanePositionSequence = DicomSequence([inner] if rng.random() < 0.8 else [])
        if rng.random() < 0.4:
            inner = Dataset()
            _set_raw(inner, "RescaleSlope", "DS", rng.choice(_NUMBERS).encode())
            item.PixelValueTransformationSequence = DicomSequence([inner])
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(items)
    if rng.random() < 0.5:
        ds.SharedFunctionalGroupsSequence = DicomSequence([] if rng.random() < 0.5 else [Dataset()])
    if rng.random() < 0.5:
        ds.NumberOfFrames = rng.choice((1, 2, 3, 100000))
    return "groups:functional"


def _dicom_pixels(rng: random.Random, ds: Dataset) -> str:
    """Pixel data of the wrong length, float pixel data with NaN, or a huge declared image."""
    choice = rng.randrange(4)
    if choice == 0 and "PixelData" in ds:
        raw = bytes(ds.PixelData)
        ds.PixelData = raw[: rng.randrange(len(raw) + 1)] if rng.random() < 0.5 else raw * 2
        return "pixel:length"
    if choice == 1:
        rows, cols = rng.choice(((4, 4), (2, 8)))
        values = np.full(rows * cols, np.nan, dtype=np.float32)
        values[::3] = rng.choice((np.inf, -np.inf, 1e38))
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated = 32
        if "PixelData" in ds:
            del ds.PixelData
        ds.FloatPixelData = values.tobytes()
        return "pixel:float-nan"
    if choice == 2:
        ds.Rows, ds.Columns = rng.choice(((65535, 65535), (40000, 40000), (1, 65535)))
        ds.NumberOfFrames = rng.choice((1, 1000, 2**31 - 1))
        return "pixel:huge-declared"
    ds.RescaleSlope = rng.choice(("1e38", "-1e38", "3e38", "1e-45"))
    return "pixel:rescale-overflow"


_DICOM_MUTATORS: tuple[Callable[[random.Random, Dataset], str], ...] = (
    _dicom_geometry, _dicom_geometry, _dicom_geometry, _dicom_pixel_field, _dicom_photometric,
    _dicom_syntax, _dicom_drop_meta, _dicom_drop, _dicom_text, _dicom_vr, _dicom_groups,
    _dicom_pixels, _dicom_pixels,
)  # fmt: skip


def mutate_dicom(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """1-3 structured mutations of a DICOM file's elements, written back (byte mutation as fallback)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        ds.remove_private_tags()
    except Exception:  # a seed pydicom cannot read (never for our seeds): fall back
        return mutate_bytes(rng, data)
    labels = []
    for _ in range(rng.randint(1, 3)):
        mutator = rng.choice(_DICOM_MUTATORS)
        try:
            labels.append(mutator(rng, ds))
        except Exception:  # an earlier mutation made pydicom refuse this one: keep what was done
            labels.append(f"{mutator.__name__.strip('_')}:after-damage")
    out = io.BytesIO()
    try:
        syntax = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset()).get(
            "TransferSyntaxUID"
        )
        implicit = str(syntax) == ImplicitVRLittleEndian
        little = str(syntax) != ExplicitVRBigEndian
        pydicom.dcmwrite(out, ds, implicit_vr=implicit, little_endian=little, force_encoding=True)
    except Exception:  # pydicom cannot write some damage: the bytes keep the label's intent
        return mutate_bytes(rng, data)
    return out.getvalue(), labels[0]


def deflate_bomb(rng: random.Random, data: bytes, bomb: bytes) -> tuple[bytes, str]:
    """A deflated DICOM file whose stream inflates to its image followed by ``bomb`` (inflated zeros).

    ``bomb`` is a raw deflate stream of many zeros (prepared once); the image's own deflated bytes are
    emitted with ``Z_FULL_FLUSH`` so the two streams join into one valid stream.
    """
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    plain = io.BytesIO()
    pydicom.dcmwrite(plain, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    raw = plain.getvalue()
    meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
    meta = _replace_meta_syntax(raw[:meta_end], DeflatedExplicitVRLittleEndian.encode())
    packer = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = packer.compress(raw[meta_end:]) + packer.flush(zlib.Z_FULL_FLUSH)
    return bytes(meta) + body + bomb, "deflate:bomb"


def _replace_meta_syntax(meta: bytes, new: bytes) -> bytes:
    """File Meta with the transfer syntax value replaced (group length fixed)."""
    tag = b"\x02\x00\x10\x00UI"
    at = meta.index(tag)
    length = int.from_bytes(meta[at + 6 : at + 8], "little")
    value = new + (b"\0" if len(new) % 2 else b"")
    element = tag + len(value).to_bytes(2, "little") + value
    out = meta[:at] + element + meta[at + 8 + length :]
    group_length = len(out) - 144
    return out[:140] + group_length.to_bytes(4, "little") + out[144:]


# --- .npy headers -----------------------------------------------------------------------------

_SHAPES = ("(99999999, 99999, 4)", "(-1, 16, 16)", "(2**40,)", "()", "(0, 16, 16)", "(1,)",
           "(2, 16, 16, 1, 1)", "('a', 2)", "(2.5, 3)", "(4294967296, 4294967296, 4294967296)",
           "(16, 16)", "[2, 16, 16]")  # fmt: skip
_DTYPES = ("'|O'", "'<U10'", "'|V8'", "'>f8'", "'<c8'", "'|b1'", "'<M8[s]'", "'object'",
           "[('a', '<i4')]", "'<f2'", "'abc'", "'<i8'")  # fmt: skip


def mutate_npy(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """A ``.npy`` with its header dict changed (shape, dtype, order, header length) or bytes mutated."""
    choice = rng.randrange(5)
    if choice >= 3:
        return mutate_header_bytes(rng, data, 128) if choice == 3 else mutate_bytes(rng, data)
    header_len = int.from_bytes(data[8:10], "little")
    header = data[10 : 10 + header_len].decode("latin-1")
    body = data[10 + header_len :]
    if choice == 0:
        start = header.index("'shape': ") + len("'shape': ")
        end = header.index(")", start) + 1
        header = header[:start] + rng.choice(_SHAPES) + header[end:]
        label = "npy:shape"
    elif choice == 1:
        start = header.index("'descr': ") + len("'descr': ")
        end = header.index(",", start)
        header = header[:start] + rng.choice(_DTYPES) + header[end:]
        label = "npy:dtype"
    else:
        header = header.replace("False", rng.choice(("True", "1", "'x'", "None")))
        label = "npy:order"
    encoded = header.encode("latin-1")
    encoded = encoded.ljust(((len(encoded) + 10 + 63) // 64) * 64 - 10, b" ")
    if rng.random() < 0.2:
        length = rng.choice((0, 1, 0xFFFF, len(encoded) + 7))
        label = "npy:header-length"
    else:
        length = len(encoded)
    return data[:8] + length.to_bytes(2, "little") + encoded + body, label


# --- model payloads ---------------------------------------------------------------------------

_JSON_VALUES: tuple[Any, ...] = ("4", 0, -1, 100000, 2.5, None, True, [], {}, "", "x" * 100,
                                 float("nan"), float("inf"), 1e308, [1, 2], {"a": 1})  # fmt: skip
_FIELDS = ("task", "plane", "k", "norm", "blur", "dropout", "eps", "threshold", "landmarks",
           "summary", "demo", "provenance", "metrics", "history")  # fmt: skip


def mutate_model(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """A model file with its payload changed (metadata fields, nesting, state_dict, version,
    checksum, applicability) and saved again, or its bytes mutated."""
    if rng.random() < 0.35:
        return mutate_bytes(rng, data)
    import torch

    payload = torch.load(io.BytesIO(data), weights_only=True)
    choice = rng.randrange(8)
    if choice <= 2:
        meta = json.loads(payload["metadata"])
        field = rng.choice(_FIELDS)
        meta[field] = rng.choice(_JSON_VALUES)
        payload["metadata"] = json.dumps(meta)
        label = f"model:metadata.{field}"
        if rng.random() < 0.7:  # a consistent checksum: the schema must catch it
            from napari_elnet.models.model_schema import content_sha256

            payload["sha256"] = content_sha256(payload["metadata"], payload["state_dict"])
    elif choice == 3:
        depth = rng.choice((100, 10_000, 200_000))
        payload["metadata"] = rng.choice(("[" * depth + "]" * depth, "{\"a\":" * depth + "1" + "}" * depth,
                                          "[1, 2]", "42", "{bad", ""))  # fmt: skip
        label = "model:metadata-shape"
    elif choice == 4:
        state = payload["state_dict"]
        name = rng.choice(sorted(state))
        kind = rng.randrange(5)
        if kind == 0:
            state[name] = torch.full_like(state[name], float("nan"))
        elif kind == 1:
            state[name] = torch.zeros(3)
        elif kind == 2:
            state[name] = "not a tensor"
        elif kind == 3:
            state[7] = torch.zeros(1)
        else:
            payload["state_dict"] = rng.choice(([1, 2], "x", None, {}))
        label = "model:state_dict"
        if rng.random() < 0.5 and isinstance(payload["state_dict"], dict):
            try:
                from napari_elnet.models.model_schema import content_sha256

                payload["sha256"] = content_sha256(payload["metadata"], payload["state_dict"])
            except Exception:  # a state that cannot be hashed keeps the old checksum
                pass
    elif choice == 5:
        payload["format_version"] = rng.choice((0, 1, 3, "2", None, 2.0, True))
        label = "model:version"
    elif choice == 6:
        payload["sha256"] = rng.choice(("", "0" * 64, None, 5, "a" * 63))
        label = "model:sha256"
    else:
        payload["applicability"] = rng.choice(([1], "x", {"features": "nope"}, None))
        label = "model:applicability"
    out = io.BytesIO()
    torch.save(payload, out)
    return out.getvalue(), label


# --- pickles ----------------------------------------------------------------------------------

_HOSTILE_PICKLES: tuple[tuple[str, bytes], ...] = (
    ("memo-index", b"\x80\x02N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b"."),
    ("memo-get", b"\x80\x02" + b"j" + struct.pack("<I", 0x7FFFFFFF) + b"."),
    ("bytes8-length", b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc."),
    ("deep-marks", b"\x80\x02" + b"(" * 100_000 + b"."),
    ("deep-lists", b"\x80\x02" + b"]" * 50_000 + b"a" * 49_999 + b"."),
    ("os-system", b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."),
    ("eval", b"cbuiltins\neval\n(S'1+1'\ntR."),
    (
        "reconstruct-huge",
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        b"J\x00\x00\x00\x40\x85C\x01b\x87R.",
    ),
    ("object-dtype", b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R."),
    ("empty", b""),
    ("stop-only", b"."),
)


def mutate_pickle(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """A pickle with bytes mutated, a hostile fragment spliced in, or a known hostile pickle."""
    choice = rng.randrange(6)
    if choice == 0:
        name, hostile = rng.choice(_HOSTILE_PICKLES)
        return hostile, f"pickle:{name}"
    if choice == 1:
        at = rng.randrange(2, max(3, len(data) - 1))
        fragment = rng.choice((b"r\xff\xff\xff\x7f", b"(" * 200, b"J\x00\x00\x00\x40",
                               b"\x8e" + struct.pack("<Q", 2**33), b"cos\nsystem\n"))  # fmt: skip
        return data[:at] + fragment + data[at:], "pickle:splice"
    if choice == 2:
        return mutate_header_bytes(rng, data, 96)
    return mutate_bytes(rng, data)


def zero_bomb(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes (built in 1 MiB steps; ~1 KB per MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = bytes(2**20)
    parts = [packer.compress(chunk) for _ in range(size // 2**20)]
    parts.append(packer.flush())
    return b"".join(parts)
