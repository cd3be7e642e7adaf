"""Crash safety of training (issue 10): SIGKILL mid-epoch leaves a loadable best checkpoint and a run
that resumes.

The run is a child process (forked, so nothing is imported again) training k = 1 ELNet on a tiny
phantom MRNet set; the child marks the start of epoch 2 and the parent kills it with SIGKILL while
that epoch's training steps run. Then, in this process:

1. the best checkpoint written after epoch 1 loads (``load_model``: schema and SHA-256 pass);
2. the resume sidecar loads and says one epoch is done;
3. no temporary file is left next to them that a later run could mistake for a model;
4. ``train(..., resume=...)`` finishes the run: epochs 1 and 2 in the history, exactly once each.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from support.synthetic_data import single_thread

from napari_elnet.datasets import open_dataset
from napari_elnet.models.model_file import load_model
from napari_elnet.phantom import PhantomConfig
from napari_elnet.phantom.writers import write_mrnet
from napari_elnet.training.loop import TrainConfig, TrainProgress, train
from napari_elnet.training.resume import load_resume, sidecar_path

one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)

TINY = {"task": "acl", "plane": "axial", "k": 1, "lr": 1e-3, "device": "cpu", "dropout": 0.2}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = PhantomConfig(
        slices=(3, 3), matrix=(64, 64), prevalence={"acl": 0.5, "meniscus": 0.5, "abnormal": 0.5}
    )
    return write_mrnet(
        tmp_path_factory.mktemp("phantom") / "mrnet",
        n=10,
        seed=3,
        config=config,
        valid_fraction=0.4,
    )


def _sets(data: Path):
    return open_dataset(data, "acl", "axial", "train"), open_dataset(data, "acl", "axial", "valid")


def _child(data: str, out: str, marker: str) -> None:
    """Train 2 epochs; touch ``marker`` at the first training step of epoch 2 (then keep going)."""
    import torch

    torch.set_num_threads(1)
    train_set, valid_set = _sets(Path(data))

    def mark(progress: TrainProgress) -> None:
        if progress.phase == "train" and progress.epoch == 2 and progress.step >= 1:
            Path(marker).touch()
            time.sleep(0.05)  # stay mid-epoch long enough to be killed there

    train(TrainConfig(**TINY, epochs=2), train_set, Path(out), valid_set, callback=mark)


def test_sigkill_mid_epoch_keeps_the_best_checkpoint_and_resumes(
    data: Path, tmp_path: Path
) -> None:
    out, marker = tmp_path / "run" / "model.pt", tmp_path / "epoch2"
    child = multiprocessing.get_context("fork").Process(
        target=_child, args=(str(data), str(out), str(marker))
    )
    child.start()
    deadline = time.monotonic() + 240
    while not marker.exists() and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the child never reached epoch 2"
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(30)
    assert child.exitcode == -signal.SIGKILL

    best = load_model(out)
    assert best.info.history[-1]["epoch"] == 1.0
    assert load_resume(sidecar_path(out)).epoch == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt", "model.pt.resume.pt"]

    train_set, valid_set = _sets(data)
    resumed = train(TrainConfig(**TINY, epochs=2), train_set, out, valid_set, resume=out)
    assert [h["epoch"] for h in resumed.history] == [1.0, 2.0]
    assert resumed.epochs_completed == 2
    assert load_model(resumed.path).info.task == "acl"  # type: ignore[arg-type]
