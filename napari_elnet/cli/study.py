"""``info`` and ``predict``: one study's series, and the models' triage of it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from napari_elnet.cli.options import (
    add_device_option,
    add_json_option,
    add_model_option,
    chosen_models,
)
from napari_elnet.cli.output import EXIT_OK, load_series, table, write_json
from napari_elnet.common.errors import ElnetError


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
        "files": len(set(series.files)),  # a multi-frame file holds many slices
        "warnings": list(series.warnings),
    }


def cmd_info(args: argparse.Namespace) -> int:
    """List the series of a study."""
    from napari_elnet.common.outputs import ensure_outside_inputs

    if args.json not in (None, "-"):
        ensure_outside_inputs(args.json, [args.path], folder=False)  # before any output
    series = load_series(args.path, sys.stderr)
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
        print(table(rows, header))
    write_json({"path": str(Path(args.path).resolve()), "series": records}, args.json, [args.path])
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    """Run the models on a study and report probability and most informative slice per task."""
    from napari_elnet.common.outputs import ensure_outside_inputs
    from napari_elnet.inference.triage import run_triage

    for target, folder in ((args.json, False), (args.heatmaps, True), (args.dicom_out, True)):
        if target not in (None, "-"):
            ensure_outside_inputs(target, [args.path], folder)  # refuse before any work is done
    models = chosen_models(args)
    overrides = series_overrides(args.series or [], [m.info.task for m in models])
    series = load_series(args.path, sys.stderr)
    if args.dicom_out:
        from napari_elnet.dicom.results import require_dicom_study

        require_dicom_study(series)  # .npy input: refuse before any work is done
    results = run_triage(series, models, device=args.device, overrides=overrides)
    for result in results:
        for message in result.warnings:
            sys.stderr.write(f"warning: {message}\n")
    if args.json != "-":
        rows = [
            (
                r.task,
                r.plane,
                r.series_name or "-",
                probability_cell(r),
                "-" if r.top_slice is None else r.top_slice,
            )
            for r in results
        ]
        print(table(rows, ("task", "plane", "series", "probability", "top slice")))
    record = {"path": str(Path(args.path).resolve()), "results": [r.summary() for r in results]}
    write_json(record, args.json, [args.path])
    if args.heatmaps:
        from napari_elnet.inference.export import write_heatmaps

        write_heatmaps(args.heatmaps, results, [args.path])
    if args.dicom_out:
        from napari_elnet.dicom.results import write_dicom_results

        for path in write_dicom_results(series, results, models, args.dicom_out):
            sys.stderr.write(f"wrote {path}\n")
    return EXIT_OK


def probability_cell(result: Any) -> str:
    """``0.123``, ``n/a (reason)`` when withheld, marked ``[outside plane]`` / ``[unknown]``."""
    a = result.applicability
    if result.probability is None:
        text = f"n/a ({'; '.join(a.reasons) or 'not applicable'})"
    else:
        text = f"{result.probability:.3f}"
        if a.applicable is None:
            text += " [applicability unknown]"
    if a.outside_plane:
        text += " [outside plane]"
    return text


def series_overrides(items: list[str], tasks: list[str]) -> dict[str, int]:
    """``TASK=INDEX`` items (``--series``) as a task -> series index map.

    Raises:
        ElnetError: an item is not ``TASK=INDEX``, or names a task none of ``tasks`` (the models'
            tasks) is for: it would be ignored.
    """
    overrides: dict[str, int] = {}
    for item in items:
        task, sep, index = item.partition("=")
        if not sep or not task or not index.strip().isdigit():
            raise ElnetError(f"--series wants TASK=INDEX (e.g. acl=2), got {item!r}")
        if task not in tasks:
            raise ElnetError(
                f"--series {item}: no model for task {task!r} (tasks: {', '.join(tasks)})"
            )
        overrides[task] = int(index)
    return overrides


def add_commands(sub: Any) -> None:
    """The ``info`` and ``predict`` sub-commands."""
    info = sub.add_parser("info", help="list the image series of a study folder or file")
    info.add_argument("path", help="DICOM folder or file, or MRNet .npy volume")
    add_json_option(info)
    info.set_defaults(handler=cmd_info)

    predict = sub.add_parser("predict", help="triage a study: probability and top slice per task")
    predict.add_argument("path", help="DICOM folder or file, or MRNet .npy volume")
    add_model_option(predict)
    add_json_option(predict)
    add_device_option(predict)
    predict.add_argument(
        "--series",
        nargs="+",
        metavar="TASK=INDEX",
        help="run TASK's model on series INDEX (see 'info'), even of another plane; such a "
        "result is marked outside the model's plane",
    )
    predict.add_argument(
        "--heatmaps", metavar="DIR", help="write each task's heatmap as .npy to DIR"
    )
    predict.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="write DICOM results to DIR: structured report, heatmap parametric maps, key images",
    )
    predict.set_defaults(handler=cmd_predict)
