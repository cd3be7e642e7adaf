"""Options several commands share, defined once: model files, device, JSON output."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from napari_elnet.common.device import DEVICE_NAMES
from napari_elnet.common.errors import ElnetError

if TYPE_CHECKING:
    from napari_elnet.models.model_file import LoadedModel


def add_model_option(parser: Any) -> None:
    """``--model FILE ...``: model files to run instead of the shipped ones."""
    parser.add_argument(
        "--model", nargs="+", metavar="FILE", help="model files (default: the shipped models)"
    )


def add_device_option(parser: Any) -> None:
    """``--device``: where the models run (``auto`` picks CUDA, then MPS, then the CPU)."""
    parser.add_argument(
        "--device",
        choices=DEVICE_NAMES,
        default="auto",
        help="where the models run (default auto: CUDA, then Apple MPS, then the CPU)",
    )


def add_json_option(parser: Any) -> None:
    """``--json FILE|-``: the result as JSON too (``-``: JSON on stdout instead of the table)."""
    parser.add_argument(
        "--json", metavar="FILE", help="also write JSON to FILE ('-' for stdout only)"
    )


def chosen_models(args: argparse.Namespace) -> list[LoadedModel]:
    """The models of ``--model``, else the shipped default models.

    Raises:
        ElnetError: No ``--model`` was given and this build ships no default models.
        ModelFileError: A model file cannot be read (the message names it).
    """
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.models.model_file import load_model

    models = [load_model(p) for p in args.model] if args.model else load_default_models()
    if not models:
        raise ElnetError("no model given and no default models ship with this build (use --model)")
    return models
