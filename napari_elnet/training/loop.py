"""Training ELNet as the paper did (section 2.1, 3.2): Nyul landmarks from the training split,
augmentation, minority oversampling, Adam + cross-entropy with one series per batch, and the best
epoch by validation ROC-AUC kept as a model file.

The computation is a generator (:func:`train_steps`) that yields :class:`TrainProgress` after every
step and returns a :class:`TrainResult`; :func:`train` runs it to the end. Stopping early, by the
``cancel`` event or by no longer iterating, keeps the best checkpoint written so far.

Determinism: one ``torch.Generator`` seeded from ``TrainConfig.seed`` drives the split, epoch
order, oversampling, augmentation and dropout (the model's dropout is swapped for one drawing from
that generator), and the weights are initialized from the same seed. The global RNG is never used
or reseeded, so the same seed gives the same weights on the CPU.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_elnet import __version__
from napari_elnet.common.device import resolve_device
from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.steps import run_to_end
from napari_elnet.datasets import Case
from napari_elnet.inference.applicability import describe_cases
from napari_elnet.models.model_file import ModelInfo, build_model, load_model, save_model
from napari_elnet.nn.elnet import ELNet
from napari_elnet.training.cache import CacheConfig, CachedVolumes, cache_steps, in_order
from napari_elnet.training.config import TrainConfig
from napari_elnet.training.distributed import SINGLE, Distributed, autocast
from napari_elnet.training.metrics import binary_metrics
from napari_elnet.training.resume import ResumeState, load_resume, save_resume, sidecar_path
from napari_elnet.training.sampling import epoch_order, stratified_split
from napari_elnet.transforms.augment import ROT90_PLANES, AugmentConfig, augment
from napari_elnet.transforms.intensity import Landmarks, fit_landmarks
from napari_elnet.transforms.preprocess import clip_bright, prepare_volume, resize_slices

RNG_OFFSET = 0x5EED
"""Added to the seed for the training generator, so that it differs from the weight-init stream."""


@dataclass(frozen=True)
class TrainProgress:
    """Where a run is.

    Attributes:
        phase: ``prepare`` (loading and standardizing), ``train`` or ``validate``.
        epoch: Current epoch, 1-based (0 while preparing).
        epochs: Total epochs of the run.
        step: Steps done in this phase of this epoch; ``steps``: steps it has.
        loss: Mean training loss of this epoch so far (nan before the first step).
        metrics: Validation metrics of the last finished epoch (empty before the first).
        elapsed: Seconds since the run started.
        volumes_per_s: Series processed per second in this phase so far.
        best_epoch: Epoch of the best checkpoint so far (None before the first validation).
        fold: Cross-validation fold (0-based), None for a single run.
    """

    phase: str
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    metrics: dict[str, float]
    elapsed: float
    volumes_per_s: float
    best_epoch: int | None
    fold: int | None = None


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of a run.

    Attributes:
        path: The best-checkpoint model file, None if no epoch finished validation.
        best_epoch: Its epoch (1-based), metrics: its validation metrics (plus ``loss``).
        history: One record per finished epoch.
        epochs_completed: Finished epochs (including those before a resume).
        cancelled: Stopped by the cancel event.
        stopped_early: Stopped by ``patience``.
        volumes_per_s: Training throughput (series per second, augmentation included) of this run.
        landmarks: The intensity landmarks stored with the model.
        split: Number of training and validation cases and positives.
    """

    path: Path | None
    best_epoch: int | None
    metrics: dict[str, float]
    history: list[dict[str, float]]
    epochs_completed: int
    cancelled: bool
    stopped_early: bool
    volumes_per_s: float
    landmarks: Landmarks
    split: dict[str, int] = field(default_factory=dict)


class SeededDropout(nn.Module):
    """Dropout that draws its mask from a given CPU ``torch.Generator`` (not the global RNG)."""

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        self.p = p
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self.generator) >= self.p
        return x * keep.to(x.device, x.dtype) / (1.0 - self.p)


