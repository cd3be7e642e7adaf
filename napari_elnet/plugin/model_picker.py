"""The models row of the triage and worklist widgets: shipped defaults, or model files the user picks."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_elnet.plugin.model_files import load_or_report
from napari_elnet.plugin.workers import start_worker

if TYPE_CHECKING:
    from napari_elnet.models.model_file import LoadedModel

LOADING = "loading default models..."


def load_defaults(warm: Sequence[str] = ()) -> tuple[list[LoadedModel], str]:
    """Import the ``warm`` modules, load the default models, resolve ``auto`` (runs in a worker).

    Returns:
        The default models (possibly none) and the device type ``auto`` resolves to.
    """
    import importlib

    from napari_elnet.common.device import resolve_device
    from napari_elnet.models.defaults import load_default_models

    for module in warm:  # torch and friends are imported here, off the GUI thread
        importlib.import_module(module)
    return load_default_models(), resolve_device("auto").type


class ModelPicker(QWidget):
    """ "Default models" and "Model file(s)..." buttons over a status line.

    The shipped models load in a worker as soon as the picker exists; a model file the user picks
    replaces the model of its task, also when it arrives before the defaults. ``modelsChanged`` is
    emitted whenever :meth:`models` may have changed, and once when the defaults have loaded or
    failed to (then :attr:`ready` is True and :attr:`auto_device` is known).
    """

    modelsChanged = Signal()

    def __init__(self, several: bool = False, warm: Sequence[str] = ()) -> None:
        from napari_elnet.models.choice import ModelChoice

        super().__init__()
        self.several = several
        self.warm = tuple(warm)
        self.choice = ModelChoice()
        self.ready = False
        self.auto_device = "cpu"
        self._worker = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        self.defaults_button = QPushButton("Default models")
        self.defaults_button.clicked.connect(self.use_default_models)
        self.file_button = QPushButton("Model files..." if several else "Model file...")
        self.file_button.clicked.connect(self._choose_files)
        buttons.addWidget(self.defaults_button)
        buttons.addWidget(self.file_button)
        layout.addLayout(buttons)
        self.status = QLabel(LOADING)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self._load_defaults()

    def models(self) -> list[LoadedModel]:
        """The model of each task: the user's picks over the defaults."""
        return self.choice.models()

    def use_default_models(self) -> None:
        """Forget the model files the user picked and (re)load the shipped defaults."""
        self.choice.forget_picks()
        self._load_defaults()

    def use_model_file(self, path: str | PathLike) -> None:
        """Load a model file and use it for its task (a problem with the file is shown, not raised)."""
        loaded = load_or_report(path)
        if loaded is not None:
            self.choice.pick(loaded)
            self._show()

    def set_running(self, running: bool) -> None:
        """Disable the buttons while the host widget is running its models."""
        self.defaults_button.setEnabled(not running)
        self.file_button.setEnabled(not running)

    def _load_defaults(self) -> None:
        self.status.setText(LOADING)
        self._worker = start_worker(
            load_defaults, self.warm, returned=self._on_defaults, errored=self._on_error
        )

    def _on_defaults(self, loaded: tuple[list[LoadedModel], str]) -> None:
        defaults, self.auto_device = loaded
        self.choice.defaults = list(defaults)
        self.ready = True
        self._show()
        if not defaults and not self.choice.picked:
            what = "model files" if self.several else "a model file"
            self.status.setText(f"no default models ship with this build: choose {what}")

    def _on_error(self, exc: Exception) -> None:
        self.ready = True
        self.status.setText(f"default models: {exc}")
        self.modelsChanged.emit()

    def _show(self) -> None:
        models = self.models()
        names = [f"{m.info.task}/{m.info.plane}" for m in models]
        self.status.setText(f"{len(models)} model(s): " + ", ".join(names))
        self.status.setToolTip(
            "\n".join(f"{m.identity}{' (demo weights)' if m.info.demo else ''}" for m in models)
        )
        self.modelsChanged.emit()

    def _choose_files(self) -> None:
        caption, pattern = "ELNet model file", "ELNet models (*.pt)"
        if self.several:
            paths, _ = QFileDialog.getOpenFileNames(self, caption + "s", "", pattern)
        else:
            path, _ = QFileDialog.getOpenFileName(self, caption, "", pattern)
            paths = [path] if path else []
        for path in paths:
            self.use_model_file(path)
