"""Node settings: secure defaults and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.node.config import NodeConfig, Peer


def test_defaults_listen_on_loopback_with_bounded_resources(tmp_path: Path) -> None:
    config = NodeConfig(store=tmp_path)
    assert (config.host, config.port, config.ae_title, config.allow) == (
        "127.0.0.1", 11112, "ELNET", ()
    )  # fmt: skip
    assert config.max_pdu == 256 * 1024
    assert config.max_associations == 4
    assert config.max_study_bytes == 2 * 1024**3


def test_peer_parse() -> None:
    assert Peer.parse("PACS@10.0.0.5:104") == Peer("PACS", "10.0.0.5", 104)
    assert Peer.parse("ORTHANC@[::1]:4242") == Peer("ORTHANC", "::1", 4242)
    assert str(Peer("A", "h", 1)) == "A@h:1"


@pytest.mark.parametrize(
    "text", ["PACS", "PACS@host", "@host:1", "PACS@host:99999", "X" * 17 + "@h:1"]
)
def test_bad_peers_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError):
        Peer.parse(text)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ae_title", "", "AE title"),
        ("ae_title", "A" * 17, "AE title"),
        ("allow", ("OK", "BAD\\AET"), "allowed AE title"),
        ("port", 70000, "port"),
        ("max_pdu", 100, "max_pdu"),
        ("max_associations", 0, "max_associations"),
        ("stable_seconds", -1.0, "stable_seconds"),
    ],
)
def test_bad_settings_name_the_field(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        NodeConfig(store=tmp_path, **{field: value})  # type: ignore[arg-type]


def test_a_refusal_says_whether_the_peer_answered() -> None:
    """'association for C-FIND not accepted' once covered a closed port and a rejection alike."""
    peer = Peer("PACS", "10.0.0.5", 104)
    assert peer.refusal("C-FIND", rejected=False, calling_ae="ELNET") == (
        "PACS@10.0.0.5:104: association for C-FIND not accepted: no DICOM peer answered at "
        "10.0.0.5:104 (refused, timed out or aborted)"
    )
    assert "does it know our AE title ELNET?" in peer.refusal("C-GET", True, "ELNET")
