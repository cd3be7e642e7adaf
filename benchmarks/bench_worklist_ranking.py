"""Worklist ranking benchmark: does the suspicion score put the torn knees first?

Writes N phantom DICOM studies with their labels (in a temporary folder), triages them with the
shipped default models through the worklist pipeline (as ``napari-elnet triage`` does), and prints
the wall time, and per label the ROC-AUC of the study ranking (suspicion) and of that label's own
model, and how many positives rank in the top of the list.

Usage: ``python benchmarks/bench_worklist_ranking.py [--n 100] [--seed 42] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_elnet.models.defaults import load_default_models
from napari_elnet.phantom import write_dicom_dataset
from napari_elnet.phantom.study import TASKS
from napari_elnet.training.metrics import roc_auc
from napari_elnet.worklist import WorklistConfig, discover_studies, run_worklist
from napari_elnet.worklist.report import StudyResult


def read_labels(root: Path) -> dict[str, dict[str, int]]:
    """Case folder -> label -> 0/1, from the data set's ``labels.csv``."""
    with (root / "labels.csv").open(newline="") as handle:
        return {row["case"]: {t: int(row[t]) for t in TASKS} for row in csv.DictReader(handle)}


def case_of(result: StudyResult) -> str:
    """The case folder a study came from (its first root-relative folder's first part)."""
    return Path(result.folders[0]).parts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="phantom studies")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, help="write the studies and report here instead")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="elnet-ranking-"))
    data = work / "studies"
    started = time.perf_counter()
    if not (data / "labels.csv").exists():
        write_dicom_dataset(data, args.n, seed=args.seed)
    print(
        f"{args.n} phantom DICOM studies (seed {args.seed}) in {time.perf_counter() - started:.0f} s"
    )
    labels = read_labels(data)
    models = load_default_models()
    # Phantom studies carry no patient data; PHI mode keeps the folders that map studies to labels.
    config = WorklistConfig(
        device="cpu", report=work / "report.csv", resume=False, include_phi=True
    )
    report = run_worklist(discover_studies(data), models, config)
    ok = [r for r in report.results if r.status == "ok"]
    rate = 60.0 * len(report.results) / report.elapsed
    print(
        f"triaged {len(report.results)} studies in {report.elapsed:.1f} s ({rate:.0f} studies/min), "
        f"{len(report.results) - len(ok)} errors"
    )
    suspicion = np.array([r.suspicion for r in ok])
    order = np.argsort(-suspicion, kind="stable")
    for task in TASKS:
        truth = np.array([labels[case_of(r)][task] for r in ok])
        own = np.array([next(t.probability for t in r.tasks if t.task == task) for r in ok])
        positives = int(truth.sum())
        top = int(truth[order[:positives]].sum())
        print(
            f"{task:9s} positives {positives:3d}  suspicion ROC-AUC {roc_auc(truth, suspicion):.3f}  "
            f"own model ROC-AUC {roc_auc(truth, own):.3f}  positives in the top {positives}: {top}"
        )
    torn = np.array([labels[case_of(r)]["acl"] or labels[case_of(r)]["meniscus"] for r in ok])
    positives = int(torn.sum())
    print(
        f"{'any tear':9s} positives {positives:3d}  suspicion ROC-AUC {roc_auc(torn, suspicion):.3f}"
        f"  positives in the top {positives}: {int(torn[order[:positives]].sum())}"
    )


if __name__ == "__main__":
    main()
