"""MRNet training volumes are read through the io reader (issue 10): a header claiming a huge shape is
an ElnetError naming the file, never a multi-GB allocation; a FIFO is refused without blocking."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from napari_elnet.common.errors import ElnetError
from napari_elnet.datasets.mrnet import read_mrnet


def _layout(root: Path) -> Path:
    folder = root / "train" / "axial"
    folder.mkdir(parents=True)
    (root / "train-acl.csv").write_text("0000,0\n0001,1\n")
    np.save(folder / "0000.npy", np.zeros((3, 8, 8), dtype=np.uint8))
    return folder


def test_huge_npy_header_is_refused_naming_the_file(tmp_path: Path) -> None:
    folder = _layout(tmp_path)
    raw = (folder / "0000.npy").read_bytes()
    (folder / "0001.npy").write_bytes(raw.replace(b"(3, 8, 8)", b"(3, 99999, 99999)"))
    cases = read_mrnet(tmp_path, "acl", "axial", "train").cases
    assert cases[0].volume().shape == (3, 8, 8)
    with pytest.raises(ElnetError, match=r"0001\.npy: cannot read volume .*declares shape"):
        cases[1].volume()


def test_fifo_volume_is_refused(tmp_path: Path) -> None:
    folder = _layout(tmp_path)
    os.mkfifo(folder / "0001.npy")
    with pytest.raises(ElnetError, match=r"case 0001 has no axial volume"):  # never opened
        read_mrnet(tmp_path, "acl", "axial", "train")
