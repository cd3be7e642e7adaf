"""Evaluating models on a labelled data set: the paper's Table 2 metrics per task.

Each model reads the series of its own plane and task from the data folder, through the same
:func:`~napari_elnet.transforms.preprocess.prepare_volume` path as training and triage. The computation is a
generator (:func:`evaluate_steps`) that yields progress per case; :func:`evaluate` runs it to the end.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_elnet.common.device import resolve_device
from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.common.steps import run_to_end
from napari_elnet.datasets import CaseDataset, dataset_tasks, default_split, open_dataset
from napari_elnet.datasets.kneemri import KneeMriPositive
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.training.metrics import METRIC_NAMES, binary_metrics
from napari_elnet.transforms.preprocess import prepare_volume

AUTO = "auto"
"""Split value meaning MRNet's ``valid`` split (the paper's evaluation set), all cases elsewhere."""

TABLE_COLUMNS: tuple[str, ...] = (*METRIC_NAMES, "n")


@dataclass(frozen=True)
class EvaluateProgress:
    """``step`` of ``steps`` cases of ``task`` done."""

    task: str
    step: int
    steps: int
    elapsed: float


@dataclass(frozen=True, eq=False)
class TaskEvaluation:
    """One model on one data set.

    Attributes:
        task, plane: What the model predicts and reads.
        model: The model's identity (``task/plane file@sha256``).
        metrics: accuracy, sensitivity, specificity, roc_auc, mcc at the model's threshold, and n.
        case_ids, labels, probabilities: Per case, in data set order.
    """

    task: str
    plane: str
    model: str
    metrics: dict[str, float]
    case_ids: tuple[str, ...]
    labels: np.ndarray
    probabilities: np.ndarray

    def record(self) -> dict[str, float | int]:
        """The Table 2 columns as JSON-able values (``n`` as an int)."""
        return {
            k: (int(self.metrics[k]) if k == "n" else float(self.metrics[k])) for k in TABLE_COLUMNS
        }


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Results per task, the split used, and the default models skipped (with the reason)."""

    tasks: dict[str, TaskEvaluation]
    split: str | None
    skipped: tuple[str, ...] = ()

    def records(self) -> dict[str, dict[str, float | int]]:
        """Task -> Table 2 columns."""
        return {task: result.record() for task, result in self.tasks.items()}


def predict_steps(
    loaded: LoadedModel, dataset: CaseDataset, device: torch.device, started: float
) -> Generator[EvaluateProgress, None, np.ndarray]:
    """Positive-class probability of every case, yielding progress per case."""
    model = loaded.model.to(device).eval()
    probabilities = np.empty(len(dataset), dtype=np.float64)
    with torch.no_grad():
        for i, case in enumerate(dataset):
            x = prepare_volume(case.volume(), loaded.info.landmarks).to(device)
            probabilities[i] = float(torch.softmax(model(x), dim=0)[1])
            yield EvaluateProgress(
                loaded.info.task, i + 1, len(dataset), time.perf_counter() - started
            )
    return probabilities


def evaluate_steps(
    data: str | Path,
    models: Sequence[LoadedModel] | None = None,
    split: str | None = AUTO,
    device: str = "auto",
    kneemri_positive: KneeMriPositive = "injured",
) -> Generator[EvaluateProgress, None, Evaluation]:
    """Run each model on its task's cases of ``data`` and compute the Table 2 metrics.

    Args:
        data: A labelled data folder (see :func:`napari_elnet.datasets.open_dataset`).
        models: Models with distinct tasks; None for the shipped default models, of which those
            whose task or plane the data set lacks are skipped (listed in ``Evaluation.skipped``).
        split: ``auto`` (MRNet: ``valid``, the paper's evaluation set), ``train``, ``valid``, or
            None for all cases.
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        kneemri_positive: KneeMRI label mapping (``injured`` or ``ruptured``).

    Raises:
        ConfigurationError: no models, repeated tasks, or (for given models) a task the data set
            has no labels for.
    """
    defaults = models is None
    if models is None:
        from napari_elnet.models.defaults import load_default_models

        models = load_default_models()
    if not models:
        raise ConfigurationError("no model given and no default models ship with this build")
    tasks = [m.info.task for m in models]
    if len(set(tasks)) != len(tasks):
        raise ConfigurationError(f"each task needs exactly one model, got {tasks}")
    if split == AUTO:
        split = default_split(data, "evaluate")
    available = dataset_tasks(data)
    torch_device = resolve_device(device)
    started = time.perf_counter()
    results: dict[str, TaskEvaluation] = {}
    skipped: list[str] = []
    for loaded in models:
        info = loaded.info
        try:
            if info.task not in available:
                raise ConfigurationError(f"{data}: no labels for task {info.task!r} ({available})")
            dataset = open_dataset(data, info.task, info.plane, split, kneemri_positive)
        except ElnetError as exc:
            if not defaults:
                raise
            skipped.append(f"{loaded.identity}: {exc}")
            continue
        probabilities = yield from predict_steps(loaded, dataset, torch_device, started)
        labels = dataset.labels
        results[info.task] = TaskEvaluation(
            task=info.task,
            plane=info.plane,
            model=loaded.identity,
            metrics=binary_metrics(labels, probabilities, info.threshold),
            case_ids=tuple(case.case_id for case in dataset),
            labels=labels,
            probabilities=probabilities,
        )
    if not results:
        raise ConfigurationError(
            f"{data}: none of the models fits this data set ({'; '.join(skipped)})"
        )
    return Evaluation(results, split, tuple(skipped))


def evaluate(
    data: str | Path,
    models: Sequence[LoadedModel] | None = None,
    split: str | None = AUTO,
    device: str = "auto",
    kneemri_positive: KneeMriPositive = "injured",
) -> Evaluation:
    """Run :func:`evaluate_steps` to the end and return its result."""
    return run_to_end(evaluate_steps(data, models, split, device, kneemri_positive))
