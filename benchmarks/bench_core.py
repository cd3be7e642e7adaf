"""Core benchmark: ELNet forward speed against a reference convolution, FullGrad cost, peak memory,
and study loading time against a naive one-file-at-a-time pydicom loop.

Every figure is measured in this run, on this machine; ratios compare against baselines run in the
same process. Usage: ``python benchmarks/bench_core.py [--slices 32] [--repeats 10]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from napari_elnet.inference.fullgrad import explain
from napari_elnet.nn.elnet import ELNet

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def best_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call, counted by torch's FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_model(slices: int, repeats: int) -> None:
    """Forward GFLOP/s vs. a reference conv, FullGrad/forward time ratio, peak memory."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).eval()
    conv_input = torch.randn(32, 64, 64, 64)

    def run_conv() -> object:
        with torch.no_grad():
            return conv(conv_input)

    model = ELNet(k=4).eval()
    x = torch.randn(slices, 1, 256, 256)

    def run_forward() -> object:
        with torch.no_grad():
            return model(x)

    def run_fullgrad() -> object:
        return explain(model, x)

    def run_fullgrad_512() -> object:
        return explain(model, x, output_size=(512, 512))

    conv_s = best_seconds(run_conv, repeats)
    conv_gflops = flops(run_conv) / conv_s / 1e9
    rss0 = peak_rss_mb()
    fwd_s = best_seconds(run_forward, repeats)
    rss_fwd = peak_rss_mb()
    fwd_flop = flops(run_forward)
    fg_s = best_seconds(run_fullgrad, repeats)
    fg512_s = best_seconds(run_fullgrad_512, repeats)
    rss_fg = peak_rss_mb()
    fwd_gflops = fwd_flop / fwd_s / 1e9
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"reference Conv2d(64,64,3) on 32x64x64x64: {conv_s * 1e3:8.1f} ms  {conv_gflops:6.1f} GFLOP/s"
    )
    print(
        f"ELNet k=4 forward, {slices} slices:        {fwd_s * 1e3:8.1f} ms  {fwd_gflops:6.1f} GFLOP/s"
        f"  ({fwd_flop / 1e9:.2f} GFLOP)  ratio to reference {fwd_gflops / conv_gflops:.2f}x (target >= 0.6x)"
    )
    print(
        f"FullGrad (forward + backward + 256x256 maps):    {fg_s * 1e3:8.1f} ms"
        f"  ratio to forward {fg_s / fwd_s:.2f}x (target <= 3x)"
    )
    print(
        f"FullGrad with maps resampled to 512x512:         {fg512_s * 1e3:8.1f} ms"
        f"  ratio to forward {fg512_s / fwd_s:.2f}x"
    )
    print(
        f"peak RSS: {rss0:.0f} MB before ELNet, {rss_fwd:.0f} MB after forward, "
        f"{rss_fg:.0f} MB after FullGrad (+{rss_fg - rss0:.0f} MB for ELNet+FullGrad)"
    )


def naive_load(folder: Path) -> int:
    """The baseline: read every file completely with pydicom and decode its pixels."""
    import pydicom

    count = 0
    for path in sorted(folder.glob("*.dcm")):
        pydicom.dcmread(path).pixel_array  # noqa: B018 - decoding is the work being timed
        count += 1
    return count


def bench_loading(repeats: int) -> None:
    """Per-slice loading time of load_study vs. the naive loop on the real knee and brain folders."""
    from napari_elnet.io import load_study

    for name in ("knee_dess_sagittal", "brain_pd_axial_oblique"):
        folder = SHARED / name
        if not folder.is_dir():
            print(f"loading {name}: skipped, {folder} not found")
            continue
        slices = sum(s.shape[0] for s in load_study(folder))
        ours = best_seconds(lambda f=folder: load_study(f), repeats, warmup=1)
        naive = best_seconds(lambda f=folder: naive_load(f), repeats, warmup=1)
        print(
            f"loading {name}: load_study {ours / slices * 1e3:6.2f} ms/slice, naive dcmread loop "
            f"{naive / slices * 1e3:6.2f} ms/slice, speed-up {naive / ours:.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    bench_model(args.slices, args.repeats)
    bench_loading(max(3, args.repeats // 2))


if __name__ == "__main__":
    main()
