"""Training: loss falls, checkpoints carry metadata, resume, cancel, determinism, splits, folds."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from support.synthetic_data import single_thread, write_mrnet

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.datasets import open_dataset
from napari_elnet.models.model_file import load_model
from napari_elnet.training.crossval import cross_validate_steps, fold_path
from napari_elnet.training.loop import TrainConfig, run_to_end, train, train_steps
from napari_elnet.training.resume import load_resume, sidecar_path
from napari_elnet.training.sampling import epoch_order, stratified_folds, stratified_split
from napari_elnet.transforms.intensity import fit_landmarks
from napari_elnet.transforms.preprocess import clip_bright, prepare_volume, resize_slices

TINY = {"task": "acl", "plane": "axial", "k": 1, "lr": 1e-3, "device": "cpu", "dropout": 0.2}


one_thread = pytest.fixture(autouse=True, scope="module")(single_thread)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train") / "mrnet"
    return write_mrnet(root, {"train": [0, 1, 0, 1, 0, 0], "valid": [0, 1, 1, 0]}, slices=3)


def _sets(data: Path):
    return open_dataset(data, "acl", "axial", "train"), open_dataset(data, "acl", "axial", "valid")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).model.state_dict()


def test_training_loss_falls(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    cases = [train_set[i] for i in (0, 1, 2, 3)]
    config = TrainConfig(**TINY, epochs=5, augment=False, oversample=False)
    losses: list[float] = []

    def record(progress) -> None:
        if progress.phase == "train" and progress.step == progress.steps:
            losses.append(progress.loss)

    result = train(config, cases, tmp_path / "m.pt", valid_set, callback=record)
    assert len(losses) == 5  # 5 epochs x 4 steps = 20 steps
    assert losses[-1] < 0.5 * losses[0]
    assert [h["train_loss"] for h in result.history] == pytest.approx(losses)
    assert result.volumes_per_s > 0


def test_an_architecture_no_model_file_admits_is_refused_before_preparing(
    data: Path, tmp_path: Path
) -> None:
    """--k 99 prepared every volume and trained; the model file it saved could never be loaded."""
    train_set, valid_set = _sets(data)
    steps = train_steps(
        TrainConfig(**{**TINY, "k": 99}), list(train_set), tmp_path / "m.pt", valid_set
    )
    with pytest.raises(ConfigurationError, match=r"k: must be in 1\.\.32"):
        next(steps)  # before the first progress (preparing the first volume)
    assert not (tmp_path / "m.pt").exists()


def test_checkpoint_carries_metadata(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    config = TrainConfig(**TINY, epochs=2)
    result = train(config, train_set, tmp_path / "out" / "acl.pt", valid_set)
    loaded = load_model(result.path)
    info = loaded.info
    assert (info.task, info.plane, info.k, info.norm) == ("acl", "axial", 1, "layer")
    assert info.landmarks == result.landmarks
    assert info.metrics == result.metrics
    assert set(info.metrics) == {
        "accuracy",
        "sensitivity",
        "specificity",
        "roc_auc",
        "mcc",
        "n",
        "loss",
    }
    assert info.metrics["n"] == 4.0
    best = result.best_epoch
    assert [h["epoch"] for h in info.history] == [float(e) for e in range(1, best + 1)]
    assert info.provenance["best_epoch"] == best
    assert info.provenance["split"] == {
        "train": 6,
        "train_positive": 2,
        "valid": 4,
        "valid_positive": 2,
    }
    assert info.provenance["seed"] == 0
    assert info.provenance["lr"] == 1e-3
    assert info.provenance["data"] == str(data)
    assert info.provenance["software"] == "napari-elnet 0.1.0"
    assert len(info.provenance["date"]) == 25  # 2025-01-01T00:00:00+00:00
    assert set(result.history[0]) >= {"train_loss", "val_loss", "roc_auc", "train_volumes_per_s"}
    # The end of training describes its inputs (applicability): fit on train, threshold on valid
    # and on train out of fold.
    from napari_elnet.inference.applicability import description_of

    description = description_of(loaded)
    assert description is not None
    # threshold distances: the 4 validation series and the 6 training series out of fold
    assert (description.n_fit, description.n_threshold) == (6, 4 + 6)


def test_acquired_grains_given_by_case_set_the_description_limit(
    data: Path, tmp_path: Path
) -> None:
    train_set, valid_set = _sets(data)
    ids = [c.case_id for c in (*train_set, *valid_set)]
    grains = {case: 0.01 * (i + 1) for i, case in enumerate(ids)}
    config = TrainConfig(**TINY, epochs=1)
    result = train(config, train_set, tmp_path / "a.pt", valid_set, acquired_grains=grains)
    from napari_elnet.inference.applicability import description_of

    description = description_of(load_model(result.path))
    assert description is not None and description.checks.image_limits is not None
    assert description.checks.image_limits[4] == pytest.approx(0.01 * len(ids))
    # a case without one is refused before any training
    with pytest.raises(
        ConfigurationError, match=f"no acquired grain for 1 of 10 cases, e.g. {ids[-1]}"
    ):
        run_to_end(
            train_steps(
                config,
                train_set,
                tmp_path / "b.pt",
                valid_set,
                acquired_grains={k: v for k, v in grains.items() if k != ids[-1]},
            )
        )
    assert not (tmp_path / "b.pt").exists()


def test_landmarks_come_from_training_split_only(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    result = train(TrainConfig(**TINY, epochs=1), train_set, tmp_path / "m.pt", valid_set)

    def grid(case) -> np.ndarray:
        return clip_bright(resize_slices(case.volume()).numpy())

    assert result.landmarks == fit_landmarks([grid(c) for c in train_set])
    everything = fit_landmarks([grid(c) for c in [*train_set, *valid_set]])
    assert result.landmarks != everything


def test_same_seed_same_weights(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    config = TrainConfig(**TINY, epochs=1)
    a = train(config, train_set, tmp_path / "a.pt", valid_set)
    b = train(config, train_set, tmp_path / "b.pt", valid_set)
    c = train(
        TrainConfig(**(TINY | {"seed": 1}), epochs=1), train_set, tmp_path / "c.pt", valid_set
    )
    wa, wb, wc = _weights(a.path), _weights(b.path), _weights(c.path)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["classifier.weight"], wc["classifier.weight"])
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]


def test_global_rng_is_untouched(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    train(TrainConfig(**TINY, epochs=1), train_set, tmp_path / "m.pt", valid_set)
    assert torch.equal(torch.get_rng_state(), state)


def test_resume_continues_like_an_uninterrupted_run(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    straight = train(TrainConfig(**TINY, epochs=3), train_set, tmp_path / "s.pt", valid_set)
    first = train(TrainConfig(**TINY, epochs=2), train_set, tmp_path / "r.pt", valid_set)
    assert load_resume(sidecar_path(first.path)).epoch == 2
    resumed = train(
        TrainConfig(**TINY, epochs=3), train_set, tmp_path / "r.pt", valid_set, resume=first.path
    )
    assert [h["epoch"] for h in resumed.history] == [1.0, 2.0, 3.0]
    assert resumed.epochs_completed == 3
    last_straight = load_resume(sidecar_path(straight.path))
    last_resumed = load_resume(sidecar_path(resumed.path))
    assert last_resumed.epoch == 3
    for name, tensor in last_straight.model.items():
        torch.testing.assert_close(last_resumed.model[name], tensor)
    assert resumed.best_epoch == straight.best_epoch
    with pytest.raises(ConfigurationError, match=r"run was acl/axial k=1 layer blur 5"):
        train(
            TrainConfig(**(TINY | {"norm": "contrast"}), epochs=4),
            train_set,
            tmp_path / "x.pt",
            valid_set,
            resume=resumed.path,
        )


def test_resume_without_sidecar_restarts_optimizer(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    first = train(TrainConfig(**TINY, epochs=1), train_set, tmp_path / "a.pt", valid_set)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(first.path.read_bytes())
    resumed = train(
        TrainConfig(**TINY, epochs=2), train_set, tmp_path / "b.pt", valid_set, resume=copy
    )
    assert [h["epoch"] for h in resumed.history] == [1.0, 2.0]
    assert resumed.landmarks == first.landmarks
    with pytest.raises(ConfigurationError, match="model is acl/axial k=1"):
        train(
            TrainConfig(**(TINY | {"k": 2}), epochs=2),
            train_set,
            tmp_path / "c.pt",
            valid_set,
            resume=copy,
        )


def test_cancel_event_keeps_best_checkpoint(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    cancel = threading.Event()

    def stop_after_first_epoch(progress) -> None:
        if progress.epoch == 2 and progress.phase == "train":
            cancel.set()

    steps = train_steps(
        TrainConfig(**TINY, epochs=5), train_set, tmp_path / "m.pt", valid_set, cancel=cancel
    )
    result = run_to_end(steps, stop_after_first_epoch)
    assert result.cancelled is True
    assert result.epochs_completed == 1
    assert result.best_epoch == 1
    assert load_model(result.path).info.provenance["best_epoch"] == 1


def test_closing_the_generator_keeps_best_checkpoint(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    out = tmp_path / "m.pt"
    steps = train_steps(TrainConfig(**TINY, epochs=5), train_set, out, valid_set)
    for progress in steps:
        if progress.epoch == 2 and progress.phase == "train" and progress.step == 2:
            break
    steps.close()
    assert load_model(out).info.provenance["best_epoch"] == 1
    assert load_resume(sidecar_path(out)).epoch == 1


def test_progress_fields(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    config = TrainConfig(**TINY, epochs=1, oversample=True)
    seen = list(train_steps(config, train_set, tmp_path / "m.pt", valid_set))
    phases = [p.phase for p in seen]
    assert (
        phases == ["prepare"] * 10 + ["train"] * 8 + ["validate"] * 4 + ["describe"] * 10
    )  # 4 neg + 4 oversampled pos; then the training inputs are described (6 fit + 4 held out)
    last_train = seen[17]
    assert (last_train.epoch, last_train.step, last_train.steps) == (1, 8, 8)
    assert math.isfinite(last_train.loss) and last_train.volumes_per_s > 0
    assert seen[21].metrics == {} and seen[21].best_epoch is None  # the last validation step


def test_validation_split_from_fraction(data: Path, tmp_path: Path) -> None:
    everything = open_dataset(data, "acl", "axial")  # 10 cases, 4 positive
    config = TrainConfig(**TINY, epochs=1, val_fraction=0.5)
    result = train(config, everything, tmp_path / "m.pt")
    assert result.split == {"train": 5, "train_positive": 2, "valid": 5, "valid_positive": 2}


def test_one_class_training_set_is_refused(data: Path, tmp_path: Path) -> None:
    train_set, valid_set = _sets(data)
    negatives = [c for c in train_set if c.label == 0]
    with pytest.raises(ConfigurationError, match="training set needs both classes, has 0 positive"):
        train(TrainConfig(**TINY, epochs=1), negatives, tmp_path / "m.pt", valid_set)


def test_prepared_volumes_use_the_one_path(data: Path) -> None:
    from napari_elnet.training.loop import _Run, prepare_cases

    train_set, _ = _sets(data)
    steps = prepare_cases(list(train_set), None, _Run(TrainConfig(**TINY), None))
    prepared, landmarks = run_to_end(steps)
    torch.testing.assert_close(prepared[1], prepare_volume(train_set[1].volume(), landmarks))


def test_cross_validation_writes_one_model_per_fold(data: Path, tmp_path: Path) -> None:
    everything = open_dataset(data, "acl", "axial")
    config = TrainConfig(**TINY, epochs=1, folds=2)
    result = run_to_end(cross_validate_steps(config, everything, tmp_path / "cv.pt"))
    assert len(result.folds) == 2
    assert [r.split["valid"] for r in result.folds] == [5, 5]
    assert fold_path(tmp_path / "cv.pt", 1) == tmp_path / "cv.fold2.pt"
    assert load_model(tmp_path / "cv.fold2.pt").info.provenance["fold"] == 1
    aucs = [r.metrics["roc_auc"] for r in result.folds]
    assert result.summary["roc_auc"] == pytest.approx((np.mean(aucs), np.std(aucs, ddof=1)))


# --- sampling ------------------------------------------------------------------------------------


def test_oversampling_balances_classes() -> None:
    labels = np.array([0] * 7 + [1] * 2)
    order = epoch_order(labels, True, torch.Generator().manual_seed(0))
    assert order.size == 14
    assert np.sum(labels[order] == 1) == 7
    assert set(order[labels[order] == 0].tolist()) == set(range(7))  # each majority case once
    assert set(order[labels[order] == 1].tolist()) == {7, 8}
    plain = epoch_order(labels, False, torch.Generator().manual_seed(0))
    assert sorted(plain.tolist()) == list(range(9))


def test_stratified_split_and_folds() -> None:
    labels = np.array([0] * 8 + [1] * 4)
    train_idx, valid_idx = stratified_split(labels, 0.25, torch.Generator().manual_seed(0))
    assert (labels[valid_idx] == 1).sum() == 1 and (labels[valid_idx] == 0).sum() == 2
    assert sorted([*train_idx, *valid_idx]) == list(range(12))
    folds = stratified_folds(labels, 4, torch.Generator().manual_seed(0))
    assert sorted(np.concatenate(folds).tolist()) == list(range(12))
    assert [int(labels[f].sum()) for f in folds] == [1, 1, 1, 1]
    with pytest.raises(ConfigurationError, match="needs at least 5 cases of class 1, found 4"):
        stratified_folds(labels, 5, torch.Generator())


@pytest.mark.parametrize("quarter_turns", [True, False])
def test_quarter_turns_follow_the_config(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quarter_turns: bool
) -> None:
    import napari_elnet.training.loop as train_module
    from napari_elnet.transforms.augment import augment

    turned_planes: set[tuple[str, ...]] = set()

    def spy(volume, plane, generator, config):
        turned_planes.add(config.rot90_planes)
        return augment(volume, plane, generator, config)

    monkeypatch.setattr(train_module, "augment", spy)
    train_set, valid_set = _sets(data)
    config = TrainConfig(**TINY, epochs=1, quarter_turns=quarter_turns)
    result = train(config, train_set, tmp_path / "m.pt", valid_set)
    assert turned_planes == ({("axial", "coronal")} if quarter_turns else {()})
    assert load_model(result.path).info.provenance["quarter_turns"] is quarter_turns
