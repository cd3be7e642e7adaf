"""Fuzz napari-elnet's input contract (issue 10) and print the counts.

Examples::

    .venv/bin/python scripts/fuzz.py --inputs 300 --seed 1          # a quick check
    nice -n 10 .venv/bin/python scripts/fuzz.py --inputs 100000 --seed 2026 \\
        --out /tmp/napari-elnet-fuzz-long > /tmp/napari-elnet-fuzz-long.log 2>&1 &
    .venv/bin/python scripts/fuzz.py --seed 2026 --only 4711        # rerun one input

Writes ``summary.json`` (counts, per-class counts, the first violations/hangs/crashes) and
``repro/`` (copies of inputs that hung or crashed a worker) into ``--out``. Exits 1 when any input
broke the contract.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz.runner import FuzzConfig, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per input")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="RLIMIT_AS per worker")
    parser.add_argument("--cli-every", type=int, default=500, help="CLI 'info' on every n-th study")
    parser.add_argument("--predict-every", type=int, default=5000, help="CLI 'predict' every n-th")
    parser.add_argument("--no-shared", action="store_true", help="ignore ../shared/data")
    parser.add_argument("--out", type=Path, default=Path("/tmp/napari-elnet-fuzz"))
    parser.add_argument("--nice", type=int, default=0, help="niceness added to the workers")
    parser.add_argument("--only", type=int, nargs="+", help="run only these input numbers")
    args = parser.parse_args(argv)
    config = FuzzConfig(
        inputs=args.inputs,
        seed=args.seed,
        workers=args.workers,
        timeout=args.timeout,
        memory_bytes=int(args.memory_gb * 2**30),
        cli_every=args.cli_every,
        predict_every=args.predict_every,
        shared=not args.no_shared,
        out=args.out,
        nice=args.nice,
    )
    summary = run(config, only=args.only, progress=sys.stdout)
    short = {k: v for k, v in summary.items() if not isinstance(v, list | dict) or k == "outcomes"}
    print(json.dumps(short, indent=2))
    samples = summary["violation_samples"] + summary["hang_samples"] + summary["crash_samples"]
    for record in samples[:30]:
        print(json.dumps(record)[:600])
    print(f"summary: {config.out / 'summary.json'}")
    broken = summary["uncaught_or_contract_violations"] + summary["hangs_over_timeout"]
    return 1 if broken + summary["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
