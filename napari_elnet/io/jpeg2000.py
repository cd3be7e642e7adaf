"""Multi-threaded JPEG 2000 decoding: a pydicom decoding plugin around imagecodecs' OpenJPEG.

pylibjpeg-openjpeg (pydicom's default JPEG 2000 plugin) decodes a frame on one core and holds the
GIL; imagecodecs' ``jpeg2k_decode`` runs OpenJPEG's multi-threaded decoder (code blocks and the
wavelet transform on ``numthreads`` threads, GIL released), which is what lets a 2-core machine
load a JPEG 2000 series about as fast as SimpleITK's series reader.

The plugin plugs into pydicom's decoder framework (``Decoder.add_plugin``), so pydicom still does
everything around the codec exactly as for pylibjpeg: frame extraction, the precision and
signedness read from the codestream, the sign correction, the YBR_ICT/YBR_RCT -> RGB photometric
change, the checks of the decoded length and the reshaping. The plugin only replaces the codec call,
and only for what it was checked to decode identically:

- a bare codestream (SOC, then SIZ: DICOM Part 5 A.4.4); a JP2-wrapped frame goes to
  pylibjpeg-openjpeg (its public ``decode_pixel_data``, as pydicom's own plugin calls it);
- components without subsampling, all of one precision (1-16 bits) and signedness; else
  pylibjpeg-openjpeg;
- the image size in SIZ equal to the header's Rows x Columns x SamplesPerPixel: anything else is
  refused (ValueError) before OpenJPEG allocates, so decoding never grows past the size the header
  declares (which :mod:`napari_elnet.io.dicom_pixels` bounds first).

The plugin is registered on first use (:func:`plugin_for`), never at import time, and only added
after pydicom's own plugins: ``Dataset.pixel_array`` elsewhere keeps pydicom's choice.
"""

from __future__ import annotations

import threading
from typing import Any

from pydicom.pixels import get_decoder
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless

from napari_elnet.common.cpus import usable_cpus

#: Label of the plugin in pydicom's JPEG 2000 decoders.
PLUGIN = "napari-elnet-imagecodecs"
#: Transfer syntaxes the plugin decodes (HTJ2K stays with pydicom's plugins).
SYNTAXES = frozenset({JPEG2000Lossless, JPEG2000})
#: Most decoder threads one frame uses.
MAX_THREADS = 4
#: pydicom's plugin interface: what the plugin needs when it is unavailable.
DECODER_DEPENDENCIES = {uid: ("imagecodecs>=2024.1",) for uid in SYNTAXES}

_SOC_SIZ = b"\xff\x4f\xff\x51"
_lock = threading.Lock()
_registered: dict[UID, bool] = {}
_threads: int | None = None


def is_available(uid: str) -> bool:
    """pydicom's plugin interface: whether imagecodecs (with OpenJPEG) can decode ``uid``."""
    if uid not in SYNTAXES:
        return False
    try:
        import imagecodecs
    except ImportError:
        return False
    return bool(imagecodecs.JPEG2K.available)


def plugin_for(syntax: UID) -> str:
    """The decoding plugin to ask pydicom for: :data:`PLUGIN` when it decodes ``syntax``, else ""
    (pydicom's own choice). Registers the plugin with pydicom on the first call for a syntax."""
    if syntax not in SYNTAXES:
        return ""
    with _lock:
        if syntax not in _registered:
            decoder = get_decoder(syntax)
            if PLUGIN not in decoder.available_plugins and not _listed_missing(decoder):
                decoder.add_plugin(PLUGIN, (__name__, "decode_frame"))
            _registered[syntax] = PLUGIN in decoder.available_plugins
    return PLUGIN if _registered[syntax] else ""


def _listed_missing(decoder: Any) -> bool:
    """Whether pydicom already lists the plugin among its unavailable ones (imagecodecs absent)."""
    return any(entry.startswith(f"{PLUGIN} - ") for entry in decoder.missing_dependencies)


def set_threads(threads: int | None) -> None:
    """Decoder threads per frame: ``threads``, or None for the usable CPUs (at most MAX_THREADS).

    A worker process that decodes files beside other workers sets 1.
    """
    global _threads
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    _threads = threads


