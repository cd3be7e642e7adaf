"""``triage``: rank every study under a folder by suspicion and write the worklist report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from napari_elnet.cli.dicom_out import dicom_results_steps, require_dicom_studies
from napari_elnet.cli.options import add_device_option, add_model_option, chosen_models
from napari_elnet.cli.output import EXIT_OK, table
from napari_elnet.cli.progress import WorklistBar
from napari_elnet.common.errors import ConfigurationError, ElnetError


def triage_table(report: Any, top: int, include_phi: bool) -> str:
    """The ranked worklist: one line per study, the probability per task (``*`` = positive,
    ``n/a (reason)`` = withheld, the model not applicable), and the study's group."""
    from napari_elnet.worklist.report import study_group

    tasks: list[str] = []
    for result in report.results:
        tasks.extend(t.task for t in result.tasks if t.task not in tasks)
    header = ["#", "study", "suspicion", *tasks, "group", "status"]
    if include_phi:
        header[2:2] = ["patient id", "patient name"]
    rows = []
    for rank, result in enumerate(report.results[:top], start=1):
        by_task = {t.task: t for t in result.tasks}
        cells: list[object] = [rank, result.study]
        if include_phi:
            cells.extend([result.phi.patient_id or "-", result.phi.patient_name or "-"])
        cells.append("-" if result.suspicion is None else f"{result.suspicion:.3f}")
        for task in tasks:
            row = by_task.get(task)
            cells.append("-" if row is None else task_cell(row))
        cells.append(study_group(result))
        cells.append(result.status if result.status == "ok" else f"error: {result.reason}")
        rows.append(cells)
    return table(rows, header)


def warning_lines(bar: WorklistBar, stream: TextIO) -> Callable[[Any], None]:
    """``bar.update``, first writing each warning of a finished study (e.g. a file of it that could
    not be loaded) as one line ``warning: <study>: <warning>`` (the display name: no patient data)."""

    def update(progress: Any) -> None:
        result = progress.result if progress.stage == "study" else None
        if result is not None and result.warnings:
            bar.newline()
            for warning in result.warnings:
                stream.write(f"warning: {result.study}: {warning}\n")
        bar.update(progress)

    return update


def bar_line(bar: WorklistBar, line: str) -> None:
    """Write ``line`` on standard error below the progress bar's current line."""
    bar.newline()
    sys.stderr.write(line)


def task_cell(row: Any) -> str:
    """One task's cell: ``0.912*``, ``0.120``, or ``n/a (reason)`` when withheld."""
    if row.probability is None:
        return f"n/a ({'; '.join(row.reasons) or 'not applicable'})"
    marks = ("*" if row.decision else "") + (" [outside plane]" if row.outside_plane else "")
    return f"{row.probability:.3f}{marks}"


def cmd_triage(args: argparse.Namespace) -> int:
    """Triage every study under a folder and write the ranked worklist report."""
    from napari_elnet.common.outputs import ensure_outside_inputs
    from napari_elnet.common.steps import run_to_end
    from napari_elnet.worklist import WorklistConfig, discover_studies, run_worklist
    from napari_elnet.worklist.batch import worklist_steps

    if args.top < 1:  # refused before any work, as --prefetch and --lanes are
        raise ConfigurationError(f"top must be >= 1, got {args.top}")
    config = WorklistConfig(
        device=args.device,
        prefetch=args.prefetch,
        lanes=args.lanes,
        report=Path(args.out),
        resume=not args.restart,
        include_phi=args.include_phi,
    )
    ensure_outside_inputs(args.out, [args.root])  # refuse before any work is done
    if args.dicom_out:
        ensure_outside_inputs(args.dicom_out, [args.root])
    models = chosen_models(args)
    discovery = discover_studies(args.root)
    for problem in discovery.problems:
        where = (
            problem.path.relative_to(discovery.root)
            if problem.path.is_relative_to(discovery.root)
            else problem.path
        )
        sys.stderr.write(f"warning: skipped {where}: {problem.reason}\n")
    if not discovery.studies:
        raise ElnetError(f"{discovery.root}: no DICOM or .npy studies found")
    if args.dicom_out:
        require_dicom_studies(discovery)
    sys.stderr.write(
        f"{len(discovery.studies)} studies, {len(models)} model(s): "
        f"{', '.join(m.info.task for m in models)}\n"
    )
    bar = WorklistBar(sys.stderr)
    update = warning_lines(bar, sys.stderr)
    if args.dask:  # the studies on a Dask cluster, their results into the same report
        from napari_elnet.worklist.dask_triage import run_dask_worklist

        if args.dicom_out:
            raise ElnetError("--dicom-out is not available with --dask yet: leave out one of them")
        report = run_dask_worklist(discovery, args.dask, args.model or (), config, update)
    elif args.dicom_out:  # the same run, with each study's DICOM results written after its triage
        steps = dicom_results_steps(args.dicom_out, warn=lambda line: bar_line(bar, line))
        report = run_to_end(worklist_steps(discovery, models, config, steps=steps), update)
    else:
        report = run_worklist(discovery, models, config, update)
    bar.finish()
    print(triage_table(report, args.top, args.include_phi))
    shown = min(args.top, len(report.results))
    errors = sum(r.status == "error" for r in report.results)
    run = len(report.results) - report.skipped
    rate = 60.0 * run / report.elapsed if report.elapsed > 0 and run else 0.0
    print(
        f"{shown} of {len(report.results)} studies shown; {errors} could not be triaged; "
        f"{report.skipped} already in the report; {rate:.1f} studies/min; report: {config.report}"
    )
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """The ``triage`` sub-command (batch worklist)."""
    triage = sub.add_parser(
        "triage", help="rank every study under a folder by suspicion (worklist report)"
    )
    triage.add_argument("root", help="folder of DICOM studies (any layout) or an MRNet root")
    triage.add_argument(
        "--out", required=True, metavar="REPORT", help="report to write (.csv or .json)"
    )
    add_model_option(triage)
    add_device_option(triage)
    triage.add_argument(
        "--include-phi",
        action="store_true",
        help="write patient name/ID, study date, folders and series UIDs to the report",
    )
    triage.add_argument(
        "--prefetch", type=int, default=2, metavar="N", help="studies loaded ahead (default 2)"
    )
    triage.add_argument(
        "--lanes",
        type=int,
        metavar="N",
        help="studies triaged at the same time, each on its own thread with its share of torch's "
        "threads (default: one per usable core on the CPU, 1 on a GPU)",
    )
    triage.add_argument("--top", type=int, default=20, metavar="N", help="rows shown (default 20)")
    triage.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="triage on a Dask cluster: a scheduler address (tcp://host:8786) or local:N for N "
        "local worker processes (needs napari-elnet[dask]; see docs/distributed.md)",
    )
    triage.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="also write each study's DICOM results (report, heatmap maps, key images) to "
        "DIR/<study id>/",
    )
    triage.add_argument(
        "--restart",
        action="store_true",
        help="triage every study again instead of skipping those already in the report",
    )
    triage.set_defaults(handler=cmd_triage)
