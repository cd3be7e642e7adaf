"""Where the preprocessing of one series goes: each step of ``prepare_volume`` in CPU seconds.

The series is ``bench_core``'s (phantom study 3's axial series, 32 slices of 416 x 416) and the
landmarks the shipped ACL model's. Every step is timed on its own, in the order
``prepare_series`` + ``network_input`` run them: the anti-aliased resize to 256 px (torch's width
pass, then the periodic height passes of ``transforms/resample.py``), the rank index, the clip
percentile, the clip, the foreground mean and count, the 22 landmark ranks, the map to the
standard scale. Two contexts: ``warm`` (the repetitions back to back) and ``cold`` (one plain
forward and one FullGrad pass of the model before every repetition, as ``bench_core.py``
interleaves them).

Usage::

    nice -n 5 python benchmarks/bench_preprocessing.py [--repeats 13] [--context warm cold]
"""

from __future__ import annotations

import argparse
import statistics
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=13)
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--context", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    args = parser.parse_args()
    torch.set_num_threads(1)
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
