"""Core benchmark: every figure of the triage path as a ratio measured in one run.

Figures (each measured in this run, on this machine; ratios compare against a baseline run in the
same process, which is what travels between machines and between versions):

- ``fullgrad_over_forward``: FullGrad as triage runs it (``explain`` at the series' own in-plane
  size) over one plain no-grad ELNet forward (``model(x)``), on a 32-slice phantom series with the
  shipped ACL model; the passes run in turn in each of ``--repeats`` rounds and the ratio is the
  median of the rounds' ratios;
- ``preprocess_over_forward``: preparing the series for one model over that forward, alone and, when
  the code has the shared path, per model when two models read the same series;
- peak memory per slice, from a fresh child process per pass and slice count (the child resets the
  kernel's peak-RSS mark after its set-up, so only the pass is counted; on CUDA
  ``torch.cuda.max_memory_allocated``): marginal MB per slice between two slice counts, for the
  forward as triage runs it and for forward + FullGrad;
- ``j2k_load_over_simpleitk``: ``load_study`` time over SimpleITK's series reader on a JPEG 2000
  lossless series (the real knee of ``../shared/data`` re-encoded, else a phantom series); skipped
  with a message when SimpleITK (the ``bench`` extra) is absent;
- worklist: phantom studies per minute through ``worklist_steps`` with the shipped models, and the
  growth of resident memory per study after the first ten (a least-squares slope); with
  ``--lanes 1 2 --rounds R`` the runs with each lane count alternate and the ratio of the last
  over the first is the median of the rounds' ratios;
- worklist ceiling: CPU seconds per study on one thread, the same studies held in memory, of
  loading (``load_study_ref``), of the whole triage (``run_triage``: preparation, FullGrad,
  applicability) and of its preparation and forward alone (no FullGrad, no applicability), and the
  studies per minute they allow with every core busy and no loss to parallelism
  (``cores x 60 / CPU seconds``): an upper bound for the worklist on this machine.

Usage::

    nice -n 10 python benchmarks/bench_core.py [--json FILE] [--device cpu|cuda] [--studies 200]

The figures work on older versions of the package too (the shared preprocessing and the chunked
forward are used when present), so the same script measures "before" and "after" with
``PYTHONPATH=<other checkout>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
KNEE = SHARED / "knee_dess_sagittal"
SERIES_SEED = 3
"""Phantom study whose axial series the model figures use (resampled to ``--slices`` slices)."""


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``cpu`` counts this process's CPU seconds (all threads): steadier than wall time on a machine
shared with other jobs, where the wall time also counts the waits for a core."""
_clock = CLOCKS["wall"]


def phantom_volume(slices: int) -> np.ndarray:
    """The axial series of phantom study SERIES_SEED, resampled (linear in z) to ``slices`` slices.

    Shape: (slices, H, W) float32.
    """
    from napari_elnet.phantom import generate_study

    array = np.asarray(generate_study(SERIES_SEED).series["axial"].array, dtype=np.float32)
    volume = torch.from_numpy(array)[None, None]
    resized = F.interpolate(volume, size=(slices, *array.shape[1:]), mode="trilinear")
    return resized[0, 0].numpy()


def acl_model(device: str):  # -> LoadedModel
    """The shipped ACL model on ``device``."""
    from napari_elnet.models.defaults import load_default_models

    models = {m.info.task: m for m in load_default_models()}
    if "acl" not in models:
        raise SystemExit("the shipped default models are missing: nothing to measure")
    loaded = models["acl"]
    loaded.model.to(device).eval()
    return loaded


