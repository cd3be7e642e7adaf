"""The on-disk volume cache: streaming training equals in-memory training, entries are reused and
invalidated, uint8 keeps its scale, reads unmap, the cache never lies in a data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support.synthetic_data import single_thread, write_mrnet

from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.common.steps import run_to_end
from napari_elnet.datasets import Case, open_dataset
from napari_elnet.models.model_file import load_model
from napari_elnet.training.cache import (
    CacheConfig,
    CachedVolumes,
    cache_steps,
    default_cache_folder,
    in_order,
)
from napari_elnet.training.config import TrainConfig
from napari_elnet.training.loop import train
from napari_elnet.transforms.intensity import fit_landmarks
from napari_elnet.transforms.preprocess import clip_bright, prepare_volume, resize_slices

one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache") / "mrnet"
    return write_mrnet(root, {"train": [0, 1, 0, 1, 0, 0], "valid": [0, 1, 1, 0]}, slices=4)


def _cases(data: Path, split: str = "train") -> list[Case]:
    return list(open_dataset(data, "acl", "axial", split))


def _build(cases: list[Case], folder: Path, dtype: str = "float16"):
    steps = cache_steps([cases], None, "axial", CacheConfig(folder, dtype))  # type: ignore[arg-type]
    (volumes,), landmarks = run_to_end(steps)
    return volumes, landmarks


def test_streaming_trains_the_weights_of_in_memory_training(data: Path, tmp_path: Path) -> None:
    """Same seed, augmentation and dropout on: the float16 cache read by two DataLoader workers
    gives bit for bit the weights of the in-memory float16 path."""
    train_set = open_dataset(data, "acl", "axial", "train")
    valid_set = open_dataset(data, "acl", "axial", "valid")
    config = TrainConfig(task="acl", plane="axial", k=1, lr=1e-3, device="cpu", epochs=2)
    config = TrainConfig(**{**config.__dict__, "cache_half": True})
    memory = train(config, train_set, tmp_path / "memory.pt", valid_set)
    cache = CacheConfig(tmp_path / "cache", workers=2)
    stream = train(config, train_set, tmp_path / "stream.pt", valid_set, cache=cache)
    a, b = load_model(memory.path).model.state_dict(), load_model(stream.path).model.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert [h["train_loss"] for h in memory.history] == [h["train_loss"] for h in stream.history]
    assert memory.landmarks == stream.landmarks


def test_cached_volumes_are_the_prepared_volumes(data: Path, tmp_path: Path) -> None:
    cases = _cases(data)
    volumes, landmarks = _build(cases, tmp_path)
    expected = fit_landmarks(clip_bright(resize_slices(c.volume()).numpy()) for c in cases)
    assert landmarks == expected
    for i, case in enumerate(cases):
        prepared = prepare_volume(case.volume(), landmarks)
        assert volumes[i].dtype == torch.float16
        assert torch.equal(volumes[i], prepared.half())
    assert volumes.case_ids == [c.case_id for c in cases]


def test_uint8_cache_stores_a_scale_per_volume(data: Path, tmp_path: Path) -> None:
    cases = _cases(data)
    volumes, landmarks = _build(cases, tmp_path, "uint8")
    assert (tmp_path / volumes.folder.name / "volumes.bin").stat().st_size == sum(
        e["slices"] * 256 * 256 for e in volumes.entries
    )
    for i, case in enumerate(cases):
        prepared = prepare_volume(case.volume(), landmarks)
        entry = volumes.entries[i]
        assert entry["low"] == pytest.approx(float(prepared.min()))
        assert entry["scale"] == pytest.approx((float(prepared.max()) - entry["low"]) / 255)
        assert volumes[i].dtype == torch.float32
        error = (volumes[i] - prepared).abs().max()
        assert float(error) <= entry["scale"] / 2 * 1.001


def test_entries_are_reused_and_follow_their_files(data: Path, tmp_path: Path) -> None:
    cases = _cases(data)
    first, _ = _build(cases, tmp_path)
    written = (first.folder / "volumes.bin").stat().st_mtime_ns
    again, _ = _build(cases, tmp_path)
    assert again.folder == first.folder
    assert (again.folder / "volumes.bin").stat().st_mtime_ns == written  # not written again
    source = cases[0].source
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed
    changed, _ = _build(cases, tmp_path)
    assert changed.folder != first.folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [first.folder.name, changed.folder.name]
    )


def test_a_failed_build_leaves_no_entry(data: Path, tmp_path: Path) -> None:
    cases = _cases(data)

    def broken() -> np.ndarray:
        raise ElnetError("case 0099.npy: cannot read volume")

    bad = [*cases, Case("0099", 0, cases[0].source, broken)]
    steps = cache_steps([cases, bad], None, "axial", CacheConfig(tmp_path))
    with pytest.raises(ElnetError, match=r"0099\.npy: cannot read volume"):
        run_to_end(steps)
    entries = sorted(tmp_path.iterdir())
    assert len(entries) == 1  # the complete first set, no partial second one
    assert (entries[0] / "index.json").is_file()


def test_cache_is_never_in_the_data_folder(data: Path, tmp_path: Path) -> None:
    train_set = open_dataset(data, "acl", "axial", "train")
    valid_set = open_dataset(data, "acl", "axial", "valid")
    config = TrainConfig(task="acl", plane="axial", k=1, device="cpu", epochs=1)
    with pytest.raises(ConfigurationError, match="inside the input folder"):
        train(config, train_set, tmp_path / "m.pt", valid_set, cache=CacheConfig(data / "cache"))
    assert not (data / "cache").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
def test_a_read_volume_is_unmapped(data: Path, tmp_path: Path) -> None:
    """Resident memory does not grow with the data set: no mapping of the cache stays open."""
    volumes, _ = _build(_cases(data), tmp_path)
    for i in range(len(volumes)):
        volumes[i]
    maps = Path("/proc/self/maps").read_text()
    assert str(volumes.folder / "volumes.bin") not in maps


def test_workers_read_in_the_given_order(data: Path, tmp_path: Path) -> None:
    volumes, _ = _build(_cases(data), tmp_path)
    order = np.asarray([3, 0, 5, 5, 1])
    direct = [volumes[int(i)] for i in order]
    read = list(in_order(volumes, order, CacheConfig(workers=2)))
    assert all(torch.equal(a, b) for a, b in zip(direct, read, strict=True))
    assert isinstance(volumes, CachedVolumes)


def test_default_folder_is_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("XDG_CACHE_HOME is the Linux rule")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_folder() == tmp_path / "napari-elnet" / "training"


def test_config_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="cache dtype must be one of"):
        CacheConfig(dtype="int4")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="workers must be >= 0"):
        CacheConfig(workers=-1)
