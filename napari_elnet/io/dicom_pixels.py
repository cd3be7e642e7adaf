"""Decoding DICOM pixel data within bounds that the header sets before anything large is allocated.

Rules:

- The decoded size a header declares (Rows x Columns x NumberOfFrames x SamplesPerPixel x bytes per
  sample) must be a valid count at most ``MAX_DECODED_BYTES``; it is checked before any decoder runs.
- Uncompressed pixel data must hold at least the declared number of bytes (checked against the bytes
  present, before decoding).
- A deflated file (Deflated Explicit VR Little Endian) is inflated in steps: first just enough to read
  the header up to the pixel data, then at most the size that header declares (plus a small allowance
  for trailing elements). A stream that inflates beyond that bound is refused, so a deflate bomb never
  grows past the size of the image it claims to hold.
- A file without a File Meta group (old ACR-NEMA style) is read with the encoding pydicom detects
  (see ``transfer_syntax_of``), which for such MR files is implicit VR little endian.

Every refusal raises :class:`PixelBoundError` with a sentence for the user.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import _at_pixel_data, _read_file_meta_info, read_dataset, read_preamble
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from napari_elnet.io import jpeg2000

#: Largest decoded pixel data accepted from one file (1 GiB: 1000 frames of 512 x 512 x 32 bit).
MAX_DECODED_BYTES = 2**30
#: Largest header (everything before the pixel data) accepted when inflating a deflated file.
MAX_HEADER_BYTES = 64 * 2**20
#: Bytes allowed after the pixel data of a deflated file (trailing elements, padding).
TRAILER_ALLOWANCE = 2**20
_FIRST_INFLATE = 2**16
_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00009: "DoubleFloatPixelData",
    0x7FE00008: "FloatPixelData",
}
_IMAGE_PIXEL_TAGS = frozenset(
    {0x00280002, 0x00280004, 0x00280006, 0x00280008, 0x00280010, 0x00280011, 0x00280100}
    | {0x00280101, 0x00280103, 0x7FE00001, 0x7FE00002}
)
_NATIVE = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian})


class NotDecodableHereError(ValueError):
    """The fast path does not apply (no File Meta transfer syntax, or no pixel data element): not damage."""


class PixelBoundError(ValueError):
    """Pixel data that is refused before decoding (size fields invalid, too large, or a deflate bomb)."""


def _count(opts: Mapping[str, Any], key: str, default: int | None = None) -> int:
    """A header count (rows, columns, ...) as a non-negative int; PixelBoundError when it is not one."""
    value = opts.get(key, default)
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if value.isdigit() else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PixelBoundError(f"invalid image size field {key}={value!r}")
    return value


def declared_bytes(opts: Mapping[str, Any], float_kind: str | None = None) -> int:
    """Decoded size in bytes that a header's image pixel fields declare, checked against the bound.

    Args:
        opts: pydicom pixel options (``rows``, ``columns``, ``number_of_frames``, ``samples_per_pixel``,
            ``bits_allocated``), e.g. from ``as_pixel_options``.
        float_kind: "FloatPixelData" or "DoubleFloatPixelData" when the pixels are floats (32/64 bit
            regardless of BitsAllocated), else None.

    Raises:
        PixelBoundError: a field is missing or not a count, or the size exceeds ``MAX_DECODED_BYTES``.
    """
    rows = _count(opts, "rows")
    columns = _count(opts, "columns")
    frames = _count(opts, "number_of_frames", 1) or 1
    samples = _count(opts, "samples_per_pixel", 1) or 1
    bits = {"FloatPixelData": 32, "DoubleFloatPixelData": 64}.get(float_kind or "") or _count(
        opts, "bits_allocated"
    )
    if rows == 0 or columns == 0 or bits == 0:
        raise PixelBoundError(f"empty image: Rows={rows}, Columns={columns}, BitsAllocated={bits}")
    size = rows * columns * frames * samples * max(1, (bits + 7) // 8)
    if size > MAX_DECODED_BYTES:
        raise PixelBoundError(
            f"header declares {rows} x {columns} pixels x {frames} frame(s) x {samples} sample(s) "
            f"at {bits} bits ({size} bytes), more than the {MAX_DECODED_BYTES} bytes allowed per file"
        )
    return size


def check_dataset(ds: Dataset) -> None:
    """Check a fully read dataset's declared pixel size (and native pixel data length) before decoding.

    Raises:
        PixelBoundError: see :func:`declared_bytes`; also when uncompressed pixel data is shorter.
    """
    try:
        opts = as_pixel_options(ds)
    except Exception as error:  # pydicom converts the raw values here and raises many types
        raise PixelBoundError(f"invalid image pixel fields ({type(error).__name__})") from None
    found = next(((tag, name) for tag, name in _PIXEL_TAGS.items() if tag in ds), None)
    kind = found[1] if found else None
    size = declared_bytes(opts, kind if kind != "PixelData" else None)
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax in _NATIVE and found is not None:
        raw = ds.get_item(found[0]).value
        present = len(raw) if isinstance(raw, bytes | bytearray) else None
        if present is not None and present < size:
            raise PixelBoundError(f"pixel data holds {present} bytes, the header declares {size}")


def transfer_syntax_of(ds: Dataset) -> UID:
    """The transfer syntax of a dataset read with ``dcmread(force=True)``: from its File Meta, else the
    encoding pydicom detected while reading it (how a file without File Meta is decoded)."""
    syntax = getattr(ds, "file_meta", FileMetaDataset()).get("TransferSyntaxUID")
    if syntax:
        return UID(str(syntax))
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def open_dataset(source: BinaryIO) -> tuple[FileMetaDataset, BinaryIO, UID | None]:
    """Skip the preamble and read the File Meta; inflate a deflated dataset within bounds.

    Args:
        source: The whole file, positioned anywhere.

    Returns:
        The File Meta, a stream positioned at the first dataset element, and the transfer syntax of
        that stream (None when the file has no File Meta transfer syntax).

    Raises:
        PixelBoundError: a deflated dataset inflates beyond its bound.
        Exception: pydicom's errors for a damaged preamble or File Meta.
    """
    source.seek(0)
    read_preamble(source, force=True)
    meta = _read_file_meta_info(source)
    syntax = meta.get("TransferSyntaxUID")
    if not syntax:
        return meta, source, None
    syntax = UID(str(syntax).strip("\0 "))
    if syntax == DeflatedExplicitVRLittleEndian:
        return meta, io.BytesIO(inflate_bounded(source.read())), ExplicitVRLittleEndian
    return meta, source, syntax


def decode(source: BinaryIO, specific_tags: list[int]) -> tuple[Dataset, np.ndarray]:
    """Header elements and decoded pixels of one DICOM file, with the bounds checked first.

    The header is read up to the pixel data keeping only ``specific_tags`` (and the image pixel
    module); the declared size is checked; then pydicom's decoder runs (native data as a read-only view;
    JPEG 2000 with the multi-threaded plugin of :mod:`napari_elnet.io.jpeg2000`).

    Raises:
        PixelBoundError: the declared size is invalid or too large, or native data is too short.
        NotDecodableHereError: no File Meta transfer syntax, or the dataset ends without pixel data.
        Exception: pydicom's errors for a damaged header, a missing decoder or bad pixel data.
    """
    meta, stream, syntax = open_dataset(source)
    if syntax is None:
        raise NotDecodableHereError("no File Meta transfer syntax")
    ds = read_dataset(
        stream,
        is_implicit_VR=syntax.is_implicit_VR,
        is_little_endian=syntax.is_little_endian,
        stop_when=_at_pixel_data,
        specific_tags=sorted(set(specific_tags) | _IMAGE_PIXEL_TAGS),
    )
    ds.file_meta = meta
    head = stream.read(8)
    if len(head) < 8:
        raise NotDecodableHereError("no pixel data")
    order = "<" if syntax.is_little_endian else ">"
    opts: dict[str, Any] = as_pixel_options(ds, view_only=True)
    opts["transfer_syntax_uid"] = syntax
    if syntax.is_implicit_VR:
        group, element, length = struct.unpack(f"{order}HHL", head)
    else:
        group, element, vr = struct.unpack(f"{order}HH2s", head[:6])
        opts["pixel_vr"] = vr.decode("latin-1")
        (length,) = struct.unpack(f"{order}L", stream.read(4).ljust(4, b"\0"))
    kind = _PIXEL_TAGS.get(group << 16 | element)
    if kind is None:
        raise ValueError(f"unexpected element ({group:04X},{element:04X}) at the pixel data")
    opts["pixel_keyword"] = kind
    size = declared_bytes(opts, kind if kind != "PixelData" else None)
    if not syntax.is_compressed:
        present = min(length, _remaining(stream))
        if present < size:
            raise PixelBoundError(f"pixel data holds {present} bytes, the header declares {size}")
    pixels, _ = get_decoder(syntax).as_array(
        stream,
        index=None,
        validate=True,
        raw=False,
        decoding_plugin=jpeg2000.plugin_for(syntax),
        **opts,
    )
    return ds, pixels


def _remaining(stream: BinaryIO) -> int:
    """Bytes left in a seekable stream from its current position."""
    here = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(here)
    return end - here


def inflate_bounded(deflated: bytes) -> bytes:
    """Inflate a deflated DICOM dataset, never beyond the size its own header declares.

    First inflates in doubling steps until the header up to the pixel data element can be read (at
    most ``MAX_HEADER_BYTES``); then at most the declared pixel size plus ``TRAILER_ALLOWANCE``.

    Args:
        deflated: The raw deflate stream (everything after the File Meta).

    Returns:
        The inflated dataset bytes (explicit VR little endian).

    Raises:
        PixelBoundError: the header is larger than allowed, declares an invalid or too large image,
            or the stream inflates beyond the declared size.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    pending = deflated
    step = _FIRST_INFLATE
    bound: int | None = None
    while True:
        limit = bound if bound is not None else min(len(out) + step, MAX_HEADER_BYTES)
        try:
            out += inflater.decompress(pending, limit - len(out) + 1)
        except zlib.error as error:
            raise PixelBoundError(f"deflated data is corrupt ({error})") from None
        pending = inflater.unconsumed_tail
        finished = inflater.eof or not pending
        if bound is not None:
            if len(out) > bound:
                raise PixelBoundError(
                    f"deflated data inflates beyond the {bound} bytes its header declares"
                )
            if finished:
                return bytes(out)
            continue
        header_end = _pixel_data_end(bytes(out))
        if header_end is not None:
            bound = header_end + TRAILER_ALLOWANCE
            if len(out) > bound:
                raise PixelBoundError(
                    f"deflated data inflates beyond the {bound} bytes its header declares"
                )
        elif not finished and len(out) > MAX_HEADER_BYTES:
            raise PixelBoundError(
                f"deflated header is larger than {MAX_HEADER_BYTES} bytes before any pixel data"
            )
        if finished:
            return bytes(out)
        step *= 2


