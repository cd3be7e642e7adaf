"""Robustness benchmark: held-out ROC-AUC of the default models on plain and on transformed series.

The shipped demonstration models were trained without augmentation (see docs/model-card.md). This
measures what that costs: on held-out phantom studies (MRNet layout, as written by the training
recipe) each model is evaluated on its series as stored, and again after a random transform of the
paper's augmentation (translation, flip, scaling, rotation up to 10 degrees; optionally the
90-degree turns), one seeded draw per series.

Usage: ``python benchmarks/bench_robustness.py [--n 100] [--seed 2000] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_elnet.datasets import open_dataset
from napari_elnet.models.defaults import load_default_models
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.phantom import write_mrnet
from napari_elnet.training.metrics import roc_auc
from napari_elnet.transforms.augment import ROT90_PLANES, AugmentConfig, augment
from napari_elnet.transforms.preprocess import prepare_volume

VARIANTS: dict[str, AugmentConfig | None] = {
    "as stored": None,
    "flip only": AugmentConfig(translate=0.0, scale=(1.0, 1.0), rotate=0.0, rot90_planes=()),
    "paper, no 90-degree turns": AugmentConfig(rot90_planes=()),
    "paper, with 90-degree turns": AugmentConfig(rot90_planes=ROT90_PLANES),
}


def prepared(loaded: LoadedModel, data: Path) -> tuple[list[torch.Tensor], np.ndarray]:
    """The held-out series of a model's plane, read and prepared once, and their labels."""
    info = loaded.info
    cases = open_dataset(data, info.task, info.plane, "valid")
    return [prepare_volume(c.volume(), info.landmarks) for c in cases], np.array(
        [c.label for c in cases]
    )


def probabilities(
    loaded: LoadedModel, volumes: list[torch.Tensor], transform: AugmentConfig | None, seed: int
) -> np.ndarray:
    """Positive-class probabilities of one model on prepared series, transformed or not."""
    generator = torch.Generator().manual_seed(seed)
    model = loaded.model.eval()
    scores = []
    with torch.no_grad():
        for x in volumes:
            if transform is not None:
                x = augment(x, loaded.info.plane, generator, transform)
            scores.append(float(torch.softmax(model(x), 0)[1]))
    return np.array(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="held-out phantom studies")
    parser.add_argument("--seed", type=int, default=2000, help="phantom seed (recipe: 2000)")
    parser.add_argument("--data", type=Path, help="an existing MRNet-layout folder to use")
    args = parser.parse_args()
    data = args.data
    if data is None:
        data = Path(tempfile.mkdtemp(prefix="elnet-robustness-")) / "held-out"
        write_mrnet(data, args.n, seed=args.seed, valid_fraction=1.0)
    models = load_default_models()
    print(f"held-out data: {data}")
    print(f"{'model':22s} " + " ".join(f"{name:>28s}" for name in VARIANTS))
    for loaded in models:
        started = time.perf_counter()
        volumes, labels = prepared(loaded, data)
        aucs = [
            roc_auc(labels, probabilities(loaded, volumes, transform, seed=1))
            for transform in VARIANTS.values()
        ]
        name = f"{loaded.info.task}/{loaded.info.plane}"
        cells = " ".join(f"{auc:28.3f}" for auc in aucs)
        print(f"{name:22s} {cells}   ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
