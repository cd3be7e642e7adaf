"""Distributed benchmark: streaming vs in-memory training, and Dask triage throughput.

Sub-commands (each prints measured numbers; nothing is asserted):

``data OUT [--train 1130] [--valid 120]``
    Writes an MRNet-layout phantom data set (axial plane, the ACL task's plane) with the MRNet
    split sizes. Validation cases are written first, then training cases, each as soon as it is
    generated, so an interrupted run leaves a usable prefix and a re-run continues where it
    stopped (existing volumes are kept). The label files are rewritten for what exists.
    About 2 s of CPU per study (the phantom builds all three planes).

``train DATA --mode memory|stream [--train N] [--valid N] [--k 4] [--cache DIR]``
    One epoch of ``train_steps`` (the paper's recipe: oversampling, augmentation) on the first N
    training and validation cases, in a child process of its own; prints its peak resident memory
    (the process and its DataLoader workers, sampled every 50 ms) and training volumes/s.

``triage [--studies 24] [--workers 1 2]``
    Dask triage of phantom DICOM studies on a local cluster of 1 and 2 workers: studies/min.

Usage (the figures in docs/performance.md)::

    nice -n 10 python benchmarks/bench_distributed.py data /tmp/x_mrnet_size > /tmp/x_data.log 2>&1
    python benchmarks/bench_distributed.py train /tmp/x_mrnet_size --mode stream
    python benchmarks/bench_distributed.py train /tmp/x_mrnet_size --mode memory --train 200
    python benchmarks/bench_distributed.py triage
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

MRNET_TRAIN, MRNET_VALID = 1130, 120
SEED = 15
TASKS = ("abnormal", "acl", "meniscus")


def _case_plan(n_train: int, n_valid: int) -> list[tuple[str, str, int]]:
    """(split, case id, study seed) in generation order: validation cases first."""
    plan = [("valid", f"{n_train + i:04d}", SEED * 100003 + n_train + i) for i in range(n_valid)]
    plan += [("train", f"{i:04d}", SEED * 100003 + i) for i in range(n_train)]
    return plan


def write_labels(root: Path) -> dict[str, int]:
    """Rewrite ``{split}-{task}.csv`` for the volumes present (labels from ``labels.tsv``)."""
    labels: dict[str, list[int]] = {}
    log = root / "labels.tsv"
    if log.is_file():
        for line in log.read_text().splitlines():
            case, *values = line.split("\t")
            labels[case] = [int(v) for v in values]
    counts = {}
    for split in ("train", "valid"):
        cases = sorted(p.stem for p in (root / split / "axial").glob("*.npy") if p.stem in labels)
        counts[split] = len(cases)
        for t, task in enumerate(TASKS):
            with (root / f"{split}-{task}.csv").open("w", newline="") as handle:
                csv.writer(handle).writerows((case, labels[case][t]) for case in cases)
    return counts


def cmd_data(args: argparse.Namespace) -> None:
    """Generate the phantom data set (axial volumes + labels), resumable."""
    from napari_elnet.phantom import generate_study, to_mrnet_volume

    root = Path(args.out)
    started = time.perf_counter()
    made = 0
    plan = _case_plan(args.train, args.valid)
    for number, (split, case, seed) in enumerate(plan, start=1):
        path = root / split / "axial" / f"{case}.npy"
        if path.is_file():
            continue
        study = generate_study(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, to_mrnet_volume(study.series["axial"]))
        with (root / "labels.tsv").open("a") as handle:  # label first: a volume always has one
            handle.write("\t".join([case, *(str(int(study.labels[t])) for t in TASKS)]) + "\n")
        tmp.replace(path)
        made += 1
        if made % 25 == 0:
            rate = made / (time.perf_counter() - started)
            print(f"{number}/{len(plan)} studies, {rate:.2f} studies/s", flush=True)
            write_labels(root)
    counts = write_labels(root)
    print(f"done: {counts} in {time.perf_counter() - started:.0f} s", flush=True)


def cmd_expand(args: argparse.Namespace) -> None:
    """An MRNet-size data set from a smaller pool: case i is a hard link to pool volume i mod P."""
    pool = Path(args.pool)
    labels: dict[str, list[str]] = {}
    for line in (pool / "labels.tsv").read_text().splitlines():
        case, *values = line.split("\t")
        labels[case] = values
    volumes = sorted(
        p for p in pool.glob("*/axial/*.npy") if p.stem in labels and not p.stem.endswith(".tmp")
    )
    root = Path(args.out)
    rows = []
    for split, count, start in (("valid", args.valid, 0), ("train", args.train, args.valid)):
        folder = root / split / "axial"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            source = volumes[(start + i) % len(volumes)]
            case = f"{args.train + i:04d}" if split == "valid" else f"{i:04d}"
            target = folder / f"{case}.npy"
            if not target.exists():
                target.hardlink_to(source)
            rows.append("\t".join([case, *labels[source.stem]]))
    (root / "labels.tsv").write_text("\n".join(rows) + "\n")
    counts = write_labels(root)
    print(f"{counts} cases from {len(volumes)} distinct phantom volumes in {root}")


def _tree_memory(pid: int) -> tuple[int, int]:
    """(RSS of the process, PSS of it and its children) in bytes."""
    import psutil

    process = psutil.Process(pid)
    rss = process.memory_info().rss
    pss = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            pss += member.memory_full_info().pss
        except psutil.Error:
            continue
    return rss, pss


def cmd_train(args: argparse.Namespace) -> None:
    """Run :func:`train_child` in a child process, sampling its memory; print the figures."""
    import json
    import subprocess
    import threading

    command = [sys.executable, __file__, "train-child", json.dumps(vars(args))]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = [0, 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                rss, pss = _tree_memory(child.pid)
            except Exception:  # the child is gone
                return
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    stop.set()
    sampler.join()
    figures = json.loads(out.strip().splitlines()[-1])
    figures |= {"peak_rss_gb": peak[0] / 1e9, "peak_pss_tree_gb": peak[1] / 1e9}
    print(json.dumps(figures, indent=1))


def train_child(settings: dict[str, object]) -> None:
    """One epoch of training on the first N cases (in this process); prints a JSON line."""
    import json
    import resource
    import threading

    import torch

    from napari_elnet.datasets import open_dataset
    from napari_elnet.training.cache import CacheConfig
    from napari_elnet.training.config import TrainConfig
    from napari_elnet.training.loop import train_steps

    torch.set_num_threads(int(settings["threads"]))  # type: ignore[call-overload]
    data = Path(str(settings["data"]))
    train_set = open_dataset(data, "acl", "axial", "train")[: int(settings["train"])]  # type: ignore[call-overload]
    valid_set = open_dataset(data, "acl", "axial", "valid")[: int(settings["valid"])]  # type: ignore[call-overload]
    config = TrainConfig(task="acl", plane="axial", k=int(settings["k"]), epochs=1, device="cpu")  # type: ignore[call-overload]
    cache = None
    if settings["mode"] == "stream":
        folder = Path(str(settings["cache"])) if settings["cache"] else None
        cache = CacheConfig(folder=folder, workers=int(settings["workers"]))  # type: ignore[call-overload]
    out = Path(str(settings["out"]))
    started = time.perf_counter()
    phases: dict[str, float] = {}
    stop_after = int(settings["max_steps"]) or None  # type: ignore[call-overload]
    cancel = threading.Event()
    steps = train_steps(config, train_set, out, valid_set, cache=cache, cancel=cancel)
    last: dict[str, float] = {}
    try:
        while True:
            progress = next(steps)
            phases.setdefault(progress.phase, time.perf_counter() - started)
            if progress.phase == "train":
                last = {
                    "steps": progress.step,
                    "of": progress.steps,
                    "rate": progress.volumes_per_s,
                }
                if stop_after and progress.step >= stop_after:
                    cancel.set()
            elif progress.phase == "validate":
                last["validate_rate"] = progress.volumes_per_s
    except StopIteration:
        pass
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "mode": settings["mode"],
                "train_cases": len(train_set),
                "valid_cases": len(valid_set),
                "k": settings["k"],
                "train_steps": last.get("steps"),
                "epoch_steps": last.get("of"),
                "prepare_s": phases.get("train", seconds),
                "train_volumes_per_s": last.get("rate"),
                "validate_volumes_per_s": last.get("validate_rate"),
                "total_s": seconds,
                "ru_maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                "threads": settings["threads"],
                "workers": settings["workers"],
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write the MRNet-size phantom data set")
    data.add_argument("out")
    data.add_argument("--train", type=int, default=MRNET_TRAIN)
    data.add_argument("--valid", type=int, default=MRNET_VALID)
    expand = sub.add_parser("expand", help="MRNet-size set from a pool (hard links)")
    expand.add_argument("pool")
    expand.add_argument("out")
    expand.add_argument("--train", type=int, default=MRNET_TRAIN)
    expand.add_argument("--valid", type=int, default=MRNET_VALID)
    train = sub.add_parser("train", help="one epoch, in memory or streaming: memory, volumes/s")
    train.add_argument("data")
    train.add_argument("--mode", choices=("memory", "stream"), required=True)
    train.add_argument("--train", type=int, default=MRNET_TRAIN)
    train.add_argument("--valid", type=int, default=MRNET_VALID)
    train.add_argument("--k", type=int, default=4)
    train.add_argument("--threads", type=int, default=2)
    train.add_argument("--workers", type=int, default=2, help="DataLoader workers (stream)")
    train.add_argument("--cache", default="", help="cache folder (default: a new one in /tmp)")
    train.add_argument("--out", default="/tmp/x_bench_model.pt")
    train.add_argument("--max-steps", type=int, default=0, help="stop after N steps (0: epoch)")
    child = sub.add_parser("train-child")
    child.add_argument("settings")
    args = parser.parse_args(argv)
    if args.command == "data":
        cmd_data(args)
    elif args.command == "expand":
        cmd_expand(args)
    elif args.command == "train":
        cmd_train(args)
    elif args.command == "train-child":
        import json

        train_child(json.loads(args.settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
