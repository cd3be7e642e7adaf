"""Localization benchmark: does FullGrad point at the lesion?

On held-out phantom studies (seeds never used for training), for every default model and every
case positive for its task, check whether the most informative slice lies within the lesion's
slices (+-1) and whether the heatmap's peak lies inside the lesion's bounding box: the analogue of
the paper's agreement with a radiologist (8 of 9 tears, 7 of 7 intact knees). Also prints ROC-AUC
and the share of negative cases called negative on the same studies.

Usage: ``python benchmarks/bench_localization.py [--n 80] [--seed 5000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_elnet.inference.triage import TaskResult, run_triage
from napari_elnet.models.defaults import load_default_models
from napari_elnet.phantom import LesionTruth, generate_study
from napari_elnet.phantom.lesions import LESION_TASK
from napari_elnet.training.metrics import roc_auc


def lesion_hits(
    result: TaskResult, truth: list[LesionTruth], task: str, spacing: tuple[float, float, float]
) -> tuple[bool, bool, float]:
    """(top slice within a lesion's slices +-1, heatmap peak inside a lesion's box, distance (mm)
    from the peak to the nearest lesion box)."""
    relevant = [t for t in truth if task == "abnormal" or LESION_TASK[t.kind] == task]
    distance = min(t.distance(result.peak, spacing) for t in relevant)
    return any(t.near_slice(result.top_slice) for t in relevant), distance == 0.0, distance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=80, help="held-out studies")
    parser.add_argument("--seed", type=int, default=5000)
    args = parser.parse_args()
    models = load_default_models()
    if not models:
        raise SystemExit("no default models ship with this build")
    stats = {m.info.task: {"p": [], "y": [], "slice": [], "peak": [], "mm": []} for m in models}
    start = time.perf_counter()
    for i in range(args.n):
        study = generate_study(args.seed + i)
        series = [study.series[p] for p in ("sagittal", "coronal", "axial")]
        for result in run_triage(series, models, device="cpu"):
            task = result.task
            plane = result.plane
            label = study.labels[task]
            stats[task]["p"].append(result.probability)
            stats[task]["y"].append(label)
            if label:
                spacing = study.series[plane].spacing
                slice_hit, peak_hit, mm = lesion_hits(result, study.truth[plane], task, spacing)
                stats[task]["slice"].append(slice_hit)
                stats[task]["peak"].append(peak_hit)
                stats[task]["mm"].append(mm)
    seconds = time.perf_counter() - start
    print(
        f"{args.n} held-out phantom studies (seeds {args.seed}..{args.seed + args.n - 1}), {seconds:.0f} s"
    )
    print(
        f"{'task':9s} {'n+':>4s} {'n-':>4s} {'ROC-AUC':>8s} {'top slice hit':>14s} {'peak in box':>12s} {'negatives called negative':>26s} {'peak to box, mm (median, max)':>30s}"
    )
    for task, s in stats.items():
        y, p = np.array(s["y"]), np.array(s["p"])
        positives, negatives = int(y.sum()), int((1 - y).sum())
        slice_rate = np.mean(s["slice"]) if s["slice"] else float("nan")
        peak_rate = np.mean(s["peak"]) if s["peak"] else float("nan")
        spec = float(np.mean(p[y == 0] < 0.5)) if negatives else float("nan")
        print(
            f"{task:9s} {positives:4d} {negatives:4d} {roc_auc(y, p):8.3f} "
            f"{slice_rate:8.3f} ({int(np.sum(s['slice']))}/{positives}) "
            f"{peak_rate:6.3f} ({int(np.sum(s['peak']))}/{positives}) "
            f"{spec:14.3f} ({int(np.sum(p[y == 0] < 0.5))}/{negatives}) "
            f"{np.median(s['mm']):16.1f} {np.max(s['mm']):6.1f}"
        )


if __name__ == "__main__":
    main()
