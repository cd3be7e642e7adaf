"""Distributed benchmark: streaming vs in-memory training, and Dask triage throughput.

Sub-commands (each prints measured numbers; nothing is asserted):

``data OUT [--train 1130] [--valid 120]``
    Writes an MRNet-layout phantom data set (axial plane, the ACL task's plane) with the MRNet
    split sizes. Validation cases are written first, then training cases, each as soon as it is
    generated, so an interrupted run leaves a usable prefix and a re-run continues where it
    stopped (existing volumes are kept). The label files are rewritten for what exists.
    About 2 s of CPU per study (the phantom builds all three planes).

``expand POOL OUT [--train 1130] [--valid 120]``
    An MRNet-size set from a smaller pool: case i is a hard link to pool volume i mod P (for memory
    and throughput every case is read, prepared and cached on its own; only the pixels repeat).

``train DATA --mode memory|stream [--train N] [--valid N] [--k 4] [--max-steps S] [--cache DIR]``
    One epoch of ``train_steps`` (the paper's recipe: oversampling, augmentation, dropout) on the
    first N training and validation cases, in a child process of its own (stopped after S training
    steps when given); prints its peak resident memory (RSS of the process, and PSS of it and its
    DataLoader workers, sampled every 0.2 s), preparation time and training volumes/s.

``triage [--studies 16] [--workers 1 2]``
    Synthetic 3-plane DICOM studies triaged by the default models in one process and on Dask local
    clusters of 1 and 2 workers: studies/min (with and without the cluster's start-up).

Usage (the figures in docs/performance.md)::

    nice -n 10 python benchmarks/bench_distributed.py data /tmp/x_mrnet_size
    python benchmarks/bench_distributed.py expand /tmp/x_mrnet_size /tmp/x_mrnet_full
    python benchmarks/bench_distributed.py train /tmp/x_mrnet_full --mode memory --train 160 \\
        --valid 20 --max-steps 40
    python benchmarks/bench_distributed.py train /tmp/x_mrnet_full --mode stream --train 160 \\
        --valid 20 --max-steps 40 --cache /tmp/x_cache_bench
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


def _pss(pid: int) -> int:
    """Proportional set size of a process in bytes (Linux ``smaps_rollup``; 0 when gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _tree_memory(pid: int) -> tuple[int, int]:
    """(RSS of the process, PSS of it and its children) in bytes."""
    import psutil

    process = psutil.Process(pid)
    rss = process.memory_info().rss
    members = [process, *process.children(recursive=True)]
    return rss, sum(_pss(member.pid) for member in members)


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
            stop.wait(0.2)

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

    import psutil
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
    me = psutil.Process()
    train_cpu0 = None
    try:
        while True:
            progress = next(steps)
            phases.setdefault(progress.phase, time.perf_counter() - started)
            if progress.phase == "train" and train_cpu0 is None:
                times = me.cpu_times()
                train_cpu0 = times.user + times.system, time.perf_counter()
            if progress.phase == "train":
                last |= {
                    "steps": progress.step,
                    "of": progress.steps,
                    "rate": progress.volumes_per_s,
                }
                times = me.cpu_times()  # the DataLoader workers' CPU is added when they end
                train_end = times.user + times.system, time.perf_counter()
                if stop_after and progress.step >= stop_after:
                    cancel.set()
            elif progress.phase == "validate":
                last["validate_rate"] = progress.volumes_per_s
    except StopIteration:
        pass
    seconds = time.perf_counter() - started
    times = me.cpu_times()  # children: the DataLoader workers (training and validation ones)
    workers_cpu = times.children_user + times.children_system
    cpu_train = train_end[0] - train_cpu0[0] + workers_cpu
    wall_train = train_end[1] - train_cpu0[1]
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
                "train_cpu_s_per_step": cpu_train / max(last.get("steps", 1), 1),
                "train_wall_s_per_step": wall_train / max(last.get("steps", 1), 1),
                "workers_cpu_s": workers_cpu,
                "ru_maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                "threads": settings["threads"],
                "workers": settings["workers"],
            }
        )
    )