def triage_forward() -> Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]:
    """The forward as triage runs it: the chunked pooled features when present, else ``model(x)``."""
    try:
        from napari_elnet.inference.fullgrad import pooled_features
    except ImportError:

        def plain(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model(x)

        return plain
    return lambda model, x: pooled_features(model, x)


def bench_model(args: argparse.Namespace, figures: dict[str, object]) -> None:
    """FullGrad / forward and preprocessing / forward on the phantom series."""
    from napari_elnet.inference.fullgrad import explain
    from napari_elnet.transforms import preprocess

    device = args.device
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    loaded = acl_model(device)
    model, landmarks = loaded.model, loaded.info.landmarks
    volume = phantom_volume(args.slices)
    x = preprocess.prepare_volume(volume, landmarks).to(device)
    size = tuple(volume.shape[1:])

    def forward() -> object:
        with torch.no_grad():
            return model(x)

    passes: dict[str, Callable[[], object]] = {
        "forward": forward,
        "fullgrad": lambda: explain(model, x, output_size=size),
        "prepare": lambda: preprocess.prepare_volume(volume, landmarks),
    }
    shared = getattr(preprocess, "prepare_series", None)
    if shared is not None:
        # Two models read the series: resize, clip and landmarks once, the mapping per model.
        def two_models() -> object:
            prepared = shared(volume)
            return [prepared.network_input(landmarks) for _ in range(2)]

        passes["two models"] = two_models
    times = interleaved_seconds(passes, args.repeats, sync)
    forward_s, fullgrad_s, prepare_s = (
        statistics.median(times[k]) for k in ("forward", "fullgrad", "prepare")
    )
    fullgrad_ratio = paired_ratio(times["fullgrad"], times["forward"])
    prepare_ratio = paired_ratio(times["prepare"], times["forward"])
    figures.update(
        series=f"phantom {SERIES_SEED} axial, {args.slices} x {size[0]} x {size[1]}",
        forward_ms=forward_s * 1e3,
        fullgrad_ms=fullgrad_s * 1e3,
        fullgrad_over_forward=fullgrad_ratio,
        preprocess_ms=prepare_s * 1e3,
        preprocess_over_forward=prepare_ratio,
    )
    print(
        f"series: {figures['series']}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.repeats} rounds, each pass once per round in turn (ratios: median over rounds)"
    )
    print(f"forward model(x)             {forward_s * 1e3:8.1f} ms")
    print(
        f"FullGrad (explain, {size[0]}^2 maps) {fullgrad_s * 1e3:8.1f} ms  "
        f"{fullgrad_ratio:.2f}x forward (target <= 2.0x)"
    )
    print(
        f"preprocessing, one model      {prepare_s * 1e3:8.1f} ms  "
        f"{prepare_ratio:.2f}x forward (target <= 0.25x)"
    )
    if "two models" in times:
        pair = [t / 2 for t in times["two models"]]
        pair_ratio = paired_ratio(pair, times["forward"])
        figures.update(
            preprocess_shared_ms=statistics.median(pair) * 1e3,
            preprocess_shared_over_forward=pair_ratio,
        )
        print(
            f"preprocessing per model, 2 models on the series "
            f"{statistics.median(pair) * 1e3:6.1f} ms  {pair_ratio:.2f}x forward"
        )


def interleaved_seconds(
    passes: dict[str, Callable[[], object]], repeats: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Times (on the ``--clock``) of each pass over ``repeats`` rounds, each round running every
    pass once in turn (after one warm-up round), so that a change of load between the passes
    moves all of them and not one ratio."""
    times: dict[str, list[float]] = {name: [] for name in passes}
    for round_ in range(repeats + 1):
        for name, fn in passes.items():
            start = _clock()
            fn()
            sync()
            if round_:
                times[name].append(_clock() - start)
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of ``numerator / denominator`` measured in the same round."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def child_peak(mode: str, slices: int, device: str) -> float:
    """Peak memory (MB) of one pass above the set-up, measured in a fresh child process."""
    # glibc keeps freed blocks resident (its mmap threshold rises as they are freed), so the set-up's
    # temporaries would hide the pass's own peak: a fixed threshold and no trim delay make the
    # resident set follow the live memory.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            str(slices),
            "--device",
            device,
            "--threads",
            str(torch.get_num_threads()),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _rss_hwm_kb() -> int:
    """VmHWM (peak resident set) of this process, kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_kb(pid: str = "self") -> int:
    """VmRSS of process ``pid`` (this one by default), kB; 0 for a process that has ended."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _children_rss_kb() -> int:
    """Summed VmRSS of this process's child processes (the worklist's loader), kB."""
    me = str(os.getpid())
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            total += _rss_kb(stat.parent.name)
    return total


def run_child(mode: str, slices: int, device: str) -> None:
    """Child process: set up, reset the peak mark, run one pass, print its peak above the set-up (MB)."""
    from napari_elnet.inference.fullgrad import explain
    from napari_elnet.transforms.preprocess import prepare_volume

    loaded = acl_model(device)
    model = loaded.model
    volume = phantom_volume(slices)
    x = prepare_volume(volume, loaded.info.landmarks).to(device)
    size = tuple(volume.shape[1:])
    forward = triage_forward()
    warm = x[:2].clone()
    forward(model, warm)  # first-call set-up (thread pools, kernels) is not the pass's memory
    explain(model, warm, output_size=size)
    del warm
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        base = _rss_kb() * 1024
    if mode == "forward":
        forward(model, x)
    else:
        forward(model, x)
        explain(model, x, output_size=size)
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _rss_hwm_kb() * 1024
    print((peak - base) / 2**20)


def bench_memory(args: argparse.Namespace, figures: dict[str, object]) -> None:
    """Marginal peak memory per slice of the forward and of forward + FullGrad."""
    low, high = args.memory_slices
    what = "torch.cuda.max_memory_allocated" if args.device == "cuda" else "peak RSS"
    for mode in ("forward", "fullgrad"):
        peaks = {s: child_peak(mode, s, args.device) for s in (low, high)}
        per_slice = (peaks[high] - peaks[low]) / (high - low)
        figures[f"{mode}_peak_mb"] = {str(s): p for s, p in peaks.items()}
        figures[f"{mode}_mb_per_slice"] = per_slice
        label = "forward (as triage runs it)" if mode == "forward" else "forward + FullGrad"
        print(
            f"{label}: {what} +{peaks[low]:.0f} MB at {low} slices, +{peaks[high]:.0f} MB at "
            f"{high} slices: {per_slice:.2f} MB per slice"
        )


def j2k_series(folder: Path) -> str:
    """Write a JPEG 2000 lossless series into ``folder``; returns what it is."""
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    if KNEE.is_dir():
        files = sorted(KNEE.iterdir())
        for path in files:
            ds = pydicom.dcmread(path)
            ds.compress(JPEG2000Lossless)
            ds.save_as(folder / path.name)
        return f"real knee ({len(files)} x 512 x 512) re-encoded as JPEG 2000 lossless"
    from napari_elnet.phantom import generate_study, write_dicom_study

    study = generate_study(SERIES_SEED)
    tmp = folder.parent / "plain"
    write_dicom_study(study, tmp)
    files = sorted((tmp / "sag").glob("*.dcm"))
    for path in files:
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        ds.save_as(folder / path.name)
    return f"phantom sagittal series ({len(files)} slices) as JPEG 2000 lossless"


def bench_loading(args: argparse.Namespace, figures: dict[str, object]) -> None:
    """``load_study`` vs SimpleITK's series reader on a JPEG 2000 series."""
    try:
        import SimpleITK as sitk
    except ImportError:
        print("JPEG 2000 loading: skipped, SimpleITK is absent (pip install 'napari-elnet[bench]')")
        return
    from napari_elnet.io import load_study

    with tempfile.TemporaryDirectory(prefix="bench-j2k-") as tmp:
        folder = Path(tmp) / "j2k"
        folder.mkdir()
        what = j2k_series(folder)

        def ours() -> object:
            return load_study(folder)

        def peer() -> object:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
            return sitk.GetArrayFromImage(reader.Execute())

        repeats = max(3, args.repeats // 2)
        # Wall time whatever --clock says: decoding may run in worker processes or decoder threads.
        # The two readers alternate (one warm-up each), so both see the same machine load; the
        # ratio is the median of the per-round ratios, with its spread.
        ours(), peer()
        ours_t: list[float] = []
        peer_t: list[float] = []
        for _ in range(repeats):
            for fn, times in ((ours, ours_t), (peer, peer_t)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    ours_s, peer_s = statistics.median(ours_t), statistics.median(peer_t)
    ratios = sorted(a / b for a, b in zip(ours_t, peer_t, strict=True))
    ratio = statistics.median(ratios)
    figures.update(
        j2k_series=what,
        j2k_load_ms=ours_s * 1e3,
        j2k_simpleitk_ms=peer_s * 1e3,
        j2k_load_over_simpleitk=ratio,
        j2k_ratio_range=[ratios[0], ratios[-1]],
        j2k_rounds=repeats,
        j2k_load_average=os.getloadavg()[0],
    )
    print(
        f"JPEG 2000 loading, {what}: load_study {ours_s * 1e3:.0f} ms, SimpleITK "
        f"{peer_s * 1e3:.0f} ms (medians of {repeats} alternating rounds): {ratio:.2f}x "
        f"SimpleITK's time (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x; target <= 1.0x; load "
        f"average {os.getloadavg()[0]:.2f})"
    )


def worklist_data(folder: Path, distinct: int) -> Path:
    """``distinct`` phantom DICOM studies under ``folder`` (written when it is empty or absent;
    the studies already there are used as they are)."""
    from napari_elnet.phantom import write_dicom_dataset

    if not folder.is_dir() or not any(folder.iterdir()):
        write_dicom_dataset(folder, distinct, 0)
    return folder


def bench_worklist(args: argparse.Namespace, figures: dict[str, object]) -> None:
    """Studies per minute through the worklist and resident memory growth per study.

    The root holds ``--distinct`` phantom studies; the run visits ``--studies`` of them, the
    distinct ones in turn under distinct ids (the files are read from disk each time, from the
    page cache after the first round). With ``--lanes A B ...`` the run is repeated with each lane
    count in turn, ``--rounds`` times, all in this process; the ratio of the last lane count over
    the first is the median of the rounds' ratios.
    """
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.worklist import discover_studies

    root = worklist_data(args.data, args.distinct)
    found = discover_studies(root)
    refs = [
        replace(found.studies[i % len(found.studies)], study_id=f"bench-{i:05d}")
        for i in range(args.studies)
    ]
    discovery = replace(found, studies=tuple(refs))
    models = load_default_models()
    if not args.lanes:
        figures.update(_worklist_run(args, discovery, models, None))
        return
    runs: dict[int, list[dict[str, Any]]] = {lanes: [] for lanes in args.lanes}
    for round_ in range(args.rounds):  # every other round in reverse: no count always first
        for lanes in args.lanes if round_ % 2 == 0 else args.lanes[::-1]:
            print(f"worklist round {round_ + 1}, {lanes} lane(s):", flush=True)
            runs[lanes].append(_worklist_run(args, discovery, models, lanes))
    first, last = args.lanes[0], args.lanes[-1]
    ratios = sorted(
        b["worklist_studies_per_min"] / a["worklist_studies_per_min"]
        for a, b in zip(runs[first], runs[last], strict=True)
    )
    figures.update(
        worklist_by_lanes={
            str(lanes): {
                "studies_per_min": [r["worklist_studies_per_min"] for r in done],
                "cpu_s_per_study": [r["worklist_cpu_s_per_study"] for r in done],
                "mb_per_study": [r["worklist_mb_per_study"] for r in done],
                "errors": [r["worklist_errors"] for r in done],
                "load_average": [r["worklist_load_average"] for r in done],
            }
            for lanes, done in runs.items()
        },
        worklist_lanes_ratio=statistics.median(ratios),
        worklist_lanes_ratios=ratios,
    )
    for lanes, done in runs.items():
        rates = ", ".join(f"{r['worklist_studies_per_min']:.1f}" for r in done)
        cpus = ", ".join(f"{r['worklist_cpu_s_per_study']:.2f}" for r in done)
        slopes = ", ".join(f"{r['worklist_mb_per_study']:.2f}" for r in done)
        loads = ", ".join(f"{r['worklist_load_average']:.1f}" for r in done)
        print(
            f"worklist, {lanes} lane(s): {rates} studies/min; {cpus} CPU s per study; "
            f"{slopes} MB/study; load average at the end {loads}"
        )
    print(
        f"worklist: {last} lanes over {first}: {statistics.median(ratios):.2f}x (median of "
        f"{len(ratios)} rounds, {ratios[0]:.2f}-{ratios[-1]:.2f}x)"
    )


def _worklist_run(
    args: argparse.Namespace, discovery: Any, models: list[Any], lanes: int | None
) -> dict[str, Any]:
    """One worklist run over ``discovery`` (``lanes`` None: the configuration's default)."""
    from napari_elnet.worklist import WorklistConfig
    from napari_elnet.worklist.batch import worklist_steps

    lane_field = {} if lanes is None else {"lanes": lanes}
    config = WorklistConfig(device=args.device, prefetch=2, **lane_field)
    rss: list[float] = []
    loader: list[float] = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    errors = 0
    steps = worklist_steps(discovery, models, config)
    try:
        while True:
            progress = next(steps)
            if progress.stage == "study":
                rss.append(_rss_kb() / 1024)
                loader.append(_children_rss_kb() / 1024)
                print(
                    f"  study {len(rss)}: {time.perf_counter() - start:.1f} s, {rss[-1]:.0f} MB"
                    f" (+ loader {loader[-1]:.0f} MB)",
                    flush=True,
                )
                errors += progress.result is not None and progress.result.status == "error"
    except StopIteration:
        pass
    elapsed = time.perf_counter() - start
    cpu = (time.process_time() - cpu_start) / max(1, len(rss))
    skip = min(10, len(rss) // 4)
    studies = np.arange(len(rss))[skip:]
    slope = _slope(studies, rss[skip:])
    total = [a + b for a, b in zip(rss, loader, strict=True)]
    total_slope = _slope(studies, total[skip:])
    rate = 60.0 * len(rss) / elapsed
    distinct = len({ref.files for ref in discovery.studies})
    print(
        f"worklist: {len(rss)} phantom studies ({distinct} distinct), {errors} errors, "
        f"{elapsed:.1f} s: {rate:.1f} studies/min (target >= 150; lanes: "
        f"{'default' if lanes is None else lanes}), {cpu:.2f} CPU s per study; resident memory "
        f"{rss[skip]:.0f} MB after study {skip + 1}, {rss[-1]:.0f} MB at the end: "
        f"{slope:.2f} MB/study (target < 0.5); with the loader process {total_slope:.2f} MB/study "
        f"({total[skip] if total else 0:.0f} -> {total[-1] if total else 0:.0f} MB); load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    return dict(
        worklist_lanes=lanes,
        worklist_studies=len(rss),
        worklist_distinct=distinct,
        worklist_errors=int(errors),
        worklist_studies_per_min=rate,
        worklist_cpu_s_per_study=cpu,
        worklist_rss_mb_first_last=[rss[skip] if rss else 0.0, rss[-1] if rss else 0.0],
        worklist_mb_per_study=slope,
        worklist_loader_rss_mb_first_last=[
            loader[skip] if loader else 0.0,
            loader[-1] if loader else 0.0,
        ],
        worklist_with_loader_mb_per_study=total_slope,
        worklist_load_average=os.getloadavg()[0],
    )


def bench_ceiling(args: argparse.Namespace, figures: dict[str, object]) -> None:
    """CPU seconds per study (one torch thread) of loading, triage, and preparation + forward."""
    from napari_elnet.inference.triage import run_triage
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.worklist import discover_studies
    from napari_elnet.worklist.loading import load_study_ref

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        refs = discover_studies(worklist_data(args.data, args.distinct)).studies
        models = load_default_models()
        loading, studies = [], []
        for ref in refs:
            start = time.process_time()
            studies.append(load_study_ref(ref))
            loading.append(time.process_time() - start)
        forward = _forward_only(models)

        def per_study(fn: Callable[[Any], object]) -> float:
            fn(studies[0])  # first-call set-up
            start = time.process_time()
            for study in studies:
                fn(study)
            return (time.process_time() - start) / len(studies)

        triage_s = per_study(lambda study: run_triage(study, models, device=args.device))
        forward_s = per_study(forward)
    finally:
        torch.set_num_threads(threads)
    load_s = statistics.median(loading)
    from napari_elnet.common.cpus import usable_cpus

    cores = usable_cpus()
    figures.update(
        ceiling_cores=cores,
        ceiling_load_cpu_s=load_s,
        ceiling_triage_cpu_s=triage_s,
        ceiling_forward_cpu_s=forward_s,
        ceiling_studies_per_min=cores * 60.0 / (load_s + triage_s),
        ceiling_forward_studies_per_min=cores * 60.0 / (load_s + forward_s),
    )
    print(
        f"worklist ceiling ({len(studies)} studies, CPU s per study, one thread): loading "
        f"{load_s:.3f}, triage {triage_s:.3f}, preparation + forward alone {forward_s:.3f}; "
        f"with {cores} cores fully used: {cores * 60 / (load_s + triage_s):.0f} studies/min "
        f"(without FullGrad and applicability: {cores * 60 / (load_s + forward_s):.0f})"
    )


def _forward_only(models: list[Any]) -> Callable[[Any], object]:
    """Each model's preparation and no-grad forward on the series triage chooses for it, each
    series resized and clipped once for all the models reading it (as triage does)."""
    from napari_elnet.inference.fullgrad import pooled_features
    from napari_elnet.inference.triage import resolve_choices
    from napari_elnet.transforms.preprocess import prepare_series

    def run(study: Any) -> object:
        prepared: dict[int, Any] = {}
        for loaded in models:
            index, _ = resolve_choices(study, models)[loaded.info.task]
            if index is not None:
                if index not in prepared:
                    prepared[index] = prepare_series(study[index].array)
                pooled_features(loaded.model, prepared[index].network_input(loaded.info.landmarks))
        return None

    return run


def _slope(x: np.ndarray, y: list[float]) -> float:
    """Least-squares slope of ``y`` over ``x`` (MB per study); 0 for fewer than two points."""
    return float(np.polyfit(x, np.asarray(y), 1)[0]) if len(x) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--memory-slices", type=int, nargs=2, default=(32, 128))
    parser.add_argument("--studies", type=int, default=200, help="worklist studies (0: skip)")
    parser.add_argument("--distinct", type=int, default=8, help="distinct phantom studies")
    parser.add_argument(
        "--lanes",
        type=int,
        nargs="*",
        default=[],
        help="worklist lane counts to run in turn (default: one run with the default lanes)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="worklist runs per lane count (with --lanes)"
    )
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "napari-elnet-bench-studies"
    )
    parser.add_argument(
        "--skip", nargs="*", default=(), choices=("model", "memory", "loading", "ceiling")
    )
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's); 1 with --clock cpu counts no OpenMP spin-waiting",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global _clock
    _clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        run_child(args.child[0], int(args.child[1]), args.device)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    import napari_elnet

    figures: dict[str, object] = {
        "package": str(Path(napari_elnet.__file__).parent),
        "device": args.device,
        "clock": args.clock,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0],
    }
    if "model" not in args.skip:
        bench_model(args, figures)
    if "memory" not in args.skip:
        bench_memory(args, figures)
    if "loading" not in args.skip:
        bench_loading(args, figures)
    if "ceiling" not in args.skip:
        bench_ceiling(args, figures)
    if args.studies > 0:
        bench_worklist(args, figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
