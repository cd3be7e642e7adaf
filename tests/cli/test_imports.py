"""Commands that need no model (``--help``, ``info``, ``phantom``) do not import torch.

Each runs in a fresh interpreter that reports at exit whether ``torch`` was ever imported (the
first import of torch costs about a second, the biggest part of a model-free command's run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from napari_elnet.phantom import PhantomConfig, generate_study, write_dicom_study

PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules, file=sys.stderr))\n"
    "from napari_elnet.cli import main\n"
    "sys.argv[0] = 'napari-elnet'\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run ``napari-elnet ARGS`` in a fresh interpreter: exit status, stdout, the torch line."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    lines = done.stderr.strip().splitlines()
    return done.returncode, done.stdout, lines[-1] if lines else ""


def test_help_does_not_import_torch(tmp_path: Path) -> None:
    code, out, torch_line = run_cli("--help", cwd=tmp_path)
    assert code == 0 and "phantom" in out
    assert torch_line == "torch imported: False"


@pytest.mark.parametrize("fmt", ["mrnet", "dicom"])
def test_phantom_does_not_import_torch(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "data"
    code, stdout, torch_line = run_cli(
        "phantom", str(out), "--n", "1", "--format", fmt, cwd=tmp_path
    )
    assert code == 0, stdout
    assert torch_line == "torch imported: False"
    written = list(out.rglob("*.npy" if fmt == "mrnet" else "*.dcm"))
    assert len(written) >= 3  # three planes (a DICOM file per slice)


def test_info_does_not_import_torch(tmp_path: Path) -> None:
    study = generate_study(2, PhantomConfig(matrix=(32, 32), slices=(4, 4)))
    folder = write_dicom_study(study, tmp_path / "study")
    code, out, torch_line = run_cli("info", str(folder), cwd=tmp_path)
    assert code == 0 and out.count("PD FS") == 3
    assert torch_line == "torch imported: False"
