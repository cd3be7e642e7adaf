"""``napari-elnet info`` and ``predict`` end to end, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_elnet.cli import main
from napari_elnet.models.model_file import ModelInfo, build_model, save_model


@pytest.fixture
def mrnet_case(tmp_path: Path) -> Path:
    """One MRNet-style axial volume in its plane folder."""
    folder = tmp_path / "data" / "axial"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(folder / "0001.npy", rng.integers(0, 255, (5, 256, 256), dtype=np.uint8))
    return folder / "0001.npy"


@pytest.fixture
def random_model(tmp_path: Path) -> Path:
    info = ModelInfo(task="acl", plane="axial", k=1, summary="randomly initialized")
    return save_model(tmp_path / "models" / "acl.pt", build_model(info, seed=0), info)


def test_info_json_on_stdout(mrnet_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(mrnet_case), "--json", "-"]) == 0
    record = json.loads(capsys.readouterr().out)
    (series,) = record["series"]
    assert series["plane"] == "axial"
    assert series["slices"] == 5
    assert series["size"] == [256, 256]


def test_unreadable_files_are_warnings_and_an_empty_folder_exits_2(
    mrnet_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = mrnet_case.parent / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 20)
    assert main(["info", str(mrnet_case.parent)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {broken}: ") and err.count("warning:") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["info", str(empty)]) == 2
    assert capsys.readouterr().err == (
        f"napari-elnet: {empty}: no DICOM or .npy image files found\n"
    )


def test_predict_table_json_and_heatmaps(
    mrnet_case: Path, random_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            str(mrnet_case),
            "--model",
            str(random_model),
            "--json",
            str(out / "r.json"),
            "--heatmaps",
            str(out / "maps"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["task", "plane", "series"]
    assert table[1].split()[0] == "acl"
    (result,) = json.loads((out / "r.json").read_text())["results"]
    assert 0.0 < result["probability"] < 1.0
    assert 0 <= result["top_slice"] < 5
    assert result["top_slice"] == int(np.argmax(result["relevance"]))
    heatmap = np.load(out / "maps" / "acl_heatmap.npy")
    assert heatmap.shape == (5, 256, 256)


def test_unusable_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["info", str(empty)]) == 2


def test_never_writes_into_the_input_folder(
    mrnet_case: Path, random_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = mrnet_case.parent / "report.json"
    code = main(
        ["predict", str(mrnet_case.parent), "--model", str(random_model), "--json", str(target)]
    )
    assert code == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in mrnet_case.parent.iterdir()) == ["0001.npy"]


def test_corrupt_model_exits_2(
    mrnet_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert main(["predict", str(mrnet_case), "--model", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_real_knee_info_and_predict(
    knee_dir: Path, random_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(knee_dir), "--json", str(tmp_path / "info.json")]) == 0
    (series,) = json.loads((tmp_path / "info.json").read_text())["series"]
    assert (series["plane"], series["slices"], series["size"]) == ("sagittal", 20, [512, 512])
    capsys.readouterr()
    assert main(["predict", str(knee_dir), "--model", str(random_model), "--json", "-"]) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)["results"]
    # Plane gate: an axial model is not run on a study with no axial series.
    assert result["applicable"] is False
    assert result["probability"] is None
    assert any("no axial series" in reason for reason in result["applicability"]["reasons"])
    # Run explicitly on the sagittal series, the result stays marked outside the model's plane.
    assert main(["predict", str(knee_dir), "--model", str(random_model), "--series", "acl=0"]) == 0
    captured = capsys.readouterr()
    assert "[outside plane]" in captured.out
    assert "trained on axial" in captured.err  # the plane mismatch is said, not hidden
    assert (
        main(
            [
                "predict",
                str(knee_dir),
                "--model",
                str(random_model),
                "--series",
                "acl=0",
                "--json",
                "-",
            ]
        )
        == 0
    )
    (forced,) = json.loads(capsys.readouterr().out)["results"]
    assert forced["series"].endswith("(sagittal)")
    assert forced["applicability"]["outside_plane"] is True


def test_info_counts_a_multi_frame_file_once(
    encodings_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explicit_little.dcm holds 16 frames: one file, not 16 (info said "files": 16)."""
    assert main(["info", str(encodings_dir / "explicit_little.dcm"), "--json", "-"]) == 0
    (series,) = json.loads(capsys.readouterr().out)["series"]
    assert (series["slices"], series["files"]) == (16, 1)
    assert main(["info", str(encodings_dir), "--json", "-"]) == 0
    records = json.loads(capsys.readouterr().out)["series"]
    assert sum(r["files"] for r in records) == len(list(encodings_dir.glob("*.dcm")))


def test_training_progress_keeps_one_line_per_epoch() -> None:
    import io
    from types import SimpleNamespace

    from napari_elnet.cli.progress import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(stream, interval=0.0)
    for epoch in (1, 2):
        for step in (1, 2):
            bar.update(
                SimpleNamespace(
                    fold=None,
                    epoch=epoch,
                    epochs=2,
                    phase="train",
                    step=step,
                    steps=2,
                    loss=0.5,
                    metrics={},
                    volumes_per_s=3.0,
                    elapsed=65.0,
                )
            )
    bar.finish()
    lines = [line.split("\r")[-1].strip() for line in stream.getvalue().strip().split("\n")]
    assert [line.split(" train")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert lines[1].endswith("3.0 vol/s | 1:05")
    assert "[########################] 2/2" in lines[1]


def test_an_output_that_cannot_be_written_is_refused_before_the_run(
    mrnet_case: Path, random_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file standing where a folder is needed: exit 2 before the model runs, one line naming it."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    cases = (
        ("--json", blocker / "r.json", f"{blocker} is a file, not a folder"),
        ("--heatmaps", blocker, "it is a file, not a folder"),
    )
    for option, target, reason in cases:
        code = main(["predict", str(mrnet_case), "--model", str(random_model), option, str(target)])
        captured = capsys.readouterr()
        assert code == 2
        assert captured.out == ""  # refused before any result
        assert captured.err == f"napari-elnet: cannot write {target}: {reason}\n"
    assert blocker.read_text() == "x"


def test_a_write_failing_mid_run_exits_1_naming_the_file(
    mrnet_case: Path, random_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OSError while writing (here a folder where a heatmap file goes): one line, no traceback."""
    maps = tmp_path / "maps"
    (maps / "acl_heatmap.npy").mkdir(parents=True)
    code = main(["predict", str(mrnet_case), "--model", str(random_model), "--heatmaps", str(maps)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("napari-elnet: ") and err.count("\n") == 1
    assert "acl_heatmap.npy" in err and "Traceback" not in err


def test_series_for_a_task_no_model_is_for_is_refused(
    mrnet_case: Path, random_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--series acll=0`` (a typo) was ignored: the automatic choice ran and the exit was 0."""
    code = main(["predict", str(mrnet_case), "--model", str(random_model), "--series", "acll=0"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == "napari-elnet: --series acll=0: no model for task 'acll' (tasks: acl)\n"
