"""Sending files to a remote application entity with C-STORE (results back to the PACS)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pynetdicom import AE, build_context

from napari_elnet.common.errors import ElnetError
from napari_elnet.node.config import Peer

LOGGER = logging.getLogger(__name__)


class SendError(ElnetError):
    """The remote AE refused the association or an instance, or could not be reached."""


def _contexts(paths: Sequence[Path]) -> list[tuple[str, str]]:
    """Distinct (SOP class, transfer syntax) pairs of the files, from their file meta only."""
    import pydicom

    pairs: list[tuple[str, str]] = []
    for path in paths:
        meta = pydicom.filereader.read_file_meta_info(path)
        pair = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def send_files(paths: Sequence[Path], peer: Peer, calling_ae: str, timeout: float = 30.0) -> int:
    """C-STORE every file to ``peer`` in one association; returns how many were stored.

    Args:
        paths: DICOM files (Part 10, with file meta).
        peer: The destination.
        calling_ae: Our AE title.
        timeout: Network, ACSE and DIMSE timeout (s).

    Raises:
        SendError: The association was not accepted, or a file got a failure status (the message
            names the file and the status).
    """
    if not paths:
        return 0
    ae = AE(ae_title=calling_ae)
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = timeout
    for sop_class, syntax in _contexts(paths):
        ae.requested_contexts = [*ae.requested_contexts, build_context(sop_class, syntax)]
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        raise SendError(peer.refusal("C-STORE", bool(assoc.is_rejected), calling_ae))
    sent = 0
    try:
        for path in paths:
            status = assoc.send_c_store(path)
            code = getattr(status, "Status", None)
            if code is None or code not in (0x0000, 0xB000, 0xB007, 0xB006):
                shown = "no response" if code is None else f"0x{int(code):04X}"
                raise SendError(f"{peer}: C-STORE of {path.name} failed ({shown})")
            sent += 1
    finally:
        if assoc.is_established:
            assoc.release()
    LOGGER.info("sent %d file(s) to %s", sent, peer)
    return sent