def decoder_threads() -> int:
    """Decoder threads one frame uses (see :func:`set_threads`)."""
    if _threads is not None:
        return _threads
    return max(1, min(usable_cpus(), MAX_THREADS))


def codestream_size(src: bytes) -> tuple[int, int, int, int, bool] | None:
    """Rows, columns, components, precision and signedness from a bare codestream's SIZ segment.

    Returns:
        None when ``src`` is not a bare codestream whose components all share one precision and
        signedness without subsampling (the frame is then left to pydicom's plugin).
    """
    if src[:4] != _SOC_SIZ or len(src) < 45:
        return None
    xsiz, ysiz, xosiz, yosiz = (int.from_bytes(src[i : i + 4], "big") for i in (8, 12, 16, 20))
    components = int.from_bytes(src[40:42], "big")
    if components < 1 or len(src) < 42 + 3 * components or xsiz <= xosiz or ysiz <= yosiz:
        return None
    specs = {bytes(src[42 + 3 * i : 45 + 3 * i]) for i in range(components)}
    if len(specs) != 1:
        return None
    ssiz, xrsiz, yrsiz = next(iter(specs))
    precision = (ssiz & 0x7F) + 1
    if (xrsiz, yrsiz) != (1, 1) or precision > 16:
        return None
    return ysiz - yosiz, xsiz - xosiz, components, precision, bool(ssiz & 0x80)


def decode_frame(src: bytes, runner: Any) -> bytes | bytearray:
    """pydicom's plugin interface: one decoded frame, laid out as pylibjpeg-openjpeg lays it out.

    Samples interleaved (colour-by-pixel), 1 byte per sample up to 8 bits of precision, else 2,
    little endian, two's complement when the codestream is signed; sets the runner options that
    pydicom's pylibjpeg plugin sets.

    Raises:
        ValueError: the codestream's image size differs from the header's.
        imagecodecs.Jpeg2kError: OpenJPEG could not decode the frame.
    """
    size = codestream_size(src)
    if size is None:
        return _decode_with_openjpeg(src, runner)
    rows, columns, components, precision, _ = size
    declared = (runner.rows, runner.columns, runner.samples_per_pixel)
    if (rows, columns, components) != declared:
        raise ValueError(
            f"the JPEG 2000 codestream holds {rows} x {columns} x {components} samples, the "
            f"header declares {declared[0]} x {declared[1]} x {declared[2]}"
        )
    import imagecodecs

    pixels = imagecodecs.jpeg2k_decode(src, numthreads=decoder_threads())
    if pixels.dtype.itemsize != (1 if precision <= 8 else 2):  # before any runner option changes
        raise ValueError(f"OpenJPEG returned {pixels.dtype} for {precision}-bit samples")
    _set_layout(runner, precision)
    return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


def _decode_with_openjpeg(src: bytes, runner: Any) -> bytearray:
    """A frame this plugin does not take (JP2-wrapped, subsampled, mixed or > 16-bit samples),
    decoded on one thread by pylibjpeg-openjpeg, laid out as pydicom's pylibjpeg plugin lays it."""
    import openjpeg

    frame = openjpeg.decode_pixel_data(src, version=2, **runner.options)
    if not isinstance(frame, bytearray):  # version 2 returns the frame's bytes
        raise ValueError(f"pylibjpeg-openjpeg returned {type(frame).__name__}, not bytes")
    _set_layout(runner, runner.get_option("j2k_precision", runner.bits_stored))
    return frame


def _set_layout(runner: Any, precision: int) -> None:
    """The runner options of a frame decoded by OpenJPEG: colour transforms undone (RGB), samples in
    1, 2 or 4 bytes by the codestream's precision."""
    from pydicom.pixels.common import PhotometricInterpretation as PI

    if runner.photometric_interpretation in (PI.YBR_ICT, PI.YBR_RCT):
        runner.set_option("photometric_interpretation", PI.RGB)
    if 0 < precision <= 32:
        runner.set_option("bits_allocated", 8 if precision <= 8 else 16 if precision <= 16 else 32)
