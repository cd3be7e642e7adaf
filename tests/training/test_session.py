"""The training session: open a data folder, train, stop or fail, say what was left behind."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from support.synthetic_data import single_thread, write_mrnet

from napari_elnet.common.steps import run_to_end
from napari_elnet.models.model_file import load_model
from napari_elnet.training.config import TrainConfig
from napari_elnet.training.loop import TrainProgress
from napari_elnet.training.session import eta_seconds, open_training_data, training_session

one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MRNet-layout data set: 6 training and 4 validation cases of 3 slices."""
    root = tmp_path_factory.mktemp("session") / "mrnet"
    return write_mrnet(root, {"train": [0, 1, 0, 1, 0, 1], "valid": [0, 1, 1, 0]}, slices=3)


def _config(epochs: int) -> TrainConfig:
    return TrainConfig.for_task("acl", k=1, epochs=epochs, lr=1e-3, device="cpu")


def test_a_run_yields_its_description_then_progress_and_keeps_the_best_epoch(
    data: Path, tmp_path: Path
) -> None:
    files_before = sorted(data.rglob("*"))
    seen: list[str | TrainProgress] = []
    out = tmp_path / "acl.pt"
    outcome = run_to_end(training_session(_config(2), data, out), seen.append)
    assert seen[0] == open_training_data(data, _config(2)).description
    assert isinstance(seen[0], str) and "; validating on " in seen[0]
    assert all(isinstance(p, TrainProgress) for p in seen[1:])
    assert {"prepare", "train", "validate"} <= {p.phase for p in seen[1:]}  # type: ignore[union-attr]
    assert not outcome.stopped and outcome.error == ""
    assert outcome.path == out and out.is_file()
    assert outcome.result is not None and outcome.result.epochs_completed == 2
    assert [int(r["epoch"]) for r in outcome.history] == [1, 2]
    assert outcome.best_epoch in (1, 2)
    assert load_model(out).info.metrics == outcome.metrics
    assert outcome.metrics["n"] == 4.0  # the MRNet valid split, not a held-out share
    assert sorted(data.rglob("*")) == files_before  # nothing written into the data folder


def test_without_the_valid_split_a_share_of_the_training_cases_is_held_out(
    data: Path, tmp_path: Path
) -> None:
    config = _config(1)
    opened = open_training_data(data, config, valid_split=False)
    assert opened.valid_set is None
    assert opened.description.endswith(f"{config.val_fraction:.0%} held out for validation")
    assert open_training_data(data, config).valid_set is not None


def test_cancel_after_a_validation_stops_at_the_next_step_and_keeps_the_checkpoint(
    data: Path, tmp_path: Path
) -> None:
    cancel = threading.Event()
    after_cancel: list[TrainProgress] = []

    def stop_after_first_validation(item: str | TrainProgress) -> None:
        if cancel.is_set():
            after_cancel.append(item)  # type: ignore[arg-type]
        elif isinstance(item, TrainProgress) and item.metrics:
            cancel.set()

    out = tmp_path / "acl.pt"
    session = training_session(_config(50), data, out, cancel=cancel)
    outcome = run_to_end(session, stop_after_first_validation)
    assert after_cancel == []  # not one more step once the flag was set
    assert outcome.stopped and outcome.error == ""
    assert outcome.path == out and outcome.best_epoch == 1
    assert load_model(out).info.provenance["best_epoch"] == 1


def test_cancel_before_the_first_validation_leaves_no_model(data: Path, tmp_path: Path) -> None:
    cancel = threading.Event()

    def stop_at_once(item: str | TrainProgress) -> None:
        cancel.set()

    outcome = run_to_end(
        training_session(_config(50), data, tmp_path / "acl.pt", cancel=cancel), stop_at_once
    )
    assert outcome.stopped and outcome.path is None and outcome.best_epoch is None
    assert not (tmp_path / "acl.pt").exists()


def test_unusable_data_ends_the_session_with_the_reason_instead_of_raising(
    tmp_path: Path,
) -> None:
    one_class = write_mrnet(tmp_path / "mrnet", {"train": [0, 0, 0, 0], "valid": [0, 1]})
    outcome = run_to_end(training_session(_config(1), one_class, tmp_path / "out.pt"))
    assert "needs both classes" in outcome.error
    assert outcome.stopped and outcome.path is None
    missing = run_to_end(training_session(_config(1), tmp_path / "nowhere", tmp_path / "o.pt"))
    assert "not found" in missing.error


def _progress(phase: str, epoch: int, step: int, elapsed: float) -> TrainProgress:
    return TrainProgress(
        phase=phase,
        epoch=epoch,
        epochs=4,
        step=step,
        steps=10,
        loss=0.5,
        metrics={},
        elapsed=elapsed,
        volumes_per_s=1.0,
        best_epoch=None,
    )


def test_eta_extrapolates_the_epochs_done_since_training_started() -> None:
    assert math.isnan(eta_seconds(_progress("prepare", 0, 3, 5.0), None))
    assert math.isnan(eta_seconds(_progress("train", 1, 5, 5.0), None))
    # half of epoch 1 of 4 took 10 s (from 5 s to 15 s): 3.5 epochs remain, 70 s
    assert eta_seconds(_progress("train", 1, 5, 15.0), 5.0) == pytest.approx(70.0)
    # validating epoch 2 counts epoch 2 as done: 2 epochs in 20 s, 2 remain, 20 s
    assert eta_seconds(_progress("validate", 2, 1, 25.0), 5.0) == pytest.approx(20.0)
