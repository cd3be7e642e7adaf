"""Applicability benchmark: which series the default models accept, which they refuse, and the cost.

Sets (none of them used to fit or set any threshold: the description is fit on the recipe's
training split and its thresholds on the recipe's validation split, see
``scripts/train_default_models.py --describe-only``):

- ``held-out``: phantom studies of the recipe's held-out seed (``TEST_SEED`` 2000, the studies the
  model card's held-out metrics come from), each model on its own plane's series, as a DICOM user
  has them (float, 256-512 matrices). Target: >= 97% judged applicable.
- ``wrong plane``: the same studies' series of the other planes, run explicitly (the plane gate
  alone refuses them all by construction when no series of the model's plane is in the study;
  this measures the distribution gate alone, for a user's explicit choice).
- ``T1``, ``T2``: phantom studies of those contrasts (seed ``CONTRAST_SEED``), own plane.
- ``noise x``: held-out series with Rician noise of sigma = x times their 99th percentile (the
  phantom's own noise is 0.015-0.04 of the fluid signal), x in ``NOISE``.
- ``ghosting s/p``: held-out series with k-space motion: every p-th phase-encoding line acquired
  with the object shifted by s of the field of view, (s, p) in ``GHOSTS``.
- ``real``: every series of every folder in ``../shared/data`` (automatic choice: plane gate plus
  distribution gate; and each model forced onto each series: distribution gate alone).
- ``dose`` (``--dose LEVEL ...``): noise of each level on the first ``--n-corrupted`` held-out
  series of each model's plane: the share refused, and how many decisions flip against the clean
  series, among all of them (would the model be wrong?) and among those the check accepts (is it
  wrong where it answers?).

Cost: the applicability check of one series as triage runs it (intensity profile, cheap checks,
image checks of noise floor and ghosting, Mahalanobis distance; on the series already prepared
for the network, whose foreground landmarks give the profile; the features come from the
FullGrad pass) against the model's plain forward and against the whole triage of the series (prepare +
FullGrad), median over held-out series.

Usage: ``python benchmarks/bench_applicability.py [--cache DIR] [--n 60] [--n-contrast 20]
[--json FILE] [--clock cpu --threads 1 --cost-only] [--dose 0.05 0.1 0.15 [--dose-only]]``.
``--generate-only`` writes the phantom cache and stops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from napari_elnet.common.series import Series
from napari_elnet.inference.applicability import assess, description_of
from napari_elnet.inference.fullgrad import explain
from napari_elnet.inference.triage import run_triage
from napari_elnet.io import load_study
from napari_elnet.models.defaults import load_default_models
from napari_elnet.models.model_file import LoadedModel
from napari_elnet.phantom import PhantomConfig, generate_study
from napari_elnet.transforms.preprocess import prepare_series

TEST_SEED = 2000
"""The recipe's held-out seed: study i has seed TEST_SEED * 100003 + i (phantom.writers.studies)."""
CONTRAST_SEED = 4000
PLANES = ("sagittal", "coronal", "axial")
NOISE = (0.15, 0.5)
GHOSTS = ((0.04, 4), (0.15, 2))
IMAGE_REASONS = ("image noise", "ghosting")
"""How the reasons of the image checks (noise floor, ghosting) begin."""
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def cache_studies(cache: Path, kind: str, n: int) -> list[dict[str, np.ndarray]]:
    """The three stacks of ``n`` phantom studies of one kind, generated once into ``cache``."""
    studies = []
    for i in range(n):
        path = cache / f"{kind}-{i:03d}.npz"
        if not path.exists():
            if kind == "held-out":
                study = generate_study(TEST_SEED * 100003 + i)
            else:
                study = generate_study(CONTRAST_SEED + i, PhantomConfig(contrast=kind.lower()))
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **{p: study.series[p].array for p in PLANES})
            tmp.rename(path)
            print(f"  generated {path.name}", file=sys.stderr, flush=True)
        with np.load(path) as data:
            # C order, as load_study gives a DICOM series (the phantom's arrays have the slice axis
            # fastest, which makes every per-slice read, e.g. of the check, several times slower).
            studies.append({p: np.ascontiguousarray(data[p]) for p in PLANES})
    return studies


