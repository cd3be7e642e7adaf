"""Where the preprocessing of one series goes: each step of ``prepare_volume`` in CPU seconds.

The series is ``bench_core``'s (phantom study 3's axial series, 32 slices of 416 x 416) and the
landmarks the shipped ACL model's. Every step is timed on its own, in the order
``prepare_series`` + ``network_input`` run them: the anti-aliased resize to 256 px (torch's width
pass, then the periodic height passes of ``transforms/resample.py``), the rank index, the clip
percentile, the clip, the foreground mean and count, the 22 landmark ranks, the map to the
standard scale. Two contexts: ``warm`` (the repetitions back to back) and ``cold`` (one plain
forward and one FullGrad pass of the model before every repetition, as ``bench_core.py``
interleaves them).

With ``--before DIR`` (a directory holding another version's ``napari_elnet``, e.g.
``git archive 2c3278a napari_elnet | tar -x -C DIR``) it instead compares the two versions in one
process: that package is copied under the name ``napari_elnet_before`` and imported beside this
one, and each round runs the plain forward, ``prepare_volume`` of each version, and the two-model
preparation (one ``prepare_series``, two ``network_input``) of each version in turn, the versions
swapping places every other round; ratios are medians over rounds of the ratio within the round
(the machine's load moves both versions alike).

Usage::

    nice -n 5 python benchmarks/bench_preprocessing.py [--repeats 13] [--context warm cold]
    nice -n 5 python benchmarks/bench_preprocessing.py --before DIR [--repeats 30]
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import acl_model, phantom_volume


def steps(
    volume: np.ndarray, landmarks: Any, timed: Callable[[str, Callable[[], Any]], Any]
) -> None:
    """``prepare_volume(volume, landmarks)`` step by step, each through ``timed(name, fn)``."""
    from napari_elnet.transforms import intensity, order, preprocess, resample

    resized = timed(
        "resize to 256 px", lambda: resample.resize_finite(torch.from_numpy(volume), (256, 256))
    ).numpy()
    index = timed("rank index", lambda: order.rank_index(resized))
    ceiling = timed(
        "clip percentile (99.5)",
        lambda: np.float32(preprocess._ranked_percentile(index, preprocess.BRIGHT_PERCENTILE)),
    )
    clipped = timed("clip", lambda: preprocess._clip_at(resized, ceiling, in_place=True))
    ranks = index.clipped(clipped)
    mean = timed("foreground mean", lambda: clipped.reshape(-1).mean())
    offset = timed("foreground count", lambda: ranks.count_at_most(mean))
    source = timed(
        "landmarks",
        lambda: order.numpy_percentiles(
            lambda r: ranks.at(r + offset), ranks.size - offset, landmarks.percentiles
        ),
    )
    timed(
        "map to the standard scale",
        lambda: intensity.map_to_standard(
            clipped, source, landmarks, value_range=preprocess._clipped_range(index, ceiling)
        ),
    )


def _recorder(times: dict[str, list[float]]) -> Callable[[str, Callable[[], Any]], Any]:
    """``timed(name, fn)``: runs ``fn``, appends its CPU seconds to ``times[name]``."""

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.process_time()
        result = fn()
        times.setdefault(name, []).append(time.process_time() - start)
        return result

    return timed


def renamed_copy(source: Path, target: Path) -> None:
    """Copy the package ``source / "napari_elnet"`` to ``target / "napari_elnet_before"``, its
    imports renamed, so that it imports beside the installed package."""
    package = target / "napari_elnet_before"
    shutil.copytree(
        source / "napari_elnet", package, ignore=shutil.ignore_patterns("*.pt", "*.yaml")
    )
    for path in package.rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\bnapari_elnet\b", "napari_elnet_before", text))


def compare(before_dir: Path, repeats: int, slices: int) -> None:
    """Forward, and each version's preparation for one and for two models, in turn per round."""
    from napari_elnet.transforms import preprocess

    loaded = acl_model("cpu")
    model, landmarks = loaded.model, loaded.info.landmarks
    volume = phantom_volume(slices)
    with tempfile.TemporaryDirectory() as scratch:
        renamed_copy(before_dir, Path(scratch))
        sys.path.insert(0, scratch)
        former = importlib.import_module("napari_elnet_before.transforms.preprocess")
        x = preprocess.prepare_volume(volume, landmarks)
        old = former.prepare_volume(volume, landmarks)
        change = float((x - old).abs().max() / old.abs().max())
        print(f"network input, this version vs --before: max |dx| / max |x| = {change:.3g}")

        def forward() -> object:
            with torch.no_grad():
                return model(x)

        def two(module: Any) -> object:
            prepared = module.prepare_series(volume)
            return [prepared.network_input(landmarks) for _ in range(2)]

        passes: dict[str, Callable[[], object]] = {
            "forward": forward,
            "one model, before": lambda: former.prepare_volume(volume, landmarks),
            "one model, this version": lambda: preprocess.prepare_volume(volume, landmarks),
            "two models, before": lambda: two(former),
            "two models, this version": lambda: two(preprocess),
        }
        times: dict[str, list[float]] = {name: [] for name in passes}
        order = list(passes)
        swapped = [order[0], order[2], order[1], order[4], order[3]]
        for round_ in range(repeats + 1):
            # Every other round the versions swap places: the second one to read the series would
            # otherwise find more of it in the caches.
            for name in order if round_ % 2 else swapped:
                start = time.process_time()
                passes[name]()
                if round_:
                    times[name].append(time.process_time() - start)
        print(
            f"{repeats} rounds, CPU seconds, 1 thread; forward {statistics.median(times['forward']) * 1e3:.1f} ms"
        )
        for name in list(passes)[1:]:
            per_model = 2 if name.startswith("two") else 1
            ratio = statistics.median(
                t / per_model / f for t, f in zip(times[name], times["forward"], strict=True)
            )
            ms = statistics.median(times[name]) / per_model * 1e3
            print(f"{name:26s} {ms:7.1f} ms per model  {ratio:.3f}x forward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=13)
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--context", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    parser.add_argument("--before", type=Path, help="directory holding another napari_elnet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.before is not None:
        compare(args.before, args.repeats, args.slices)
        return
    from napari_elnet.inference.fullgrad import explain
    from napari_elnet.transforms.preprocess import prepare_volume

    loaded = acl_model("cpu")
    model, landmarks = loaded.model, loaded.info.landmarks
    volume = phantom_volume(args.slices)
    x = prepare_volume(volume, landmarks)
    print(
        f"series {volume.shape}, CPU seconds of this process, torch {torch.__version__}, 1 thread"
    )
    for context in args.context:
        times: dict[str, list[float]] = {}
        timed = _recorder(times)
        for _ in range(args.repeats + 1):
            if context == "cold":
                with torch.no_grad():
                    model(x)
                explain(model, x, output_size=tuple(volume.shape[1:]))
            timed("prepare_volume (whole)", lambda: prepare_volume(volume, landmarks))
            steps(volume, landmarks, timed)
        print(f"-- {context}: median of {args.repeats} (the first repetition is a warm-up)")
        whole = times.pop("prepare_volume (whole)")[1:]
        parts = {name: statistics.median(t[1:]) for name, t in times.items()}
        for name, seconds in parts.items():
            print(f"{name:28s} {seconds * 1e3:7.2f} ms  {seconds / sum(parts.values()):5.1%}")
        print(f"{'sum of the steps':28s} {sum(parts.values()) * 1e3:7.2f} ms")
        print(f"{'prepare_volume (whole)':28s} {statistics.median(whole) * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
