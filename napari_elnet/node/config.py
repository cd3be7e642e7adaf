"""Settings of the DICOM node: who it is, where it listens, whom it admits, and its limits.

Defaults are the secure ones: the node listens on loopback only, keeps at most 4 associations open,
accepts PDUs of at most 256 KiB and at most 2 GiB per study, and calls a study complete 5 s after its
last instance (Orthanc's ``StableAge`` idea, shorter because a knee study arrives in one burst).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from napari_elnet.common.errors import ConfigurationError

AE_TITLE_MAX = 16
DEFAULT_AE_TITLE = "ELNET"
DEFAULT_PORT = 11112
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_PDU = 256 * 1024
DEFAULT_MAX_ASSOCIATIONS = 4
DEFAULT_MAX_STUDY_BYTES = 2 * 1024**3
DEFAULT_STABLE_SECONDS = 5.0
_AE_CHARS = re.compile(r"^[\x20-\x5b\x5d-\x7e]+$")  # default character repertoire without backslash
_PEER = re.compile(r"^(?P<aet>[^@]+)@(?P<host>[^:@]+|\[[0-9a-fA-F:]+\]):(?P<port>\d+)$")


def check_ae_title(title: str, what: str = "AE title") -> str:
    """``title`` stripped, or ConfigurationError when it is empty, too long or has control characters."""
    text = title.strip()
    if not text or len(text) > AE_TITLE_MAX or not _AE_CHARS.match(text):
        raise ConfigurationError(
            f"{what} {title!r}: must be 1-{AE_TITLE_MAX} printable characters without backslash"
        )
    return text


def check_port(port: int, what: str = "port") -> int:
    """``port`` when in 0..65535 (0: any free port), else ConfigurationError."""
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"{what} must be in 0..65535, got {port}")
    return port


@dataclass(frozen=True)
class Peer:
    """A remote DICOM application entity (a PACS, a scanner, an Orthanc).

    Attributes:
        ae_title: Its AE title (called AE title of our requests).
        host: Host name or IP address.
        port: TCP port of its DICOM listener.
    """

    ae_title: str
    host: str
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", check_ae_title(self.ae_title, "remote AE title"))
        check_port(self.port, "remote port")
        if not self.host:
            raise ConfigurationError("remote host is empty")

    @classmethod
    def parse(cls, text: str) -> Peer:
        """A peer from ``AET@HOST:PORT`` (IPv6 hosts in brackets)."""
        match = _PEER.match(text.strip())
        if match is None:
            raise ConfigurationError(
                f"remote {text!r}: expected AET@HOST:PORT, e.g. PACS@10.0.0.5:104"
            )
        host = match["host"].strip("[]")
        return cls(match["aet"], host, int(match["port"]))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"

    def refusal(self, service: str, rejected: bool, calling_ae: str) -> str:
        """Why an association with this peer for ``service`` (``C-FIND``...) was not established.

        Args:
            service: What the association was for.
            rejected: The peer answered and rejected it (pynetdicom's ``is_rejected``); False when
                nothing answered, or the connection was aborted.
            calling_ae: Our AE title, which a peer rejects when it does not know it.
        """
        if rejected:
            why = f"the peer rejected it (does it know our AE title {calling_ae}?)"
        else:
            why = (
                f"no DICOM peer answered at {self.host}:{self.port} (refused, timed out or aborted)"
            )
        return f"{self}: association for {service} not accepted: {why}"


@dataclass(frozen=True)
class NodeConfig:
    """Everything the receiver needs to know.

    Attributes:
        store: Folder of received instances, ``store/<study>/<series>/<instance>.dcm``.
        ae_title: Our AE title (the called AE title peers use).
        host: Interface to listen on; loopback unless set otherwise.
        port: TCP port (0: any free port, see ``Receiver.port``).
        allow: Calling AE titles admitted; empty: any.
        max_pdu: Largest PDU we accept (bytes); a longer one aborts its association.
        max_associations: Associations served at the same time; more are rejected.
        max_study_bytes: Bytes stored per study; instances beyond it get status A700 (out of resources).
        stable_seconds: A study is complete this many seconds after its last instance.
        network_timeout: Seconds a silent peer keeps its association before it is dropped.
    """

    store: Path
    ae_title: str = DEFAULT_AE_TITLE
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allow: tuple[str, ...] = ()
    max_pdu: int = DEFAULT_MAX_PDU
    max_associations: int = DEFAULT_MAX_ASSOCIATIONS
    max_study_bytes: int = DEFAULT_MAX_STUDY_BYTES
    stable_seconds: float = DEFAULT_STABLE_SECONDS
    network_timeout: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", Path(self.store))
        object.__setattr__(self, "ae_title", check_ae_title(self.ae_title))
        object.__setattr__(
            self, "allow", tuple(check_ae_title(a, "allowed AE title") for a in self.allow)
        )
        check_port(self.port)
        if self.max_pdu < 4096:
            raise ConfigurationError(f"max_pdu must be >= 4096 bytes, got {self.max_pdu}")
        if self.max_associations < 1:
            raise ConfigurationError(f"max_associations must be >= 1, got {self.max_associations}")
        if self.max_study_bytes < 1:
            raise ConfigurationError(f"max_study_bytes must be >= 1, got {self.max_study_bytes}")
        if self.stable_seconds < 0:
            raise ConfigurationError(f"stable_seconds must be >= 0, got {self.stable_seconds}")
        if self.network_timeout <= 0:
            raise ConfigurationError(f"network_timeout must be > 0, got {self.network_timeout}")
