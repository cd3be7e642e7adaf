"""The "Run" box of the training and worklist widgets: Start/Stop, a progress bar, a status line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout


@dataclass(frozen=True)
class RunControls:
    """The box and its controls; more widgets can be added to ``layout`` below the status line."""

    box: QGroupBox
    layout: QVBoxLayout
    button: QPushButton
    progress: QProgressBar
    status: QLabel


def run_controls(on_click: Callable[[], None], enabled: bool = True) -> RunControls:
    """A "Run" box whose Start button calls ``on_click``; the progress bar reads "idle"."""
    box = QGroupBox("Run")
    layout = QVBoxLayout(box)
    row = QHBoxLayout()
    button = QPushButton("Start")
    button.setEnabled(enabled)
    button.clicked.connect(on_click)
    progress = QProgressBar()
    progress.setTextVisible(True)
    progress.setFormat("idle")
    progress.setValue(0)
    row.addWidget(button)
    row.addWidget(progress, stretch=1)
    layout.addLayout(row)
    status = QLabel("")
    status.setWordWrap(True)
    layout.addWidget(status)
    return RunControls(box, layout, button, progress, status)
