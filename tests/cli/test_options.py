"""The options of every sub-command say what they do in ``--help``."""

from __future__ import annotations

import argparse

from napari_elnet.cli import build_parser


def test_every_option_of_every_command_has_help() -> None:
    """``phantom --format``, ``--seed``, ``--device``, ``train --blur`` ... once had none."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    silent = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert silent == []
