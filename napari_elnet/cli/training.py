"""``train``, ``evaluate`` and ``phantom``: learn ELNet on labelled data, measure it, make data."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from napari_elnet.cli.options import add_device_option, add_json_option, add_model_option
from napari_elnet.cli.output import EXIT_OK, json_number, number, table, write_json
from napari_elnet.cli.progress import ProgressBar
from napari_elnet.common.errors import ElnetError
from napari_elnet.common.series import PLANES


def train_config(args: argparse.Namespace, layout: str) -> Any:
    """The TrainConfig of the command line: the paper's plane and norm per task by default."""
    from napari_elnet.datasets import default_choice
    from napari_elnet.training.config import TrainConfig

    plane, norm = default_choice(layout, args.task)
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
        bf16=args.bf16,
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Train ELNet on a labelled data folder; the best epoch (by validation ROC-AUC) is saved."""
    from napari_elnet.common.outputs import ensure_outside_inputs
    from napari_elnet.common.steps import run_to_end
    from napari_elnet.datasets import detect_layout
    from napari_elnet.training.crossval import cross_validate_steps, fold_path
    from napari_elnet.training.distributed import launch, launched_world, process_group
    from napari_elnet.training.loop import train_steps
    from napari_elnet.training.metrics import METRIC_HEADERS, METRIC_NAMES
    from napari_elnet.training.session import open_training_data

    if args.nproc > 1 and launched_world() == 1:  # start torchrun, which runs this command again
        return launch(args.nproc, _without_nproc(args.argv))
    out = ensure_outside_inputs(args.out, [args.data], folder=False)  # before any work is done
    layout = detect_layout(args.data)
    config = train_config(args, layout)
    if launched_world() > 1 and config.folds > 1:
        raise ElnetError("cross-validation (--folds) runs in one process: leave out --nproc")
    valid_split = config.folds == 1 and args.val_fraction is None  # MRNet's own valid split
    opened = open_training_data(args.data, config, valid_split, args.kneemri_positive)
    train_set, valid_set = opened.train_set, opened.valid_set
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
                *(number(r.metrics.get(k, math.nan)) for k in METRIC_NAMES),
            )
            for i, r in enumerate(result.folds)
        ]
        summary = [result.summary[k] for k in METRIC_NAMES]
        rows.append(("mean±sd", "", *(f"{number(m)}±{number(sd)}" for m, sd in summary)))
        print(table(rows, ("fold", "best epoch", *METRIC_HEADERS)))
        for i in range(len(result.folds)):
            print(f"fold {i + 1} model: {fold_path(out, i)}")
        return EXIT_OK
    sys.stderr.write(opened.description + "\n")
    with process_group(config.device) as context:  # one process unless started by torchrun
        steps = train_steps(
            config, train_set, out, valid_set, resume=args.resume, source=args.data,
            cache=_cache_config(args, context.world), context=context,
        )  # fmt: skip
        result = run_to_end(steps, bar.update if context.is_main else None)
    if not context.is_main:  # rank 0 reports
        return EXIT_OK
    bar.finish()
    if result.path is None:
        raise ElnetError("training stopped before the first validation: no model was written")
    row = (result.best_epoch, *(number(result.metrics.get(k, math.nan)) for k in METRIC_NAMES))
    print(table([row], ("best epoch", *METRIC_HEADERS)))
    print(f"model: {result.path} ({result.volumes_per_s:.1f} training volumes/s)")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Table 2 metrics of models on a labelled data folder."""
    from napari_elnet.common.outputs import ensure_outside_inputs
    from napari_elnet.models.model_file import load_model

    if args.json not in (None, "-"):
        ensure_outside_inputs(args.json, [args.data], folder=False)  # before any work is done
    from napari_elnet.training.evaluate import AUTO, evaluate
    from napari_elnet.training.metrics import METRIC_HEADERS, METRIC_NAMES

    models = [load_model(p) for p in args.model] if args.model else None
    split = None if args.split == "all" else args.split or AUTO
    evaluation = evaluate(args.data, models, split, args.device, args.kneemri_positive)
    for reason in evaluation.skipped:
        sys.stderr.write(f"warning: skipped {reason}\n")
    records = evaluation.records()
    if args.json != "-":
        rows = [
            (task, *(number(r[k]) for k in METRIC_NAMES), r["n"]) for task, r in records.items()
        ]
        print(table(rows, ("task", *METRIC_HEADERS, "n")))
    data = {task: {k: json_number(v) for k, v in r.items()} for task, r in records.items()}
    write_json(data, args.json, [args.data])
    return EXIT_OK