def _check_cases(cases: Sequence[Case], name: str) -> np.ndarray:
    """Labels of ``cases``; ConfigurationError unless both classes are present."""
    labels = np.asarray([case.label for case in cases], dtype=np.int64)
    if labels.size == 0 or labels.min() == labels.max():
        counts = f"{int(labels.sum())} positive, {int(labels.size - labels.sum())} negative"
        raise ConfigurationError(f"the {name} set needs both classes, has {counts}")
    return labels


def _split_sizes(train_labels: np.ndarray, valid_labels: np.ndarray) -> dict[str, int]:
    return {
        "train": int(train_labels.size),
        "train_positive": int(train_labels.sum()),
        "valid": int(valid_labels.size),
        "valid_positive": int(valid_labels.sum()),
    }


def _is_better(auc: float, loss: float, best: dict[str, float] | None) -> bool:
    """Higher ROC-AUC wins (nan counts as lowest); equal ROC-AUC -> lower validation loss."""
    if best is None:
        return True
    key = -math.inf if math.isnan(auc) else auc
    best_key = -math.inf if math.isnan(best["roc_auc"]) else best["roc_auc"]
    return key > best_key or (key == best_key and loss < best["loss"])


def _model_info(
    config: TrainConfig,
    landmarks: Landmarks | None,
    provenance: dict[str, object],
    metrics: dict[str, float],
    history: list[dict[str, float]],
) -> ModelInfo:
    return ModelInfo(
        task=config.task,
        plane=config.plane,
        k=config.k,
        norm=config.norm,
        blur=config.blur,
        dropout=config.dropout,
        landmarks=landmarks,
        threshold=config.threshold,
        summary=(
            f"ELNet k={config.k} ({config.norm} norm) for {config.task} on {config.plane} series, "
            f"trained by napari-elnet {__version__}"
        ),
        provenance=provenance,
        metrics=metrics,
        history=history,
    )


@dataclass
class _Run:
    """Mutable state of a run, shared by the phases of :func:`train_steps`."""

    config: TrainConfig
    fold: int | None
    start: float = field(default_factory=time.perf_counter)
    best: dict[str, float] | None = None
    best_epoch: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def progress(
        self, phase: str, epoch: int, step: int, steps: int, loss: float, rate: float
    ) -> TrainProgress:
        metrics = {k: v for k, v in self.history[-1].items()} if self.history else {}
        return TrainProgress(
            phase,
            epoch,
            self.config.epochs,
            step,
            steps,
            loss,
            metrics,
            time.perf_counter() - self.start,
            rate,
            self.best_epoch,
            self.fold,
        )


def prepare_cases(
    cases: Sequence[Case],
    landmarks: Landmarks | None,
    run: _Run,
    resized: dict[int, np.ndarray] | None = None,
    half: bool = False,
) -> Generator[TrainProgress, None, tuple[list[torch.Tensor], Landmarks]]:
    """Prepare every case once with :func:`prepare_volume`; landmarks are fit first when None.

    ``resized`` caches the 256 x 256 volumes by position (shared between folds). Resizing an
    already 256 x 256 volume is the identity, so preparing a cached one equals preparing the file.
    """
    started = time.perf_counter()
    own = resized is None
    resized = {} if resized is None else resized
    volumes: list[np.ndarray] = []
    for i, case in enumerate(cases):
        key = id(case)
        if key not in resized:
            resized[key] = resize_slices(case.volume()).numpy()
        volumes.append(resized[key])
        rate = (i + 1) / max(time.perf_counter() - started, 1e-9)
        yield run.progress("prepare", 0, i + 1, len(cases), math.nan, rate)
    if landmarks is None:
        landmarks = fit_landmarks(clip_bright(volume) for volume in volumes)
    prepared = []
    for volume in volumes:
        tensor = prepare_volume(volume, landmarks)
        prepared.append(tensor.half() if half else tensor)
    if own:
        resized.clear()
    return prepared, landmarks


