"""Command line interface: ``napari-elnet info|predict|triage|train|evaluate|phantom ...``.

Exit status 0 on success, 2 on unusable input (with a one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from napari_elnet.common.device import DEVICE_NAMES
from napari_elnet.common.errors import ElnetError

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
    from napari_elnet.common.outputs import ensure_outside_inputs

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
        from napari_elnet.common.errors import NoUsableSeriesError

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
    from napari_elnet.common.outputs import ensure_outside_inputs
    from napari_elnet.inference.triage import run_triage
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.models.model_file import load_model

    for target in (args.json, args.heatmaps):
        if target not in (None, "-"):
            ensure_outside_inputs(target, [args.path])  # refuse before any work is done
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

        folder = ensure_outside_inputs(args.heatmaps, [args.path])
        folder.mkdir(parents=True, exist_ok=True)
        for result in results:
            np.save(folder / f"{result.task}_heatmap.npy", result.heatmap)
    return EXIT_OK


class StatusLine:
    """One ``\r``-rewritten status line on a stream, redrawn at most every ``interval`` seconds."""

    WIDTH = 24

    def __init__(self, stream: TextIO, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self.last_write = 0.0
        self.length = 0

    def due(self, force: bool = False) -> bool:
        """Whether to redraw now (always when ``force``)."""
        now = time.monotonic()
        if now - self.last_write < self.interval and not force:
            return False
        self.last_write = now
        return True

    def bar(self, done: int, total: int) -> str:
        """``[###.....]`` for ``done`` of ``total``."""
        filled = round(self.WIDTH * done / max(total, 1))
        return "[" + "#" * filled + "." * (self.WIDTH - filled) + "]"

    def show(self, parts: list[str]) -> None:
        """Replace the line with ``parts`` joined by ``|``."""
        line = " | ".join(parts)
        self.stream.write("\r" + line.ljust(self.length))
        self.length = len(line)
        self.stream.flush()

    def newline(self) -> None:
        """Keep the current line and start a new one."""
        if self.length:
            self.stream.write("\n")
            self.stream.flush()
        self.length = 0

    def finish(self) -> None:
        """End the current line."""
        self.newline()


class ProgressBar(StatusLine):
    """Training progress: one line per epoch (and fold), kept when the epoch ends."""

    def __init__(self, stream: TextIO, interval: float = 0.2) -> None:
        super().__init__(stream, interval)
        self.line_key: tuple[object, ...] | None = None

    def update(self, progress: Any) -> None:
        """Show one :class:`~napari_elnet.training.loop.TrainProgress`."""
        key = (progress.fold, progress.epoch)
        if self.line_key is not None and key != self.line_key:
            self.newline()  # keep the finished epoch's line
        self.line_key = key
        if not self.due(force=progress.step == progress.steps):
            return
        fold = f"fold {progress.fold + 1} " if progress.fold is not None else ""
        epoch = (
            "prepare"
            if progress.phase == "prepare"
            else f"epoch {progress.epoch}/{progress.epochs}"
        )
        bar = self.bar(progress.step, progress.steps)
        parts = [f"{fold}{epoch} {progress.phase:8s} {bar} {progress.step}/{progress.steps}"]
        if not math.isnan(progress.loss):
            parts.append(f"loss {progress.loss:.4f}")
        if progress.metrics:
            parts.append(f"last val auc {progress.metrics.get('roc_auc', math.nan):.3f}")
        parts.append(f"{progress.volumes_per_s:.1f} vol/s")
        parts.append(_clock(progress.elapsed))
        self.show(parts)


def _number(value: float) -> str:
    """Three decimals, ``nan`` for undefined values."""
    return "nan" if math.isnan(value) else f"{value:.3f}"


def _json_number(value: float) -> float | None:
    """JSON has no NaN: undefined metrics become null."""
    return None if isinstance(value, float) and math.isnan(value) else value


METRIC_HEADER = ("accuracy", "sensitivity", "specificity", "ROC-AUC", "MCC")
METRIC_KEYS = ("accuracy", "sensitivity", "specificity", "roc_auc", "mcc")


def _train_config(args: argparse.Namespace, layout: str) -> Any:
    """The TrainConfig of the command line: the paper's plane and norm per task by default."""
    from napari_elnet.training.config import PAPER_CHOICES, TrainConfig

    plane, norm = PAPER_CHOICES.get(args.task, ("axial", "layer"))
    if layout == "kneemri":
        plane = "sagittal"
    return TrainConfig(
        task=args.task,
        plane=args.plane or plane,
        k=args.k,
        norm=args.norm or norm,
        blur=args.blur,
        dropout=args.dropout,
        lr=args.lr,
        weight_decay=args.weight_decay,
        epochs=args.epochs,
        seed=args.seed,
        val_fraction=0.2 if args.val_fraction is None else args.val_fraction,
        folds=args.folds,
        device=args.device,
        augment=not args.no_augment,
        quarter_turns=not args.no_quarter_turns,
        oversample=not args.no_oversample,
        patience=args.patience,
        accumulate=args.accumulate,
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Train ELNet on a labelled data folder; the best epoch (by validation ROC-AUC) is saved."""
    from napari_elnet.common.outputs import ensure_outside_inputs
    from napari_elnet.common.steps import run_to_end
    from napari_elnet.datasets import detect_layout, open_dataset
    from napari_elnet.training.crossval import cross_validate_steps, fold_path
    from napari_elnet.training.loop import train_steps

    out = ensure_outside_inputs(args.out, [args.data])
    layout = detect_layout(args.data)
    config = _train_config(args, layout)
    open_args = {"kneemri_positive": args.kneemri_positive} if layout == "kneemri" else {}
    mrnet_split = "train" if layout == "mrnet" else None
    train_set = open_dataset(args.data, config.task, config.plane, mrnet_split, **open_args)
    bar = ProgressBar(sys.stderr)
    if config.folds > 1:
        sys.stderr.write(f"{config.folds}-fold cross-validation on {train_set.describe()}\n")
        steps: Any = cross_validate_steps(config, train_set, out, source=args.data)
        result = run_to_end(steps, bar.update)
        bar.finish()
        rows = [
            (
                i + 1,
                r.best_epoch or "-",
                *(_number(r.metrics.get(k, math.nan)) for k in METRIC_KEYS),
            )
            for i, r in enumerate(result.folds)
        ]
        summary = [result.summary[k] for k in METRIC_KEYS]
        rows.append(("mean±sd", "", *(f"{_number(m)}±{_number(sd)}" for m, sd in summary)))
        print(_table(rows, ("fold", "best epoch", *METRIC_HEADER)))
        for i in range(len(result.folds)):
            print(f"fold {i + 1} model: {fold_path(out, i)}")
        return EXIT_OK
    valid_set = None
    if layout == "mrnet" and args.val_fraction is None:
        valid_set = open_dataset(args.data, config.task, config.plane, "valid")
        sys.stderr.write(
            f"training on {train_set.describe()}; validating on {valid_set.describe()}\n"
        )
    else:
        sys.stderr.write(
            f"training on {train_set.describe()}, {config.val_fraction:.0%} held out for validation\n"
        )
    steps = train_steps(config, train_set, out, valid_set, resume=args.resume, source=args.data)
    result = run_to_end(steps, bar.update)
    bar.finish()
    if result.path is None:
        raise ElnetError("training stopped before the first validation: no model was written")
    row = (result.best_epoch, *(_number(result.metrics.get(k, math.nan)) for k in METRIC_KEYS))
    print(_table([row], ("best epoch", *METRIC_HEADER)))
    print(f"model: {result.path} ({result.volumes_per_s:.1f} training volumes/s)")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Table 2 metrics of models on a labelled data folder."""
    from napari_elnet.models.model_file import load_model
    from napari_elnet.training.evaluate import AUTO, evaluate

    models = [load_model(p) for p in args.model] if args.model else None
    split = None if args.split == "all" else args.split or AUTO
    evaluation = evaluate(args.data, models, split, args.device, args.kneemri_positive)
    for reason in evaluation.skipped:
        sys.stderr.write(f"warning: skipped {reason}\n")
    records = evaluation.records()
    if args.json != "-":
        rows = [
            (task, *(_number(r[k]) for k in METRIC_KEYS), r["n"]) for task, r in records.items()
        ]
        print(_table(rows, ("task", *METRIC_HEADER, "n")))
    data = {task: {k: _json_number(v) for k, v in r.items()} for task, r in records.items()}
    _write_json(data, args.json, [args.data])
    return EXIT_OK


def cmd_phantom(args: argparse.Namespace) -> int:
    """Write a synthetic labelled data set (MRNet or DICOM layout) for trying out training."""
    try:
        from napari_elnet.phantom import main_phantom
    except ImportError as exc:
        raise ElnetError(f"phantom data generation is not available in this build ({exc})") from exc
    path = main_phantom(Path(args.out), args.n, args.format, args.seed)
    print(f"wrote {args.n} phantom cases ({args.format}) to {path}")
    return EXIT_OK


def _clock(seconds: float | None) -> str:
    """``mm:ss`` (``hh:mm:ss`` past an hour), ``--:--`` when unknown."""
    if seconds is None or math.isnan(seconds):
        return "--:--"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{hours}:{text}" if hours else text


class WorklistBar(StatusLine):
    """Progress of a worklist run: studies done, rate and ETA."""

    def update(self, progress: Any) -> None:
        """Show one :class:`~napari_elnet.worklist.WorklistProgress`."""
        if not self.due(force=progress.stage in ("study", "done")):
            return
        run = progress.done - progress.skipped
        rate = 60.0 * run / progress.elapsed if progress.elapsed > 0 and run else 0.0
        current = f"{progress.study} {progress.task}".strip() if progress.stage == "task" else ""
        parts = [
            f"{self.bar(progress.done, progress.total)} {progress.done}/{progress.total} studies"
        ]
        if current:
            parts.append(current)
        parts.append(f"{progress.errors} error(s)")
        parts.append(f"{rate:.1f} studies/min")
        parts.append(f"elapsed {_clock(progress.elapsed)}")
        parts.append(f"ETA {_clock(progress.eta)}")
        self.show(parts)


def _triage_table(report: Any, top: int, include_phi: bool) -> str:
    """The ranked worklist: one line per study, the probability per task (``*`` = positive)."""
    tasks: list[str] = []
    for result in report.results:
        tasks.extend(t.task for t in result.tasks if t.task not in tasks)
    header = ["#", "study", "suspicion", *tasks, "status"]
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
            cells.append(
                "-" if row is None else f"{row.probability:.3f}{'*' if row.decision else ''}"
            )
        cells.append(result.status if result.status == "ok" else f"error: {result.reason}")
        rows.append(cells)
    return _table(rows, header)


def cmd_triage(args: argparse.Namespace) -> int:
    """Triage every study under a folder and write the ranked worklist report."""
    from napari_elnet.common.outputs import ensure_outside_inputs
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.models.model_file import load_model
    from napari_elnet.worklist import WorklistConfig, discover_studies, run_worklist

    config = WorklistConfig(
        device=args.device,
        prefetch=args.prefetch,
        report=Path(args.out),
        resume=not args.restart,
        include_phi=args.include_phi,
    )
    ensure_outside_inputs(args.out, [args.root])  # refuse before any work is done
    models = [load_model(p) for p in args.model] if args.model else load_default_models()
    if not models:
        raise ElnetError("no model given and no default models ship with this build (use --model)")
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
    sys.stderr.write(
        f"{len(discovery.studies)} studies, {len(models)} model(s): "
        f"{', '.join(m.info.task for m in models)}\n"
    )
    bar = WorklistBar(sys.stderr)
    report = run_worklist(discovery, models, config, bar.update)
    bar.finish()
    print(_triage_table(report, args.top, args.include_phi))
    shown = min(args.top, len(report.results))
    errors = sum(r.status == "error" for r in report.results)
    run = len(report.results) - report.skipped
    rate = 60.0 * run / report.elapsed if report.elapsed > 0 and run else 0.0
    print(
        f"{shown} of {len(report.results)} studies shown; {errors} could not be triaged; "
        f"{report.skipped} already in the report; {rate:.1f} studies/min; report: {config.report}"
    )
    return EXIT_OK


def _add_triage_command(sub: Any) -> None:
    """The ``triage`` sub-command (batch worklist)."""
    triage = sub.add_parser(
        "triage", help="rank every study under a folder by suspicion (worklist report)"
    )
    triage.add_argument("root", help="folder of DICOM studies (any layout) or an MRNet root")
    triage.add_argument(
        "--out", required=True, metavar="REPORT", help="report to write (.csv or .json)"
    )
    triage.add_argument(
        "--model", nargs="+", metavar="FILE", help="model files (default: the shipped models)"
    )
    triage.add_argument("--device", choices=DEVICE_NAMES, default="auto")
    triage.add_argument(
        "--include-phi",
        action="store_true",
        help="write patient name/ID, study date, folders and series UIDs to the report",
    )
    triage.add_argument(
        "--prefetch", type=int, default=2, metavar="N", help="studies loaded ahead (default 2)"
    )
    triage.add_argument("--top", type=int, default=20, metavar="N", help="rows shown (default 20)")
    triage.add_argument(
        "--restart",
        action="store_true",
        help="triage every study again instead of skipping those already in the report",
    )
    triage.set_defaults(handler=cmd_triage)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_training_commands(sub: Any) -> None:
    """The ``train``, ``evaluate`` and ``phantom`` sub-commands."""
    from napari_elnet.datasets.kneemri import POSITIVE_DIAGNOSES

    kneemri_help = "KneeMRI labels: injured = partial or ruptured ACL is positive (default)"
    train = sub.add_parser("train", help="train ELNet on a labelled data folder")
    train.add_argument(
        "data", help="MRNet root, KneeMRI root, or folder of DICOM cases + labels.csv"
    )
    train.add_argument("--task", default="acl", help="label to learn (default acl)")
    train.add_argument(
        "--plane", choices=("axial", "coronal", "sagittal"), help="default: the paper's per task"
    )
    train.add_argument("--k", type=int, default=4, help="width multiplier (paper: 4)")
    train.add_argument(
        "--norm", choices=("layer", "contrast"), help="default: the paper's per task"
    )
    train.add_argument("--blur", type=int, default=5)
    train.add_argument("--dropout", type=float, default=0.2)
    train.add_argument("--epochs", type=int, default=200, help="total epochs (paper: 200)")
    train.add_argument(
        "--lr", type=_positive_float, default=2e-5, help="Adam learning rate (paper: 1e-5..3e-5)"
    )
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--folds", type=int, default=1, help="N >= 2: stratified N-fold CV")
    train.add_argument(
        "--val-fraction",
        type=float,
        help="hold out this share for validation (default 0.2; MRNet uses its valid split)",
    )
    train.add_argument("--patience", type=int, help="stop after N epochs without improvement")
    train.add_argument("--accumulate", type=int, default=1, help="series per optimizer step")
    train.add_argument("--no-augment", action="store_true", help="train without augmentation")
    train.add_argument(
        "--no-quarter-turns",
        action="store_true",
        help="augment without the paper's random 90-degree turns of axial and coronal series",
    )
    train.add_argument("--no-oversample", action="store_true", help="no minority oversampling")
    train.add_argument("--resume", metavar="FILE", help="continue from this model file")
    train.add_argument("--device", choices=DEVICE_NAMES, default="auto")
    train.add_argument(
        "--kneemri-positive",
        choices=tuple(POSITIVE_DIAGNOSES),
        default="injured",
        help=kneemri_help,
    )
    train.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    train.set_defaults(handler=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", help="Table 2 metrics of models on a labelled data folder"
    )
    evaluate.add_argument("data", help="MRNet root, KneeMRI root, or DICOM cases + labels.csv")
    evaluate.add_argument(
        "--model", nargs="+", metavar="FILE", help="model files (default: the shipped models)"
    )
    evaluate.add_argument(
        "--split", choices=("train", "valid", "all"), help="MRNet split (default valid)"
    )
    evaluate.add_argument(
        "--json", metavar="FILE", help="also write JSON to FILE ('-' for stdout only)"
    )
    evaluate.add_argument("--device", choices=DEVICE_NAMES, default="auto")
    evaluate.add_argument(
        "--kneemri-positive",
        choices=tuple(POSITIVE_DIAGNOSES),
        default="injured",
        help=kneemri_help,
    )
    evaluate.set_defaults(handler=cmd_evaluate)

    phantom = sub.add_parser("phantom", help="write a synthetic labelled data set")
    phantom.add_argument("out", help="folder to create")
    phantom.add_argument("--n", type=int, default=20, help="number of cases")
    phantom.add_argument("--format", choices=("mrnet", "dicom"), default="mrnet")
    phantom.add_argument("--seed", type=int, default=0)
    phantom.set_defaults(handler=cmd_phantom)


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
    _add_triage_command(sub)
    _add_training_commands(sub)
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
