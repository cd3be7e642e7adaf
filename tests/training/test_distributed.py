"""Data-parallel training: two gloo ranks on the CPU (torchrun, started by ``train --nproc 2``)
equal one process accumulating two series per step over the same order; resume; rank-0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support.synthetic_data import single_thread, write_mrnet

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.datasets import open_dataset
from napari_elnet.training.cache import CacheConfig
from napari_elnet.training.config import TrainConfig
from napari_elnet.training.distributed import SINGLE, Distributed, torchrun_command
from napari_elnet.training.loop import train
from napari_elnet.training.resume import load_resume, sidecar_path

one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)

# No augmentation and no dropout: the only randomness left is the epoch order, which both runs
# draw from the same seed; 8 training cases (3 positive) oversample to an even 10 per epoch.
ARGS = ["--k", "1", "--lr", "1e-3", "--no-augment", "--dropout", "0", "--device", "cpu"]
SINGLE_CONFIG = dict(k=1, lr=1e-3, augment=False, dropout=0.0, device="cpu", accumulate=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp") / "mrnet"
    return write_mrnet(root, {"train": [0, 1, 0, 1, 0, 0, 1, 0], "valid": [0, 1, 1, 0]})


def _torchrun(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``napari-elnet train ... --nproc 2`` in a child process (it starts torchrun itself)."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "napari_elnet.cli", "train", *argv, "--nproc", "2"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _single(data: Path, out: Path, epochs: int, cache: Path, resume: Path | None = None):
    train_set = open_dataset(data, "acl", "axial", "train")
    valid_set = open_dataset(data, "acl", "axial", "valid")
    config = TrainConfig(task="acl", plane="axial", epochs=epochs, **SINGLE_CONFIG)
    return train(config, train_set, out, valid_set, cache=CacheConfig(cache), resume=resume)


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_two_ranks_equal_one_process_accumulating_two(data: Path, tmp_path: Path) -> None:
    """A one-process run (accumulate 2) stopped after epoch 1, continued by two ranks (which
    build their own cache) for epochs 2 and 3, ends where one process running all three ends."""
    first = _single(data, tmp_path / "ddp" / "acl.pt", 1, tmp_path / "cache")
    resume = ["--out", str(first.path), "--resume", str(first.path)]
    done = _torchrun(
        [str(data), *ARGS, "--epochs", "3", *resume, "--cache", str(tmp_path / "ddp-cache")]
    )
    straight = _single(data, tmp_path / "one" / "acl.pt", 3, tmp_path / "cache")

    ddp_state = load_resume(sidecar_path(first.path))
    assert ddp_state.epoch == 3
    _assert_same_weights(ddp_state.model, load_resume(sidecar_path(straight.path)).model)
    losses = [h["train_loss"] for h in ddp_state.history]
    assert losses == pytest.approx([h["train_loss"] for h in straight.history], rel=1e-5)
    assert losses[2] < losses[1] < losses[0]  # the loss falls, also over the two ranks' epochs
    assert ddp_state.history[2]["epoch"] == 3.0
    # only rank 0 wrote (model, sidecar; the cache once) and reported (one result table)
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["acl.pt", "acl.pt.resume.pt"]
    assert len(list((tmp_path / "ddp-cache").iterdir())) == 2  # training and validation sets
    assert done.stdout.count("best epoch") == 1


def test_split_gives_every_rank_as_many_steps() -> None:
    order = np.arange(7) * 10
    parts = [Distributed(rank=r, world=3).split(order) for r in range(3)]
    assert [p.tolist() for p in parts] == [[0, 30, 60], [10, 40, 0], [20, 50, 10]]
    assert SINGLE.split(order) is order
    shards = [Distributed(rank=r, world=3).shard(7).tolist() for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]


def test_ranks_draw_their_own_augmentation() -> None:
    order_rng = torch.Generator().manual_seed(1)
    assert SINGLE.sample_generator(order_rng) is order_rng
    draws = []
    for rank in (0, 1):
        context = Distributed(rank=rank, world=2)
        generator = context.sample_generator(order_rng)
        context.reseed(generator, seed=0, epoch=3)
        draws.append(torch.rand(4, generator=generator))
    assert not torch.equal(draws[0], draws[1])


def test_torchrun_command() -> None:
    command = torchrun_command(2, ["train", "DATA", "--out", "m.pt"])
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert command[-6:] == ["-m", "napari_elnet.cli", "train", "DATA", "--out", "m.pt"]
    with pytest.raises(ConfigurationError, match="--nproc must be >= 1, got 0"):
        torchrun_command(0, [])


def test_bf16_autocast_trains(data: Path, tmp_path: Path) -> None:
    """bf16 is meant for CUDA; CPU autocast runs the same code path here."""
    train_set = open_dataset(data, "acl", "axial", "train")
    valid_set = open_dataset(data, "acl", "axial", "valid")
    config = TrainConfig(task="acl", plane="axial", epochs=1, bf16=True, **SINGLE_CONFIG)
    result = train(config, train_set, tmp_path / "bf16.pt", valid_set)
    assert np.isfinite(result.history[0]["train_loss"])
    assert result.path is not None
