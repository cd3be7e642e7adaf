"""Stratified k-fold cross-validation: one ELNet per fold, metrics reported as mean and SD.

Each fold trains on the other folds (its own Nyul landmarks fit on them) and validates on itself;
the best checkpoint of fold ``i`` (1-based) is written to ``<stem>.fold<i><suffix>`` next to ``out``.
Resized volumes are loaded once and shared by the folds (memory: about 8 MB per 32-slice series).
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_elnet.datasets import Case, subset
from napari_elnet.training.loop import TrainConfig, TrainProgress, TrainResult, train_steps
from napari_elnet.training.metrics import mean_and_sd
from napari_elnet.training.sampling import stratified_folds


@dataclass(frozen=True, eq=False)
class CrossValidationResult:
    """Per-fold results and, per metric, (mean, sample SD) of the folds' best-epoch metrics."""

    folds: tuple[TrainResult, ...]
    summary: dict[str, tuple[float, float]]

    @property
    def cancelled(self) -> bool:
        """True when a fold was cancelled (later folds did not run)."""
        return any(result.cancelled for result in self.folds)


def fold_path(out: str | Path, fold: int) -> Path:
    """Model file of fold ``fold`` (0-based): ``acl.pt`` -> ``acl.fold1.pt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.fold{fold + 1}{out.suffix}")


def cross_validate_steps(
    config: TrainConfig,
    dataset: Sequence[Case],
    out: str | Path,
    *,
    cancel: threading.Event | None = None,
    source: str = "",
) -> Generator[TrainProgress, None, CrossValidationResult]:
    """Train ``config.folds`` models on stratified folds of ``dataset``, yielding their progress.

    The folds are drawn from ``config.seed``; a cancelled fold ends the cross-validation.
    """
    labels = np.asarray([case.label for case in dataset], dtype=np.int64)
    generator = torch.Generator().manual_seed(config.seed)
    validation_sets = stratified_folds(labels, config.folds, generator)
    source = source or str(getattr(dataset, "root", ""))
    resized: dict[int, np.ndarray] = {}
    results: list[TrainResult] = []
    for fold, valid_idx in enumerate(validation_sets):
        train_idx = np.setdiff1d(np.arange(labels.size), valid_idx)
        result = yield from train_steps(
            config,
            subset(dataset, train_idx.tolist()),
            fold_path(out, fold),
            subset(dataset, valid_idx.tolist()),
            cancel=cancel,
            source=source,
            fold=fold,
            resized=resized,
        )
        results.append(result)
        if result.cancelled:
            break
    resized.clear()
    finished = [r.metrics for r in results if r.metrics]
    return CrossValidationResult(tuple(results), mean_and_sd(finished))