def _pixel_data_end(data: bytes) -> int | None:
    """Offset just past the pixel data the header in ``data`` declares, or None before the header ends.

    Raises:
        PixelBoundError: the declared image size is invalid or too large.
    """
    stream = io.BytesIO(data)
    try:
        ds = read_dataset(
            stream,
            is_implicit_VR=False,
            is_little_endian=True,
            stop_when=_at_pixel_data,
            specific_tags=sorted(_IMAGE_PIXEL_TAGS),
        )
    except Exception:  # a header cut off mid-element: not complete yet
        return None
    start = stream.tell()
    if len(data) < start + 12:
        return None
    tag = int.from_bytes(data[start : start + 2], "little") << 16 | int.from_bytes(
        data[start + 2 : start + 4], "little"
    )
    if tag not in _PIXEL_TAGS:
        return None
    try:
        opts = as_pixel_options(ds)
    except Exception as error:  # pydicom converts raw values here and raises many types
        raise PixelBoundError(f"invalid image pixel fields ({type(error).__name__})") from None
    kind = _PIXEL_TAGS[tag]
    size = declared_bytes(opts, kind if kind != "PixelData" else None)
    # Encapsulated (compressed) data may exceed the decoded size by its item framing and, for
    # incompressible content, by a few percent (RLE at most 1/128): allow an eighth more.
    frames = _count(opts, "number_of_frames", 1) or 1
    return start + 12 + size + size // 8 + 8 * frames + 16