def heavy_noise(array: np.ndarray, rng: np.random.Generator, level: float) -> np.ndarray:
    """Rician noise of sigma ``level`` x the series' 99th percentile."""
    sigma = level * float(np.percentile(array, 99))
    real = array + rng.normal(0, sigma, array.shape)
    imag = rng.normal(0, sigma, array.shape)
    return np.hypot(real, imag).astype(np.float32)


def motion_ghosting(array: np.ndarray, shift: float, period: int) -> np.ndarray:
    """Periodic motion in k-space: every ``period``-th phase-encoding line (rows) acquired with
    the object shifted by ``shift`` of the field of view along the phase direction."""
    rows = array.shape[1]
    k = np.fft.fft2(array, axes=(1, 2))
    ky = np.fft.fftfreq(rows)[:, None]
    phase = np.exp(-2j * np.pi * ky * shift * rows)
    moved = np.zeros(rows, bool)
    moved[::period] = True
    k[:, moved, :] *= phase[moved]
    return np.abs(np.fft.ifft2(k, axes=(1, 2))).astype(np.float32)


Check = tuple[bool, float, list[str], float]


def check(loaded: LoadedModel, array: np.ndarray) -> Check:
    """(applicable, distance, reasons, probability) of a model on one series: the triage's own
    check, and the probability it would report if the check let it through."""
    description = description_of(loaded)
    prepared = prepare_series(array)
    loaded.model.eval()
    with torch.no_grad():
        features = loaded.model.features(prepared.network_input(loaded.info.landmarks))
        logits = loaded.model.head(features).double()
    verdict = assess(description, array, features, prepared=prepared)
    probability = float(torch.softmax(logits, dim=0)[1])
    return (
        bool(verdict.applicable),
        float(verdict.score or np.nan),
        list(verdict.reasons),
        probability,
    )


def harm(clean: list[Check], corrupted: list[Check], threshold: float) -> dict[str, float]:
    """What the corrupted series the check accepts would report against their clean originals:
    the mean and largest |probability change| and the share of decisions that flip."""
    pairs = [(c[3], x[3]) for c, x in zip(clean, corrupted, strict=False) if x[0]]
    if not pairs:
        return {
            "accepted": 0,
            "dp_mean": float("nan"),
            "dp_max": float("nan"),
            "flips": float("nan"),
        }
    dp = np.array([abs(b - a) for a, b in pairs])
    flips = [(a >= threshold) != (b >= threshold) for a, b in pairs]
    return {
        "accepted": len(pairs),
        "dp_mean": float(dp.mean()),
        "dp_max": float(dp.max()),
        "flips": share(flips),
    }


def dose_response(
    models: list[LoadedModel], studies: list[dict[str, np.ndarray]], levels: list[float]
) -> dict[str, list[dict[str, float]]]:
    """Per model and noise level: refused share, decision flips against the clean series among all
    series and among the accepted ones, largest |probability change|."""
    out: dict[str, list[dict[str, float]]] = {}
    for loaded in models:
        own = [s[loaded.info.plane] for s in studies]
        clean = [check(loaded, a) for a in own]
        threshold = loaded.info.threshold
        rows = []
        for level in levels:
            rng = np.random.default_rng(0)
            noisy = [check(loaded, heavy_noise(a, rng, level)) for a in own]
            flips = [
                (c[3] >= threshold) != (x[3] >= threshold)
                for c, x in zip(clean, noisy, strict=True)
            ]
            rows.append(
                {
                    "level": level,
                    "n": len(own),
                    "refused": 1.0 - share([x[0] for x in noisy]),
                    "flips_all": int(sum(flips)),
                    "flips_accepted": int(
                        sum(f for f, x in zip(flips, noisy, strict=True) if x[0])
                    ),
                    "accepted": int(sum(x[0] for x in noisy)),
                    "dp_max": max(abs(c[3] - x[3]) for c, x in zip(clean, noisy, strict=True)),
                }
            )
        out[loaded.info.task] = rows
    return out


def print_dose(dose: dict[str, list[dict[str, float]]]) -> None:
    print("\nnoise dose response (Rician sigma = level x p99; flips against the clean series)")
    for task, rows in dose.items():
        for r in rows:
            print(
                f"  {task:9s} level {r['level']:.2f}: refused {r['refused']:6.1%} of {r['n']}; "
                f"flips {r['flips_all']} of all, {r['flips_accepted']} of the {r['accepted']} "
                f"accepted; max |dp| {r['dp_max']:.3f}"
            )


