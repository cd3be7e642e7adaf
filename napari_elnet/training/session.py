"""A training session: open a labelled data folder, train one ELNet, say what it left behind.

:func:`training_session` is the whole run of the "ELNet training" widget as a plain generator: it
opens the training (and validation) set, yields a one-line description of them, then every
:class:`~napari_elnet.training.loop.TrainProgress`, and returns a :class:`TrainingOutcome`, also
when it was stopped or the data turned out unusable (then with the best checkpoint so far). It has
no Qt in it: the widget runs it in a thread worker, the command line and the tests run it inline.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from napari_elnet.common.errors import ElnetError
from napari_elnet.common.runs import relay
from napari_elnet.datasets import CaseDataset, KneeMriPositive, detect_layout, open_dataset
from napari_elnet.training.config import TrainConfig
from napari_elnet.training.loop import TrainProgress, TrainResult, train_steps


@dataclass(frozen=True)
class TrainingData:
    """The cases of a session and how to say what they are.

    Attributes:
        train_set: The training cases.
        valid_set: The validation cases; None when ``config.val_fraction`` of ``train_set`` is held out.
        description: One line naming both, e.g. ``training on ...; validating on ...``.
    """

    train_set: CaseDataset
    valid_set: CaseDataset | None
    description: str


def open_training_data(
    data: str | Path,
    config: TrainConfig,
    valid_split: bool = True,
    kneemri_positive: KneeMriPositive = "injured",
) -> TrainingData:
    """Open the training set of ``data`` and, for MRNet with ``valid_split``, its ``valid`` split.

    Args:
        data: The labelled data folder (MRNet, KneeMRI or DICOM + labels.csv; read only).
        config: The run's settings (task and plane are read).
        valid_split: Validate on MRNet's own ``valid`` split; ignored for the other layouts, which
            always hold out ``config.val_fraction`` of the training cases.
        kneemri_positive: Which KneeMRI grades count as positive.

    Raises:
        ConfigurationError, DatasetError: The folder is not a usable data set for the task.
    """
    layout = detect_layout(data)
    options = {"kneemri_positive": kneemri_positive} if layout == "kneemri" else {}
    split = "train" if layout == "mrnet" else None
    train_set = open_dataset(data, config.task, config.plane, split, **options)
    if valid_split and layout == "mrnet":
        valid_set = open_dataset(data, config.task, config.plane, "valid")
        text = f"training on {train_set.describe()}; validating on {valid_set.describe()}"
        return TrainingData(train_set, valid_set, text)
    text = f"training on {train_set.describe()}, {config.val_fraction:.0%} held out for validation"
    return TrainingData(train_set, None, text)


@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished, stopped or failed session leaves behind.

    Attributes:
        path: The best-checkpoint model file, None if no epoch finished validation.
        best_epoch: Its epoch (1-based).
        metrics: Its validation metrics (Table 2 keys, plus ``loss`` and ``n``).
        history: One record per epoch known to the model file or the run.
        stopped: The run was stopped (by the user or an error) before its last epoch.
        error: Why the run failed (a data or configuration problem), empty if it did not.
        result: The loop's full result for a run that returned (None if stopped between steps or failed).
    """

    path: Path | None
    best_epoch: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False
    error: str = ""
    result: TrainResult | None = None

    @classmethod
    def from_result(cls, result: TrainResult) -> TrainingOutcome:
        """The outcome of a run that returned."""
        return cls(
            result.path,
            result.best_epoch,
            result.metrics,
            result.history,
            result.cancelled,
            result=result,
        )

    @classmethod
    def from_checkpoint(cls, path: Path, error: str = "") -> TrainingOutcome:
        """The outcome of a stopped run: whatever its best checkpoint holds (if it wrote one)."""
        from napari_elnet.models.model_file import load_model

        if not path.is_file():
            return cls(None, None, stopped=True, error=error)
        info = load_model(path).info
        best = info.provenance.get("best_epoch")
        best_epoch = int(best) if isinstance(best, int | float) else None
        return cls(path, best_epoch, dict(info.metrics), list(info.history), True, error)


def training_session(
    config: TrainConfig,
    data: str | Path,
    out: str | Path,
    *,
    valid_split: bool = True,
    resume: str | Path | None = None,
    kneemri_positive: KneeMriPositive = "injured",
    cancel: threading.Event | None = None,
) -> Generator[str | TrainProgress, None, TrainingOutcome]:
    """Open the data set and train; yields its description, then every progress.

    When ``cancel`` is set the run stops at its next step in any phase (preparing, training or
    validating) and returns what the best checkpoint so far holds. A data or configuration problem
    (:class:`~napari_elnet.common.errors.ElnetError`, ``OSError``) does not raise: it ends the
    session with :attr:`TrainingOutcome.error` set, keeping the best checkpoint written before it.

    Args:
        config: The run's settings (one run: ``config.folds`` is not used here).
        data: The labelled data folder (read only).
        out: Model file for the best checkpoint (outside ``data``).
        valid_split: Validate on MRNet's ``valid`` split instead of holding out
            ``config.val_fraction`` of the training cases (see :func:`open_training_data`).
        resume: A model file to continue from (see :func:`~napari_elnet.training.loop.train_steps`).
        kneemri_positive: Which KneeMRI grades count as positive.
        cancel: Set (from any thread) to stop.
    """
    out = Path(out)
    try:
        opened = open_training_data(data, config, valid_split, kneemri_positive)
        yield opened.description
        steps = train_steps(
            config,
            opened.train_set,
            out,
            opened.valid_set,
            cancel=cancel,
            resume=resume,
            source=str(data),
        )
        end = yield from relay(steps, cancel)
    except (ElnetError, OSError) as exc:  # bad data or settings: report, keep the best so far
        return TrainingOutcome.from_checkpoint(out, error=str(exc))
    if end.result is None:
        return TrainingOutcome.from_checkpoint(out)
    return TrainingOutcome.from_result(end.result)


def eta_seconds(progress: TrainProgress, train_started: float | None) -> float:
    """Seconds left, extrapolated from the epochs done since training started (nan if unknown).

    Args:
        progress: The latest progress.
        train_started: ``progress.elapsed`` at the first training step (None before it).
    """
    if train_started is None or progress.phase == "prepare":
        return math.nan
    within = progress.step / max(progress.steps, 1) if progress.phase == "train" else 1.0
    done = (progress.epoch - 1 + within) / max(progress.epochs, 1)
    spent = progress.elapsed - train_started
    return spent / done * (1.0 - done) if done > 0 and spent > 0 else math.nan
