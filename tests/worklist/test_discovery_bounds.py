"""Study discovery reads headers within bounds (issue 10): a deflate bomb and a FIFO in a triage folder
are per-file problems, never a 7 GiB inflate or a blocked open; the other studies are found."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from support.worklist_factory import write_dicom_study

from napari_elnet.worklist import discover_studies

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fuzz.mutate import deflate_bomb, zero_bomb


def test_deflate_bomb_and_fifo_are_problems(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (good,) = write_dicom_study(root / "case0", "1.2.826.0.1.3680043.8.498.401", slices=1)
    import random

    bomb, _ = deflate_bomb(random.Random(0), good.read_bytes(), zero_bomb(256 * 2**20))
    (root / "case1").mkdir()
    (root / "case1" / "bomb.dcm").write_bytes(bomb)
    os.mkfifo(root / "case1" / "pipe.dcm")

    discovery = discover_studies(root)

    assert len(discovery.studies) == 1
    reasons = {p.path.name: p.reason for p in discovery.problems}
    assert "inflates beyond" in reasons["bomb.dcm"]
    assert "named pipe" in reasons["pipe.dcm"]