def _cached(
    sets: tuple[Sequence[Case], Sequence[Case]],
    landmarks: Landmarks | None,
    run: _Run,
    cache: CacheConfig,
    context: Distributed,
    inputs: Sequence[str | Path],
) -> Generator[TrainProgress, None, tuple[list[CachedVolumes], Landmarks]]:
    """Prepare ``sets`` into the on-disk cache on rank 0; the other ranks receive its result
    (or its error, so that no rank waits for a failed one)."""
    built: object = None
    if context.is_main:
        started = time.perf_counter()
        steps = cache_steps(sets, landmarks, run.config.plane, cache, inputs)
        try:
            while True:
                try:
                    done, total = next(steps)
                except StopIteration as stop:
                    built = stop.value
                    break
                rate = done / max(time.perf_counter() - started, 1e-9)
                yield run.progress("prepare", 0, done, total, math.nan, rate)
        except Exception as exc:
            built = exc
    shared = context.share(built)
    if isinstance(shared, BaseException):
        raise shared
    return shared  # type: ignore[return-value]


def _validate(
    model: ELNet,
    volumes: Sequence[torch.Tensor] | CachedVolumes,
    labels: np.ndarray,
    device: torch.device,
    run: _Run,
    epoch: int,
    train_loss: float,
    context: Distributed = SINGLE,
    cache: CacheConfig | None = None,
) -> Generator[TrainProgress, None, dict[str, float]]:
    """Validation loss and Table 2 metrics of ``model`` on prepared volumes.

    With several ranks each validates its share (:meth:`Distributed.shard`) and the per-series
    results are gathered, so every rank gets the metrics of the whole set.
    """
    model.eval()
    mine = context.shard(len(labels))
    outcomes = []
    started = time.perf_counter()
    with torch.no_grad():
        for i, (index, volume) in enumerate(
            zip(mine, in_order(volumes, mine, cache), strict=True), start=1
        ):
            logits = model(volume.to(device).float()).float()
            target = torch.tensor([int(labels[index])], device=device)
            loss = float(F.cross_entropy(logits[None], target))
            outcomes.append((int(index), float(torch.softmax(logits, 0)[1]), loss))
            rate = i / max(time.perf_counter() - started, 1e-9)
            yield run.progress("validate", epoch, i, mine.size, train_loss, rate)
    _, probabilities, losses = zip(*sorted(context.gather(outcomes)), strict=True)
    metrics = binary_metrics(labels, list(probabilities), run.config.threshold)
    metrics["loss"] = float(np.mean(losses))
    return metrics


def _resume_state(
    config: TrainConfig, resume: Path
) -> tuple[ResumeState | None, dict[str, torch.Tensor], Landmarks | None, list, int]:
    """(sidecar or None, weights, landmarks, history, finished epochs) to continue from."""
    sidecar = sidecar_path(resume)
    wanted = (config.task, config.plane, config.k, config.norm, config.blur)
    if sidecar.is_file():
        state = load_resume(sidecar)
        saved = tuple(state.config.get(name) for name in ("task", "plane", "k", "norm", "blur"))
        if saved != wanted:
            raise ConfigurationError(
                f"{sidecar}: run was {'/'.join(map(str, saved[:2]))} k={saved[2]} {saved[3]} "
                f"blur {saved[4]}, this run wants {'/'.join(map(str, wanted[:2]))} "
                f"k={config.k} {config.norm} blur {config.blur}"
            )
        landmarks = Landmarks.from_dict(state.landmarks) if state.landmarks else None
        return state, state.model, landmarks, list(state.history), state.epoch
    loaded = load_model(resume)
    info = loaded.info
    if (info.task, info.plane, info.k, info.norm, info.blur) != wanted:
        raise ConfigurationError(
            f"{resume}: model is {info.task}/{info.plane} k={info.k} {info.norm} blur {info.blur}, "
            f"the run wants {'/'.join(map(str, wanted[:2]))} k={config.k} {config.norm} "
            f"blur {config.blur}"
        )
    history = list(info.history)
    return None, loaded.model.state_dict(), info.landmarks, history, len(history)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    volumes: Sequence[torch.Tensor] | CachedVolumes,
    labels: np.ndarray,
    rng: torch.Generator,
    device: torch.device,
    run: _Run,
    epoch: int,
    cancel: threading.Event | None,
    context: Distributed = SINGLE,
    sample_rng: torch.Generator | None = None,
    cache: CacheConfig | None = None,
) -> Generator[TrainProgress, None, tuple[list[float], bool]]:
    """One epoch of single-series steps; returns the step losses and whether it was cancelled.

    ``rng`` draws the epoch order (the same on every rank), ``sample_rng`` (default ``rng``) the
    augmentation; with several ranks each takes its share of the order (:meth:`Distributed.split`).
    """
    config = run.config
    augmentation = AugmentConfig(rot90_planes=ROT90_PLANES if config.quarter_turns else ())
    order = context.split(epoch_order(labels, config.oversample, rng))
    sample_rng = rng if sample_rng is None else sample_rng
    context.reseed(sample_rng, config.seed, epoch)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    losses: list[float] = []
    started = time.perf_counter()
    for step, (index, volume) in enumerate(
        zip(order, in_order(volumes, order, cache), strict=True), start=1
    ):
        if cancel is not None and cancel.is_set():
            return losses, True
        x = volume.to(device).float()
        if config.augment:
            x = augment(x, config.plane, sample_rng, augmentation)
        target = torch.tensor([int(labels[index])], device=device)
        last = step % config.accumulate == 0 or step == order.size
        with context.no_sync(model, not last):
            with autocast(device, config.bf16):
                loss = F.cross_entropy(model(x).float()[None], target)
            (loss / config.accumulate).backward()
        if last:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        rate = step / max(time.perf_counter() - started, 1e-9)
        yield run.progress("train", epoch, step, order.size, float(np.mean(losses)), rate)
    return losses, False