def share(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/elnet-bench-applicability"))
    parser.add_argument("--n", type=int, default=60, help="held-out studies")
    parser.add_argument("--n-contrast", type=int, default=20, help="T1 and T2 studies each")
    parser.add_argument("--n-corrupted", type=int, default=20, help="series per corruption")
    parser.add_argument("--cost-series", type=int, default=5, help="series timed for the cost")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cost: wall or CPU seconds"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--cost-only", action="store_true", help="measure only the cost")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument(
        "--dose", type=float, nargs="+", default=[], help="noise levels of the dose response"
    )
    parser.add_argument("--dose-only", action="store_true", help="measure only the dose response")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    held_out = cache_studies(args.cache, "held-out", args.n)
    contrasts = {c: cache_studies(args.cache, c, args.n_contrast) for c in ("T1", "T2")}
    if args.generate_only:
        return 0
    models = load_default_models()
    missing = [m.info.task for m in models if description_of(m) is None]
    if missing:
        print(f"no applicability description in the {missing} model files", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    record: dict[str, dict[str, object]] = {}
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.dose:
        record["dose"] = dose_response(models, held_out[: args.n_corrupted], args.dose)
        print_dose(record["dose"])
        if args.dose_only:
            if args.json:
                args.json.write_text(json.dumps(record, indent=2, default=float) + "\n")
            return 0
    if args.cost_only:
        record["cost"] = cost(models, held_out[: args.cost_series], clock)
        record["cost"]["clock"] = args.clock  # type: ignore[assignment]
        print_cost(record["cost"])
        if args.json:
            args.json.write_text(json.dumps(record, indent=2, default=float) + "\n")
        return 0
    for loaded in models:
        task, plane = loaded.info.task, loaded.info.plane
        d = description_of(loaded)
        assert d is not None
        rows: dict[str, list[Check]] = {}
        own = [s[plane] for s in held_out]
        rows["held-out"] = [check(loaded, a) for a in own]
        others = [p for p in PLANES if p != plane]
        rows["wrong plane"] = [check(loaded, s[others[i % 2]]) for i, s in enumerate(held_out)]
        for name, studies in contrasts.items():
            rows[name] = [check(loaded, s[plane]) for s in studies]
        few = own[: args.n_corrupted]
        for level in NOISE:
            rows[f"noise {level:g}"] = [check(loaded, heavy_noise(a, rng, level)) for a in few]
        for shift, period in GHOSTS:
            rows[f"ghosting {shift:g}/{period}"] = [
                check(loaded, motion_ghosting(a, shift, period)) for a in few
            ]
        out: dict[str, object] = {"threshold": d.threshold}
        for name, results in rows.items():
            accepted = [r[0] for r in results]
            distances = np.array([r[1] for r in results])
            by_distance = [r[1] > d.threshold for r in results]
            by_image = [any(x.startswith(IMAGE_REASONS) for x in r[2]) for r in results]
            by_checks = [
                any(not x.startswith(("unlike the training", *IMAGE_REASONS)) for x in r[2])
                for r in results
            ]
            damaged = name.startswith(("noise", "ghosting"))
            out[name] = {
                **(
                    {"accepted_vs_clean": harm(rows["held-out"], results, loaded.info.threshold)}
                    if damaged
                    else {}
                ),
                "n": len(results),
                "applicable": share(accepted),
                "refused": 1.0 - share(accepted),
                "refused_by_distance": share(by_distance),
                "refused_by_cheap_checks": share(by_checks),
                "refused_by_image_checks": share(by_image),
                "distance_median": float(np.median(distances)),
            }
        record[f"{task}/{plane}"] = out
    record["real"] = real_data(models)
    record["cost"] = cost(models, held_out[: args.cost_series], clock)
    print_tables(record)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, default=float) + "\n")
    return 0


