"""Command line interface: ``napari-elnet info|predict ...``.

Exit status 0 on success, 2 on unusable input (with a one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from napari_elnet.device import DEVICE_NAMES
from napari_elnet.errors import ElnetError

EXIT_OK = 0
EXIT_UNUSABLE = 2


def _write_json(data: Any, target: str | None, inputs: Sequence[str]) -> None:
    """Write ``data`` as JSON to a file, or to stdout for ``-``."""
    if target is None:
        return
    text = json.dumps(data, indent=2, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    from napari_elnet.outputs import ensure_outside_inputs

    path = ensure_outside_inputs(target, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _load(path: str, err: TextIO) -> list:
    """The study's series; problems with single files go to ``err`` as warnings."""
    from napari_elnet.io import read_study

    scan = read_study(path)
    for problem in scan.problems:
        err.write(f"warning: {problem.path}: {problem.reason}\n")
    if not scan.series:
        from napari_elnet.errors import NoUsableSeriesError

        raise NoUsableSeriesError(f"{path}: no usable image series")
    return list(scan.series)


def series_record(index: int, series: Any) -> dict[str, Any]:
    """JSON-able description of one series."""
    return {
        "index": index,
        "name": series.name,
        "plane": series.plane,
        "slices": series.shape[0],
        "size": list(series.shape[1:]),
        "spacing_mm": [round(float(v), 4) for v in series.spacing],
        "number": series.number,
        "description": series.description,
        "uid": series.uid,
        "window": list(series.window) if series.window else None,
        "files": len(series.files),
        "warnings": list(series.warnings),
    }


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Plain aligned text table."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """List the series of a study."""
    series = _load(args.path, sys.stderr)
    records = [series_record(i, s) for i, s in enumerate(series)]
    rows = [
        (
            r["index"],
            r["plane"],
            r["slices"],
            "x".join(map(str, r["size"])),
            "x".join(f"{v:g}" for v in r["spacing_mm"]),
            r["description"] or "-",
            "; ".join(r["warnings"]) or "-",
        )
        for r in records
    ]
    if args.json != "-":
        header = ("#", "plane", "slices", "size", "spacing (mm)", "description", "warnings")
        print(_table(rows, header))
    _write_json({"path": str(Path(args.path).resolve()), "series": records}, args.json, [args.path])
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    """Run the models on a study and report probability and most informative slice per task."""
    from napari_elnet.defaults import load_default_models
    from napari_elnet.model_file import load_model
    from napari_elnet.triage import run_triage

    models = [load_model(p) for p in args.model] if args.model else load_default_models()
    if not models:
        raise ElnetError("no model given and no default models ship with this build (use --model)")
    series = _load(args.path, sys.stderr)
    results = run_triage(series, models, device=args.device)
    for result in results:
        for message in result.warnings:
            sys.stderr.write(f"warning: {message}\n")
    if args.json != "-":
        rows = [
            (r.task, r.plane, r.series_name, f"{r.probability:.3f}", r.top_slice) for r in results
        ]
        print(_table(rows, ("task", "plane", "series", "probability", "top slice")))
    record = {"path": str(Path(args.path).resolve()), "results": [r.summary() for r in results]}
    _write_json(record, args.json, [args.path])
    if args.heatmaps:
        import numpy as np

        from napari_elnet.outputs import ensure_outside_inputs

        folder = ensure_outside_inputs(args.heatmaps, [args.path])
        folder.mkdir(parents=True, exist_ok=True)
        for result in results:
            np.save(folder / f"{result.task}_heatmap.npy", result.heatmap)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-elnet``."""
    parser = argparse.ArgumentParser(
        prog="napari-elnet", description="Knee MRI triage with ELNet and FullGrad heatmaps."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="list the image series of a study folder or file")
    info.add_argument("path", help="DICOM folder or file, or MRNet .npy volume")
    info.add_argument(
        "--json", metavar="FILE", help="also write JSON to FILE ('-' for stdout only)"
    )
    info.set_defaults(handler=cmd_info)

    predict = sub.add_parser("predict", help="triage a study: probability and top slice per task")
    predict.add_argument("path", help="DICOM folder or file, or MRNet .npy volume")
    predict.add_argument(
        "--model", nargs="+", metavar="FILE", help="model files (default: the shipped models)"
    )
    predict.add_argument(
        "--json", metavar="FILE", help="also write JSON to FILE ('-' for stdout only)"
    )
    predict.add_argument("--device", choices=DEVICE_NAMES, default="auto")
    predict.add_argument(
        "--heatmaps", metavar="DIR", help="write each task's heatmap as .npy to DIR"
    )
    predict.set_defaults(handler=cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-elnet`` console script."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            return handler(args)
        except ElnetError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            sys.stderr.write(f"napari-elnet: {message}\n")
            return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