def _provenance(
    config: TrainConfig,
    train_set: Sequence[Case],
    source: str,
    split: dict[str, int],
    device: torch.device,
    fold: int | None,
    resume: str | Path | None,
) -> dict[str, object]:
    """How a model was trained (``best_epoch`` and ``date`` are added when it is saved)."""
    return {
        "data": source or str(getattr(train_set, "root", "")),
        "layout": getattr(train_set, "layout", ""),
        "split": split,
        "seed": config.seed,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "epochs": config.epochs,
        "dropout": config.dropout,
        "augment": config.augment,
        "quarter_turns": config.quarter_turns,
        "oversample": config.oversample,
        "accumulate": config.accumulate,
        "optimizer": "Adam",
        "loss": "cross-entropy",
        "software": f"napari-elnet {__version__}",
        "torch": torch.__version__,
        "device": str(device),
        "fold": fold,
        "resumed_from": str(resume) if resume else None,
    }


def train_steps(
    config: TrainConfig,
    train_set: Sequence[Case],
    out: str | Path,
    valid_set: Sequence[Case] | None = None,
    *,
    cancel: threading.Event | None = None,
    resume: str | Path | None = None,
    source: str = "",
    fold: int | None = None,
    resized: dict[int, np.ndarray] | None = None,
    cache: CacheConfig | None = None,
    context: Distributed = SINGLE,
    acquired_grains: Mapping[str, float] | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train one ELNet, yielding progress after every step; the best epoch is saved to ``out``.

    Args:
        config: The run's settings.
        train_set: Training cases (e.g. a :class:`~napari_elnet.datasets.CaseDataset`).
        out: Model file of the best checkpoint; ``<out>.resume.pt`` holds the last epoch's state.
        valid_set: Validation cases; None to hold out ``config.val_fraction`` of ``train_set``
            (stratified, drawn from the run's seed).
        cancel: When set, the run stops before its next step and returns (best checkpoint kept).
        resume: A model file to continue from. With its ``.resume.pt`` sidecar the last epoch's
            weights, Adam state, generator state, history and best result are restored and
            training continues at the next epoch up to ``config.epochs``. Without a sidecar the
            file's weights, landmarks and history are taken and Adam starts afresh.
        source: Where the data came from, for the provenance (default: the data set's root).
        fold: Cross-validation fold number, reported in the progress.
        resized: Cache of resized volumes shared between runs on the same cases (folds).
        cache: Stream the prepared volumes from an on-disk cache (:mod:`.cache`) instead of
            keeping them in memory; None: in memory.
        context: This process's place in a data-parallel run (:mod:`.distributed`, started by
            torchrun); rank 0 prepares the cache, writes the files and the others follow.
        acquired_grains: The :func:`~napari_elnet.inference.applicability.acquired_grain` of each
            case by ``case_id``, taken on its acquisition, for cases whose volumes were resized
            before storage (e.g. MRNet volumes of known acquisitions); None: taken on the cases'
            volumes. Read by the description at the end; every case must have one.

    Returns:
        The run's result; ``path`` is None when no epoch was validated.
    """
    out = Path(out)
    _model_info(config, None, {}, {}, [])  # the architecture is refused before any data is prepared
    run = _Run(config, fold)
    rng = torch.Generator().manual_seed(config.seed + RNG_OFFSET)
    if valid_set is None:
        split_rng = torch.Generator().manual_seed(config.seed)
        all_labels = _check_cases(train_set, "training")
        train_idx, valid_idx = stratified_split(all_labels, config.val_fraction, split_rng)
        train_cases = [train_set[int(i)] for i in train_idx]
        valid_cases = [train_set[int(i)] for i in valid_idx]
    else:
        train_cases, valid_cases = list(train_set), list(valid_set)
    train_labels = _check_cases(train_cases, "training")
    acquired = _acquired_of((*train_cases, *valid_cases), acquired_grains)
    valid_labels = np.asarray([case.label for case in valid_cases], dtype=np.int64)
    if valid_labels.size == 0:
        raise ConfigurationError("the validation set is empty")
    device = resolve_device(config.device)

    history: list[dict[str, float]]
    state, weights, landmarks, history, done = None, None, None, [], 0
    if resume is not None:
        state, weights, landmarks, history, done = _resume_state(config, Path(resume))
    run.history = history

    train_volumes: Sequence[torch.Tensor] | CachedVolumes
    valid_volumes: Sequence[torch.Tensor] | CachedVolumes
    if cache is None:
        train_volumes, landmarks = yield from prepare_cases(
            train_cases, landmarks, run, resized, config.cache_half
        )
        valid_volumes, _ = yield from prepare_cases(
            valid_cases, landmarks, run, resized, config.cache_half
        )
    else:
        roots = [getattr(cases, "root", None) for cases in (train_set, valid_set)]
        (train_volumes, valid_volumes), landmarks = yield from _cached(
            (train_cases, valid_cases), landmarks, run, cache, context, [r for r in roots if r]
        )

    info0 = _model_info(config, landmarks, {}, {}, [])
    model = build_model(info0, seed=config.seed)
    if weights is not None:
        model.load_state_dict(weights)
    sample_rng = context.sample_generator(rng)
    model.dropout = SeededDropout(config.dropout, sample_rng)  # type: ignore[assignment]
    model.to(device)
    net = context.wrap(model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state.optimizer)
        rng.set_state(state.rng)
        if state.best:
            run.best = {"roc_auc": state.best["roc_auc"], "loss": state.best["loss"]}
            run.best_epoch = int(state.best["epoch"])
    elif history:  # resumed from a model file: its best epoch is the last one we know of
        run.best = {"roc_auc": history[-1].get("roc_auc", math.nan), "loss": math.inf}
        run.best_epoch = int(history[-1].get("epoch", done))

    split = _split_sizes(train_labels, valid_labels)
    provenance_base = _provenance(config, train_set, source, split, device, fold, resume)
    provenance_base |= {"processes": context.world, "bf16": config.bf16}
    best_metrics: dict[str, float] = {}
    if state is not None and state.best:
        best_metrics = dict(state.best.get("metrics", {}))
    throughputs: list[float] = []
    cancelled = stopped_early = False
    stale = (done - run.best_epoch) if run.best_epoch else 0
    result_path: Path | None = out if out.is_file() and run.best_epoch else None

    for epoch in range(done + 1, config.epochs + 1):
        epoch_start = time.perf_counter()
        losses, cancelled = yield from _train_epoch(
            net, optimizer, train_volumes, train_labels, rng, device, run, epoch, cancel,
            context, sample_rng, cache,
        )  # fmt: skip
        if cancelled:
            break
        throughput = len(losses) / max(time.perf_counter() - epoch_start, 1e-9)
        throughput = context.mean(throughput, 1) * context.world  # all ranks together
        throughputs.append(throughput)
        train_loss = context.mean(float(np.mean(losses)), len(losses))
        metrics = yield from _validate(
            model, valid_volumes, valid_labels, device, run, epoch, train_loss, context, cache
        )
        record = {"epoch": float(epoch), "train_loss": train_loss, "val_loss": metrics["loss"]}
        record |= {k: v for k, v in metrics.items() if k not in ("loss", "n")}
        record |= {"train_volumes_per_s": throughput, "seconds": time.perf_counter() - epoch_start}
        run.history.append(record)
        if _is_better(metrics["roc_auc"], metrics["loss"], run.best):
            run.best = {"roc_auc": metrics["roc_auc"], "loss": metrics["loss"]}
            run.best_epoch, best_metrics, stale = epoch, metrics, 0
            provenance = provenance_base | {
                "best_epoch": epoch,
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            info = _model_info(config, landmarks, provenance, metrics, list(run.history))
            result_path = save_model(out, model, info) if context.is_main else out
        else:
            stale += 1
        if context.is_main:
            save_resume(
                sidecar_path(out),
                ResumeState(
                    epoch=epoch,
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    rng=rng.get_state(),
                    history=run.history,
                    best={"epoch": run.best_epoch, **(run.best or {}), "metrics": best_metrics},
                    landmarks=landmarks.to_dict(),
                    config=asdict(config),
                ),
            )
        if config.patience is not None and stale >= config.patience:
            stopped_early = True
            break

    if result_path is not None and not cancelled and context.is_main:
        yield from _describe(result_path, train_cases, valid_cases, device, run, acquired)

    return TrainResult(
        path=result_path,
        best_epoch=run.best_epoch,
        metrics=best_metrics,
        history=list(run.history),
        epochs_completed=len(run.history),
        cancelled=cancelled,
        stopped_early=stopped_early,
        volumes_per_s=float(np.mean(throughputs)) if throughputs else math.nan,
        landmarks=landmarks,
        split=split,
    )


def _acquired_of(cases: Sequence[Case], grains: Mapping[str, float] | None) -> list[float] | None:
    """``grains`` of ``cases`` in their order (None when None); ConfigurationError, before any
    training, when a case has none."""
    if grains is None:
        return None
    missing = [c.case_id for c in cases if c.case_id not in grains]
    if missing:
        raise ConfigurationError(
            f"no acquired grain for {len(missing)} of {len(cases)} cases, e.g. "
            f"{', '.join(missing[:3])}"
        )
    return [float(grains[c.case_id]) for c in cases]


def _describe(
    path: Path,
    train_cases: Sequence[Case],
    valid_cases: Sequence[Case],
    device: torch.device,
    run: _Run,
    acquired: list[float] | None = None,
) -> Generator[TrainProgress, None, None]:
    """Add the description of the training inputs (applicability) to the saved best checkpoint.

    Fit on the training split with the saved weights, thresholds from the validation split;
    ``acquired``: the acquired grain of each training, then validation case (None: taken on
    their volumes).
    """
    best = load_model(path)
    model = best.model.to(device)
    steps = describe_cases(
        model, best.info.landmarks, train_cases, valid_cases, device, acquired=acquired
    )
    started = time.perf_counter()
    try:
        while True:
            done, total = next(steps)
            rate = done / max(time.perf_counter() - started, 1e-9)
            yield run.progress("describe", len(run.history), done, total, math.nan, rate)
    except StopIteration as stop:
        description = stop.value
    save_model(path, best.model.cpu(), best.info, description.to_payload())


def train(
    config: TrainConfig,
    train_set: Sequence[Case],
    out: str | Path,
    valid_set: Sequence[Case] | None = None,
    callback: Callable[[TrainProgress], None] | None = None,
    **kwargs: object,
) -> TrainResult:
    """Run :func:`train_steps` to the end (``kwargs`` go to it), calling ``callback`` per step."""
    return run_to_end(train_steps(config, train_set, out, valid_set, **kwargs), callback)  # type: ignore[arg-type]
