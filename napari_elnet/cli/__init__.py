"""Command line interface: ``napari-elnet info|predict|triage|train|evaluate|phantom ...``.

Each command group is one module of this package with an ``add_commands(sub)`` function that adds
its sub-commands (each sets ``handler``); :data:`COMMAND_GROUPS` lists them in help order. To add a
group, write ``napari_elnet/cli/<group>.py`` (heavy imports inside the handlers, so that ``--help``
stays fast), import it below and add it to the tuple.

Exit status 0 on success, 2 on unusable input or an output that cannot be written (refused before
any work is done), 1 when reading or writing a file fails during the run (disk full, permissions
changed): each with a one-line reason on stderr that names the file, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TextIO

from napari_elnet.cli import node, study, training, worklist
from napari_elnet.cli.output import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE
from napari_elnet.common.errors import ElnetError

__all__ = ["COMMAND_GROUPS", "EXIT_FAILED", "EXIT_OK", "EXIT_UNUSABLE", "build_parser", "main"]

#: Modules of this package that add sub-commands, in the order ``--help`` lists them.
COMMAND_GROUPS = (study, worklist, training, node)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-elnet``."""
    parser = argparse.ArgumentParser(
        prog="napari-elnet", description="Knee MRI triage with ELNet and FullGrad heatmaps."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-elnet`` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # e.g. for train --nproc (torchrun)
    handler: Callable[[argparse.Namespace], int] = args.handler
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show_warning  # restored when the block ends
        # pynetdicom leaves the socket of a failed connection to the garbage collector: not the
        # user's problem (the refusal itself is reported)
        warnings.filterwarnings("ignore", category=ResourceWarning, module="pynetdicom")
        try:
            return handler(args)
        except ElnetError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            sys.stderr.write(f"napari-elnet: {message}\n")
            return EXIT_UNUSABLE
        except OSError as exc:  # a file system failure mid-run: named, without a traceback
            sys.stderr.write(f"napari-elnet: {os_error_message(exc)}\n")
            return EXIT_FAILED


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning as one line, ``warning: <first line of its message>``, on stderr.

    Python's format adds the warning's source file, line number and source line (a library's, such
    as highdicom's ``check_person_name(patient_name)``), which read like a crash to a user.
    """
    text = str(message).strip()
    first = text.splitlines()[0] if text else category.__name__
    (file or sys.stderr).write(f"warning: {first}\n")


def os_error_message(exc: OSError) -> str:
    """``FILE: reason`` of an OSError (both files of a failed rename), or its text."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    return f"{' -> '.join(files)}: {reason}" if files else reason
