"""``napari-elnet predict`` end to end on series of 1, 2 and 3 slices (issue 10: S = 1 failed in FullGrad).

The shipped default models run on generated axial DICOM series of S slices and, when
``../shared/data`` is present, on one unmodified scanner slice. Series of fewer than
``MIN_SLICES`` (3) slices are passed over by the automatic choice (localizers), so the models are
forced onto them with ``--series``; without it such a study still exits 0 with no probability.
Each run exits 0, its JSON is strict JSON (no NaN/inf), every probability is in [0, 1] or withheld
as not applicable, the top slice lies in the series and the heatmap has one plane per slice.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.dicom_factory import AXIAL, write_stack
from support.synthetic_data import single_thread

from napari_elnet.cli import main
from napari_elnet.common.series import MIN_SLICES

one_thread = pytest.fixture(single_thread, autouse=True)


def _strict_json(path: Path) -> dict:
    def refuse(constant: str) -> float:
        raise ValueError(f"non-finite JSON number {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _check(record: dict, slices: int, heatmaps: Path) -> None:
    """Every forced model ran (FullGrad included): a top slice in the series, one finite heatmap plane
    per slice; its probability is in [0, 1] or withheld as not applicable (None), never NaN."""
    ran = [r for r in record["results"] if r["top_slice"] is not None]
    assert ran, record
    for result in ran:
        assert result["probability"] is None or 0.0 <= result["probability"] <= 1.0
        assert 0 <= result["top_slice"] < slices
        heatmap = np.load(heatmaps / f"{result['task']}_heatmap.npy")
        assert heatmap.shape[0] == slices
        assert np.all(np.isfinite(heatmap))


@pytest.mark.parametrize("slices", [1, 2, 3])
def test_predict_on_a_series_of_s_slices(tmp_path: Path, slices: int) -> None:
    study = tmp_path / "study"
    write_stack(study, slices, orientation=AXIAL, size=(64, 64))
    out = tmp_path / "out"

    code = main(
        ["predict", str(study), "--series", "acl=0", "abnormal=0", "--json", str(out / "r.json"),
         "--heatmaps", str(out / "maps"), "--device", "cpu"]
    )  # fmt: skip

    assert code == 0
    _check(_strict_json(out / "r.json"), slices, out / "maps")
    if slices < MIN_SLICES:  # the automatic choice passes it over: an answer, not a crash
        assert main(["predict", str(study), "--json", str(out / "auto.json")]) == 0
        record = _strict_json(out / "auto.json")
        assert all(r["probability"] is None for r in record["results"])


def test_predict_on_one_unmodified_scanner_slice(knee_dir: Path, tmp_path: Path) -> None:
    study = tmp_path / "one"
    study.mkdir()
    shutil.copy(sorted(knee_dir.glob("*.dcm"))[10], study)
    out = tmp_path / "out"

    code = main(
        ["predict", str(study), "--series", "acl=0", "--json", str(out / "r.json"),
         "--heatmaps", str(out / "maps"), "--device", "cpu"]
    )  # fmt: skip

    assert code == 0
    record = _strict_json(out / "r.json")
    (acl,) = [r for r in record["results"] if r["task"] == "acl"]
    # the model ran (FullGrad included); its probability may be withheld as not applicable
    # (a sagittal slice for an axial model), never NaN
    assert acl["probability"] is None or 0.0 <= acl["probability"] <= 1.0
    assert acl["top_slice"] == 0
    heatmap = np.load(out / "maps" / "acl_heatmap.npy")
    assert heatmap.shape[0] == 1
    assert np.all(np.isfinite(heatmap))