def cmd_phantom(args: argparse.Namespace) -> int:
    """Write a synthetic labelled data set (MRNet or DICOM layout) for trying out training."""
    try:
        from napari_elnet.phantom import main_phantom
    except ImportError as exc:
        raise ElnetError(f"phantom data generation is not available in this build ({exc})") from exc
    from napari_elnet.common.outputs import ensure_writable

    ensure_writable(args.out, folder=True)
    path = main_phantom(Path(args.out), args.n, args.format, args.seed)
    print(f"wrote {args.n} phantom cases ({args.format}) to {path}")
    return EXIT_OK


def _cache_config(args: argparse.Namespace, world: int) -> Any:
    """The volume cache of ``--cache`` (always used by several processes), or None (in memory)."""
    from napari_elnet.training.cache import CacheConfig

    if args.cache is None and world == 1:
        return None
    folder = Path(args.cache) if args.cache else None
    return CacheConfig(folder=folder, dtype=args.cache_dtype, workers=args.loader_workers)


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line without ``--nproc N`` / ``--nproc=N`` (for the processes torchrun starts)."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_kneemri_option(parser: Any) -> None:
    """``--kneemri-positive``: which KneeMRI diagnoses count as positive."""
    from napari_elnet.datasets.kneemri import POSITIVE_DIAGNOSES

    parser.add_argument(
        "--kneemri-positive",
        choices=tuple(POSITIVE_DIAGNOSES),
        default="injured",
        help="KneeMRI labels: injured = partial or ruptured ACL is positive (default)",
    )


def add_commands(sub: Any) -> None:
    """The ``train``, ``evaluate`` and ``phantom`` sub-commands."""
    from napari_elnet.nn.norm_kinds import NORM_KINDS

    train = sub.add_parser("train", help="train ELNet on a labelled data folder")
    train.add_argument(
        "data", help="MRNet root, KneeMRI root, or folder of DICOM cases + labels.csv"
    )
    train.add_argument("--task", default="acl", help="label to learn (default acl)")
    train.add_argument("--plane", choices=PLANES, help="default: the paper's per task")
    train.add_argument("--k", type=int, default=4, help="width multiplier (paper: 4)")
    train.add_argument("--norm", choices=NORM_KINDS, help="default: the paper's per task")
    train.add_argument(
        "--blur", type=int, default=5, help="BlurPool filter size, 1-5 (default 5; 1: no blur)"
    )
    train.add_argument("--dropout", type=float, default=0.2, help="dropout rate (default 0.2)")
    train.add_argument("--epochs", type=int, default=200, help="total epochs (paper: 200)")
    train.add_argument(
        "--lr", type=_positive_float, default=2e-5, help="Adam learning rate (paper: 1e-5..3e-5)"
    )
    train.add_argument(
        "--weight-decay", type=float, default=0.0, help="Adam weight decay (default 0)"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed of weights, split and augmentation (default 0)"
    )
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
    add_device_option(train)
    add_kneemri_option(train)
    train.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    scale = train.add_argument_group("beyond one process (docs/distributed.md)")
    scale.add_argument(
        "--cache",
        nargs="?",
        const="",
        metavar="DIR",
        help="stream prepared volumes from an on-disk cache in DIR (default: the user cache "
        "folder) instead of keeping them in memory; always on with --nproc",
    )
    scale.add_argument(
        "--cache-dtype",
        choices=("float16", "uint8"),
        default="float16",
        help="how the cache stores prepared volumes (default float16; uint8: half the disk)",
    )
    scale.add_argument(
        "--loader-workers", type=int, default=2, help="DataLoader processes reading the cache"
    )
    scale.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="data-parallel training in N processes on this machine (starts torchrun; one per "
        "GPU on CUDA); a step averages N series, as --accumulate N does in one process",
    )
    scale.add_argument("--bf16", action="store_true", help="bf16 mixed precision (CUDA GPUs)")
    train.set_defaults(handler=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", help="Table 2 metrics of models on a labelled data folder"
    )
    evaluate.add_argument("data", help="MRNet root, KneeMRI root, or DICOM cases + labels.csv")
    add_model_option(evaluate)
    evaluate.add_argument(
        "--split", choices=("train", "valid", "all"), help="MRNet split (default valid)"
    )
    add_json_option(evaluate)
    add_device_option(evaluate)
    add_kneemri_option(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    phantom = sub.add_parser("phantom", help="write a synthetic labelled data set")
    phantom.add_argument("out", help="folder to create")
    phantom.add_argument("--n", type=int, default=20, help="number of cases (default 20)")
    phantom.add_argument(
        "--format",
        choices=("mrnet", "dicom"),
        default="mrnet",
        help="mrnet: .npy volumes and label CSVs; dicom: one folder per case and labels.csv "
        "(default mrnet)",
    )
    phantom.add_argument("--seed", type=int, default=0, help="same seed, same cases (default 0)")
    phantom.set_defaults(handler=cmd_phantom)