def real_data(models: list[LoadedModel]) -> dict[str, object]:
    """Every real series: automatic triage (both gates) and each model forced onto it."""
    if not REAL.is_dir():
        return {"skipped": f"{REAL} is absent"}
    series: list[Series] = []
    for folder in sorted(p for p in REAL.iterdir() if p.is_dir()):
        series.extend(load_study(folder))
    automatic, forced = [], []
    for s in series:
        results = run_triage([s], models, device="cpu")
        automatic += [
            (s.name, r.task, r.probability is None, list(r.applicability.reasons)) for r in results
        ]
        for loaded in models:
            if s.shape[0] >= 1:
                ok, distance, reasons, _ = check(loaded, s.array)
                forced.append((s.name, loaded.info.task, not ok, distance, reasons))
    return {
        "series": len(series),
        "automatic_refused": share([a[2] for a in automatic]),
        "forced_refused": share([f[2] for f in forced]),
        "forced_refused_by_distance": share(
            [any(r.startswith("unlike the training") for r in f[4]) for f in forced]
        ),
        "automatic": automatic,
        "forced": forced,
    }


def cost(
    models: list[LoadedModel],
    studies: list[dict[str, np.ndarray]],
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per series (of ``clock``): the check, the plain forward, the whole triage
    of the series; measured in turn on each series, in one process."""
    check_s, forward_s, triage_s = [], [], []
    for loaded in models:
        d = description_of(loaded)
        for s in studies:
            array = s[loaded.info.plane]
            start = clock()
            series = prepare_series(array)
            x = series.network_input(loaded.info.landmarks)
            prepared = clock()
            with torch.no_grad():
                features = loaded.model.features(x)
                loaded.model.head(features)
            forwarded = clock()
            explain(loaded.model, x, output_size=array.shape[1:])
            explained = clock()
            assess(d, array, features, prepared=series)
            checked = clock()
            check_s.append(checked - explained)
            forward_s.append(forwarded - prepared)
            triage_s.append(explained - start)
    c, f, t = (float(np.median(v)) for v in (check_s, forward_s, triage_s))
    return {
        "check_s": c,
        "forward_s": f,
        "triage_s": t,
        "check_over_forward": c / f,
        "check_over_triage": c / t,
    }


def print_tables(record: dict[str, dict[str, object]]) -> None:
    for model, out in record.items():
        if model in ("real", "cost", "dose"):
            continue
        print(f"\n{model} (distance threshold {out['threshold']:.2f})")
        print(
            f"  {'set':16s} {'n':>4s} {'applicable':>10s} {'refused':>8s} {'by dist':>8s} "
            f"{'by checks':>9s} {'by image':>8s} {'median dist':>11s}"
        )
        for name, row in out.items():
            if name == "threshold":
                continue
            assert isinstance(row, dict)
            print(
                f"  {name:16s} {row['n']:4d} {row['applicable']:10.1%} {row['refused']:8.1%} "
                f"{row['refused_by_distance']:8.1%} {row['refused_by_cheap_checks']:9.1%} "
                f"{row['refused_by_image_checks']:8.1%} {row['distance_median']:11.2f}"
            )
            if "accepted_vs_clean" in row:
                h = row["accepted_vs_clean"]
                print(
                    f"  {'':16s} accepted {h['accepted']}: |p - p clean| mean {h['dp_mean']:.3f}, "
                    f"max {h['dp_max']:.3f}; decisions flipped {h['flips']:.0%}"
                )
    real = record["real"]
    print(f"\nreal series ({REAL}): {real.get('series')} series")
    if "automatic" in real:
        print(
            f"  automatic triage refused {real['automatic_refused']:.1%} of series x model; "
            f"each model forced onto each series refused {real['forced_refused']:.1%} "
            f"(by distance alone {real['forced_refused_by_distance']:.1%})"
        )
        for name, task, refused, distance, reasons in real["forced"]:  # type: ignore[misc]
            print(
                f"    {task:9s} {name[:40]:40s} refused={refused} distance {distance:.1f}: "
                f"{'; '.join(reasons)}"
            )
    print_cost(record["cost"])


def print_cost(c: dict[str, float]) -> None:
    print(
        f"\ncost per series (median): check {c['check_s'] * 1e3:.1f} ms, forward "
        f"{c['forward_s'] * 1e3:.0f} ms ({c['check_over_forward']:.1%}), triage "
        f"{c['triage_s'] * 1e3:.0f} ms ({c['check_over_triage']:.1%})"
    )


if __name__ == "__main__":
    sys.exit(main())
