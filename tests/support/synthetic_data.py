"""Tiny synthetic labelled data sets for the training tests: positives carry a bright square."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PLANE_FOLDERS = ("axial", "coronal", "sagittal")


def synthetic_volume(label: int, rng: np.random.Generator, slices: int = 3, size: int = 64):
    """(slices, size, size) uint8 noise; a label-1 volume has a bright square in its middle slice."""
    volume = rng.integers(20, 90, size=(slices, size, size)).astype(np.uint8)
    if label:
        lo, hi = size // 3, size // 3 + size // 4
        volume[slices // 2, lo:hi, lo:hi] = 250
    return volume


def write_mrnet(
    root: Path,
    labels: dict[str, list[int]],
    seed: int = 0,
    slices: int = 3,
    size: int = 64,
    tasks: tuple[str, ...] = ("abnormal", "acl", "meniscus"),
) -> Path:
    """MRNet layout under ``root``: ``labels`` maps split -> per-case labels (same for all tasks)."""
    rng = np.random.default_rng(seed)
    number = 0
    for split, split_labels in labels.items():
        for plane in PLANE_FOLDERS:
            (root / split / plane).mkdir(parents=True, exist_ok=True)
        rows = []
        for label in split_labels:
            case = f"{number:04d}"
            for plane in PLANE_FOLDERS:
                np.save(
                    root / split / plane / f"{case}.npy", synthetic_volume(label, rng, slices, size)
                )
            rows.append(f"{case},{label}")
            number += 1
        for task in tasks:
            (root / f"{split}-{task}.csv").write_text("\n".join(rows) + "\n")
    return root


def single_thread():
    """Generator for a fixture: torch on one thread (a shared CPU makes OpenMP spin), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