def cmd_triage(args: argparse.Namespace) -> None:
    """Studies/min of one process and of Dask local clusters with 1 and 2 workers (same studies)."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_worklist import write_synthetic_study

    from napari_elnet.common.steps import run_to_end
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.worklist import WorklistConfig, discover_studies, run_worklist
    from napari_elnet.worklist.dask_triage import dask_worklist_steps

    with tempfile.TemporaryDirectory(prefix="x-bench-dask-") as tmp:
        root = Path(tmp) / "archive"
        for index in range(args.studies):
            write_synthetic_study(root, index, args.slices, args.size)
        discovery = discover_studies(root)
        print(
            f"{len(discovery.studies)} synthetic DICOM studies, 3 planes x {args.slices} slices of "
            f"{args.size}x{args.size}; default models: "
            f"{', '.join(m.info.task for m in load_default_models())}"
        )
        started = time.perf_counter()
        run_worklist(discovery, load_default_models(), WorklistConfig(device="cpu"))
        seconds = time.perf_counter() - started
        print(f"one process (run_worklist): {60 * args.studies / seconds:.1f} studies/min")
        for workers in args.workers:
            finished: list[float] = []

            def record(progress, finished=finished) -> None:  # type: ignore[no-untyped-def]
                if progress.stage == "study":
                    finished.append(time.perf_counter())

            config = WorklistConfig(device="cpu")
            started = time.perf_counter()
            run_to_end(dask_worklist_steps(discovery, f"local:{workers}", (), config), record)
            total = time.perf_counter() - started
            steady = (len(finished) - 1) / (finished[-1] - finished[0]) * 60
            print(
                f"dask local:{workers}: {60 * args.studies / total:.1f} studies/min with cluster "
                f"start-up ({total:.1f} s), {steady:.1f} studies/min between first and last result"
            )


def _allreduce_worker(rank: int, numel: int, port: int, repeats: int, out: object) -> None:
    """One gloo rank: time ``repeats`` all-reduces of ``numel`` float32 values."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    tensor = torch.randn(numel)
    dist.all_reduce(tensor)  # warm-up
    times = []
    for _ in range(repeats):
        dist.barrier()
        started = time.perf_counter()
        dist.all_reduce(tensor)
        times.append(time.perf_counter() - started)
    if rank == 0:
        out.put(sorted(times)[len(times) // 2])  # type: ignore[attr-defined]
    dist.destroy_process_group()


def cmd_stepcost(args: argparse.Namespace) -> None:
    """The parts of one data-parallel step, measured here: forward + backward of one series,
    reading one series from the cache, and a gloo all-reduce of the gradient (2 local ranks)."""
    import socket

    import torch
    import torch.multiprocessing as mp
    import torch.nn.functional as F

    from napari_elnet.models.model_file import ModelInfo, build_model
    from napari_elnet.training.cache import CachedVolumes

    torch.set_num_threads(args.threads)
    model = build_model(ModelInfo(task="acl", plane="axial", k=args.k), seed=0)
    numel = sum(p.numel() for p in model.parameters())
    x = torch.randn(args.slices, 1, 256, 256)
    target = torch.tensor([1])
    times, cpu = [], []
    for _ in range(args.repeats + 1):
        started, cpu0 = time.perf_counter(), time.process_time()
        F.cross_entropy(model(x)[None], target).backward()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu0)
    step = sorted(times[1:])[len(times[1:]) // 2]
    step_cpu = sorted(cpu[1:])[len(cpu[1:]) // 2]
    print(
        f"ELNet k={args.k}: {numel} parameters ({numel * 4 / 1e6:.2f} MB of float32 gradient); "
        f"forward + backward of one {args.slices}-slice series: {1000 * step:.0f} ms wall, "
        f"{1000 * step_cpu:.0f} ms CPU (medians of {args.repeats}, {args.threads} threads)"
    )
    if args.cache:
        entries = [p.parent for p in Path(args.cache).glob("*/index.json")]
        volumes = CachedVolumes(max(entries, key=lambda p: len(CachedVolumes(p))))
        reads, read_cpu = [], []
        for i in range(min(len(volumes), 50)):
            started, cpu0 = time.perf_counter(), time.process_time()
            volumes[i].float()
            reads.append(time.perf_counter() - started)
            read_cpu.append(time.process_time() - cpu0)
        print(
            f"cache read of one series (float16 -> float32, {len(reads)} series): "
            f"{1000 * sorted(reads)[len(reads) // 2]:.1f} ms wall, "
            f"{1000 * sorted(read_cpu)[len(read_cpu) // 2]:.1f} ms CPU (medians)"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_allreduce_worker, args=(r, numel, port, args.repeats, queue))
        for r in range(2)
    ]
    for process in processes:
        process.start()
    median = queue.get(timeout=600)
    for process in processes:
        process.join()
    print(f"gloo all-reduce of that gradient, 2 local ranks: {1000 * median:.2f} ms median")


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
    triage = sub.add_parser("triage", help="Dask triage studies/min with 1 and 2 workers")
    triage.add_argument("--studies", type=int, default=16)
    triage.add_argument("--slices", type=int, default=32)
    triage.add_argument("--size", type=int, default=256)
    triage.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    cost = sub.add_parser("stepcost", help="per-step costs: compute, cache read, all-reduce")
    cost.add_argument("--k", type=int, default=4)
    cost.add_argument("--slices", type=int, default=35)
    cost.add_argument("--threads", type=int, default=2)
    cost.add_argument("--repeats", type=int, default=10)
    cost.add_argument("--cache", default="", help="a cache folder to time reads from")
    child = sub.add_parser("train-child")
    child.add_argument("settings")
    args = parser.parse_args(argv)
    if args.command == "data":
        cmd_data(args)
    elif args.command == "expand":
        cmd_expand(args)
    elif args.command == "train":
        cmd_train(args)
    elif args.command == "stepcost":
        cmd_stepcost(args)
    elif args.command == "triage":
        cmd_triage(args)
    elif args.command == "train-child":
        import json

        train_child(json.loads(args.settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
