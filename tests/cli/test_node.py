"""``serve`` and ``pull`` on the command line: clear one-line errors with exit status 2."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.worklist_factory import make_models

from napari_elnet.cli import EXIT_UNUSABLE, main


def test_serve_on_a_port_in_use_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = make_models(tmp_path / "models", [("acl", "axial")])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["serve", "--store", str(tmp_path / "store"), "--port", str(port)]
        code = main([*argv, "--model", str(models[0].path)])
    assert code == EXIT_UNUSABLE
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_an_unwritable_store_or_report_is_refused_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    runs = (
        ["serve", "--store", str(blocker), "--port", "0"],
        ["serve", "--store", str(tmp_path / "store"), "--report", str(blocker / "r.csv")],
        ["pull", "--from", "PACS@127.0.0.1:1", "--store", str(blocker / "s")],
    )
    for argv in runs:
        assert main(argv) == EXIT_UNUSABLE
        err = capsys.readouterr().err
        assert err.startswith(f"napari-elnet: cannot write {blocker}") and err.count("\n") == 1
    assert blocker.read_text() == "x"


def test_pull_from_a_closed_port_is_one_line_saying_nothing_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pynetdicom's leaked socket came out as a ResourceWarning and its source line."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["pull", "--from", f"PACS@127.0.0.1:{port}", "--store", str(tmp_path / "s"), "--list"]
    assert main(argv) == EXIT_UNUSABLE
    err = capsys.readouterr().err
    assert err == (
        f"napari-elnet: PACS@127.0.0.1:{port}: association for C-FIND not accepted: no DICOM "
        f"peer answered at 127.0.0.1:{port} (refused, timed out or aborted)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pull", "--from", "PACS@host", "--store", "S"], "expected AET@HOST:PORT"),
        (["serve", "--store", "S", "--ae-title", "A" * 17], "AE title"),
        (["serve", "--store", "S", "--send-to", "nowhere"], "expected AET@HOST:PORT"),
        (["serve", "--store", "S", "--report", "r.txt"], "suffix must be one of"),
    ],
)
def test_bad_arguments_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [str(tmp_path / a) if a == "S" else a for a in argv]
    assert main(argv) == EXIT_UNUSABLE
    assert message in capsys.readouterr().err
