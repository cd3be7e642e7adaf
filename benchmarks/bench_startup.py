"""Start-up benchmark: what the plugin adds to napari's start, and which commands import torch.

- napari: in a fresh child process, ``napari.Viewer(show=False)`` is timed, the modules of this
  package it imported are listed (npe2 reads the manifest, it imports nothing of ours until a
  contribution is used), and the time npe2 takes to read our manifest is measured in the same
  process: the plugin's share of napari's start is that time over the viewer's start. Needs a
  display (run under ``xvfb-run``).
- commands: ``napari-elnet --help``, ``info STUDY`` and ``phantom`` run as child processes; the
  wall time and whether torch was imported (``python -X importtime``) are printed.

Usage: ``xvfb-run -a python benchmarks/bench_startup.py [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAPARI_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import napari
viewer = napari.Viewer(show=False)
viewer_s = time.perf_counter() - start
ours = sorted(m for m in sys.modules if m.startswith("napari_elnet"))
from npe2 import PluginManifest
start = time.perf_counter()
for _ in range(20):
    PluginManifest.from_distribution("napari-elnet")
manifest_s = (time.perf_counter() - start) / 20
viewer.close()
print(json.dumps({"viewer_s": viewer_s, "manifest_s": manifest_s, "modules": ours,
                  "torch": "torch" in sys.modules}))
"""


def bench_napari(figures: dict[str, object]) -> None:
    """napari's viewer start and the share of it spent on this plugin."""
    out = subprocess.run(
        [sys.executable, "-c", NAPARI_CHILD], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        print(f"napari start: skipped ({out.stderr.strip().splitlines()[-1:]})")
        return
    result = json.loads(out.stdout.strip().splitlines()[-1])
    share = result["manifest_s"] / result["viewer_s"]
    figures.update(napari_viewer_s=result["viewer_s"], napari_plugin_share=share, **result)
    print(
        f"napari.Viewer start {result['viewer_s']:.2f} s; napari_elnet modules imported: "
        f"{result['modules'] or 'none'}; torch imported: {result['torch']}; reading our "
        f"manifest {result['manifest_s'] * 1e3:.1f} ms = {share * 100:.2f}% of the start "
        f"(target <= 5%)"
    )


def command(args: list[str]) -> tuple[float, bool]:
    """Wall time of ``napari-elnet ARGS`` in a child process and whether it imported torch."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "napari_elnet.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"napari-elnet {' '.join(args)} failed: {out.stderr[-500:]}")
    torch = any(
        line.startswith("import time:") and line.split("|")[-1].strip() == "torch"
        for line in out.stderr.splitlines()
    )
    return seconds, torch


def bench_commands(figures: dict[str, object]) -> None:
    """Time and torch import of the commands that need no model."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        study = Path(tmp) / "study"
        runs = {
            "--help": ["--help"],
            "phantom": ["phantom", str(study), "--n", "1", "--format", "dicom"],
            "info": ["info", str(study / "case_0000")],
        }
        for name, args in runs.items():
            seconds, torch = command(args)
            figures[f"command_{name.strip('-')}"] = {"seconds": seconds, "torch": torch}
            print(f"napari-elnet {name}: {seconds:.2f} s, torch imported: {torch}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures: dict[str, object] = {}
    bench_napari(figures)
    bench_commands(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
