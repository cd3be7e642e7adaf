"""Which cases go where: stratified validation split, stratified folds, class-balanced epochs.

Every function takes its randomness as a ``torch.Generator`` and returns index arrays into the
label array it was given.
"""

from __future__ import annotations

import numpy as np
import torch

from napari_elnet.common.errors import ConfigurationError


def _permutation(n: int, generator: torch.Generator) -> np.ndarray:
    return torch.randperm(n, generator=generator).numpy()


def _class_indices(labels: np.ndarray, generator: torch.Generator) -> list[np.ndarray]:
    """Indices of each class (0 then 1), each shuffled."""
    labels = np.asarray(labels)
    out = []
    for value in (0, 1):
        members = np.flatnonzero(labels == value)
        out.append(members[_permutation(members.size, generator)])
    return out


def stratified_split(
    labels: np.ndarray, fraction: float, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices with ``fraction`` of each class in validation (>= 1 per class).

    Raises:
        ConfigurationError: fraction outside (0, 1), or a class with fewer than 2 cases.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigurationError(f"validation fraction must be in (0, 1), got {fraction}")
    train, valid = [], []
    for value, members in enumerate(_class_indices(labels, generator)):
        if members.size < 2:
            raise ConfigurationError(
                f"cannot split off validation cases: class {value} has {members.size} case(s), "
                "needs at least 2"
            )
        n_valid = min(members.size - 1, max(1, round(fraction * members.size)))
        valid.append(members[:n_valid])
        train.append(members[n_valid:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def stratified_folds(
    labels: np.ndarray, folds: int, generator: torch.Generator
) -> list[np.ndarray]:
    """``folds`` disjoint validation index sets covering all cases, each class dealt round-robin.

    Raises:
        ConfigurationError: fewer than 2 folds, or a class with fewer cases than folds.
    """
    if folds < 2:
        raise ConfigurationError(f"cross-validation needs at least 2 folds, got {folds}")
    buckets: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for value, members in enumerate(_class_indices(labels, generator)):
        if members.size < folds:
            raise ConfigurationError(
                f"{folds}-fold cross-validation needs at least {folds} cases of class {value}, "
                f"found {members.size}"
            )
        for position, index in enumerate(members):
            buckets[(position + offset) % folds].append(int(index))
        offset += members.size
    return [np.sort(np.asarray(bucket, dtype=np.int64)) for bucket in buckets]


def epoch_order(labels: np.ndarray, oversample: bool, generator: torch.Generator) -> np.ndarray:
    """Shuffled indices of one epoch; with ``oversample`` the minority class is drawn again (with
    replacement) until both classes are equally many (paper, section 2.1)."""
    labels = np.asarray(labels)
    order = np.arange(labels.size)
    if oversample:
        counts = [int(np.sum(labels == 0)), int(np.sum(labels == 1))]
        minority = int(np.argmin(counts))
        missing = max(counts) - min(counts)
        members = np.flatnonzero(labels == minority)
        if missing and members.size:
            draws = torch.randint(members.size, (missing,), generator=generator).numpy()
            order = np.concatenate([order, members[draws]])
    return order[_permutation(order.size, generator)]
