"""The "ELNet training" dock widget: choose a labelled data folder and settings, train, keep the model.

The run is the core session :func:`napari_elnet.training.session.training_session`, run by a napari
thread worker (:func:`napari_elnet.plugin.workers.start_worker`); this widget only lays out the
settings, starts and stops the session and shows its progress and outcome. The best checkpoint is
written to a working folder the widget owns (never into the data folder) and can then be saved
elsewhere or handed to the "ELNet triage" widget.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
import weakref
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_elnet.common.clock import clock
from napari_elnet.common.device import DEVICE_NAMES
from napari_elnet.common.errors import ElnetError
from napari_elnet.common.series import PLANES
from napari_elnet.plugin.dock_layout import RowsTable, scrolling_layout
from napari_elnet.plugin.number_fields import ScientificSpinBox
from napari_elnet.plugin.run_controls import run_controls
from napari_elnet.plugin.training_curve import TrainingCurve
from napari_elnet.plugin.workers import start_worker

if TYPE_CHECKING:
    import napari

    from napari_elnet.training.config import TrainConfig
    from napari_elnet.training.loop import TrainProgress
    from napari_elnet.training.session import TrainingOutcome

METRIC_COLUMNS = ("epoch", "acc.", "sens.", "spec.", "AUC", "MCC")
"""Short headers of the best epoch and training.metrics.METRIC_NAMES (full names in tooltips)."""
STATUS_INTERVAL = 0.1
"""Seconds between status line refreshes (the last step of a phase is always shown)."""


def _table_tasks() -> tuple[str, ...]:
    """The tasks of the task table (imported here: napari loads this module at start-up)."""
    from napari_elnet.models.tasks import TASKS

    return TASKS


def _number(value: float | None) -> str:
    """Three decimals; ``n/a`` for undefined values."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


# --------------------------------------------------------------------- widget
class TrainingWidget(QWidget):
    """Dock widget that trains one ELNet on a labelled data folder and keeps its best checkpoint."""

    trainingFinished = Signal(object)
    """Emitted with the :class:`TrainingOutcome` when a run ends (completed, stopped or failed)."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.outcome: TrainingOutcome | None = None
        self.layout_name: str | None = None
        self._cancel = threading.Event()
        self.destroyed.connect(self._cancel.set)  # a closed viewer stops the run
        self._run_data: Path | None = None
        self._detected: str | None = None
        self._runs = 0
        self._last_status = 0.0
        self._train_started: float | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="napari-elnet-training-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.workdir, ignore_errors=True)
        self._build()
        self._fill_tasks(_table_tasks())
        self._set_result_controls_enabled(False)

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        layout = scrolling_layout(self)
        layout.addWidget(self._build_data_box())
        layout.addWidget(self._build_settings_box())
        layout.addWidget(self._build_run_box())
        layout.addWidget(self._build_result_box())
        layout.addStretch(1)

    @staticmethod
    def _add_pair(grid: QGridLayout, row: int, column: int, label: str, field: QWidget) -> None:
        """Put ``label`` and ``field`` side by side in ``grid`` (two pairs fit in one row)."""
        grid.addWidget(QLabel(label), row, 2 * column)
        grid.addWidget(field, row, 2 * column + 1)

    def _build_data_box(self) -> QGroupBox:
        box = QGroupBox("Labelled data")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("MRNet, KneeMRI or DICOM + labels.csv folder")
        self.folder_edit.editingFinished.connect(
            lambda: self.set_data_folder(self.folder_edit.text())
        )
        self.browse_button = QPushButton("Browse...")
        self.browse_button.clicked.connect(self._choose_folder)
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.browse_button)
        layout.addLayout(row)
        self.layout_label = QLabel("choose a data folder")
        self.layout_label.setWordWrap(True)
        layout.addWidget(self.layout_label)
        grid = QGridLayout()
        self.task_combo = QComboBox()
        self.task_combo.currentTextChanged.connect(self._apply_task_defaults)
        self._add_pair(grid, 0, 0, "Task", self.task_combo)
        self.plane_combo = QComboBox()
        self.plane_combo.addItems(PLANES)
        self._add_pair(grid, 0, 1, "Plane", self.plane_combo)
        self.valid_split_check = QCheckBox("MRNet valid split")
        self.valid_split_check.setToolTip(
            "Validate on the data set's own valid split instead of holding out a fraction"
        )
        self.valid_split_check.setChecked(True)
        self.valid_split_check.setEnabled(False)
        self.valid_split_check.toggled.connect(self._update_fraction_enabled)
        grid.addWidget(self.valid_split_check, 1, 0, 1, 2)
        self.val_fraction_spin = QDoubleSpinBox()
        self.val_fraction_spin.setRange(0.05, 0.5)
        self.val_fraction_spin.setSingleStep(0.05)
        self.val_fraction_spin.setDecimals(2)
        self.val_fraction_spin.setToolTip("Share of each class held out for validation")
        self._add_pair(grid, 1, 1, "Held out", self.val_fraction_spin)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        layout.addLayout(grid)
        return box

    def _build_settings_box(self) -> QGroupBox:
        from napari_elnet.nn.norm_kinds import NORM_KINDS
        from napari_elnet.training.config import TrainConfig

        defaults = TrainConfig()
        box = QGroupBox("Model and training")
        grid = QGridLayout(box)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 16)
        self.k_spin.setValue(defaults.k)
        self.k_spin.setToolTip("Width multiplier K (paper: 4)")
        self._add_pair(grid, 0, 0, "K", self.k_spin)
        self.norm_combo = QComboBox()
        self.norm_combo.addItems(NORM_KINDS)
        self.norm_combo.setToolTip(
            "Multi-slice normalization (paper: layer for ACL, contrast for meniscus)"
        )
        self._add_pair(grid, 0, 1, "Norm", self.norm_combo)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10_000)
        self.epochs_spin.setValue(defaults.epochs)
        self.epochs_spin.setToolTip("Total epochs (paper: 200)")
        self._add_pair(grid, 1, 0, "Epochs", self.epochs_spin)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(defaults.seed)
        self.seed_spin.setToolTip("Seed of the weights, split, order and augmentation (paper: 0-4)")
        self._add_pair(grid, 1, 1, "Seed", self.seed_spin)
        self.lr_spin = ScientificSpinBox(1e-7, 1.0)
        self.lr_spin.setValue(defaults.lr)
        self.lr_spin.setToolTip(
            "Adam learning rate (paper: 1e-5 to 3e-5); the arrows double or halve it"
        )
        self._add_pair(grid, 2, 0, "LR", self.lr_spin)
        self.val_fraction_spin.setValue(defaults.val_fraction)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICE_NAMES)
        self._add_pair(grid, 2, 1, "Device", self.device_combo)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        return box

    def _build_run_box(self) -> QGroupBox:
        controls = run_controls(self._start_or_stop)
        self.start_button, self.progress = controls.button, controls.progress
        self.status_label = controls.status
        self.curve = TrainingCurve()
        controls.layout.addWidget(self.curve)
        return controls.box

    def _build_result_box(self) -> QGroupBox:
        box = QGroupBox("Best checkpoint (validation)")
        layout = QVBoxLayout(box)
        self.metrics_table = RowsTable(METRIC_COLUMNS, 1)
        self.metrics_table.setRowCount(1)
        from napari_elnet.training.metrics import METRIC_HEADERS

        for col, name in enumerate(("best epoch", *METRIC_HEADERS)):
            self.metrics_table.horizontalHeaderItem(col).setToolTip(name)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        layout.addWidget(self.metrics_table)
        self.model_label = QLabel("no model yet")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save model as...")
        self.save_button.clicked.connect(self._choose_save_path)
        self.use_button = QPushButton("Use for triage")
        self.use_button.clicked.connect(self.use_for_triage)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.use_button)
        layout.addLayout(buttons)
        return box

    # ----------------------------------------------------------------- data folder
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled data folder")
        if folder:
            self.set_data_folder(folder)

    def set_data_folder(self, folder: str) -> bool:
        """Use ``folder`` as the data set: detect its layout and tasks; False (and a message) if unusable."""
        from napari_elnet.datasets import dataset_tasks, detect_layout

        self.folder_edit.setText(folder)
        self.folder_edit.setToolTip(folder)
        self._detected = folder
        self.layout_name = None
        self.valid_split_check.setEnabled(False)
        if not folder:
            self.layout_label.setText("choose a data folder")
            self._update_fraction_enabled()
            return False
        try:
            self.layout_name = detect_layout(folder)
            tasks = dataset_tasks(folder)
        except (ElnetError, OSError) as exc:
            self.layout_name = None
            self.layout_label.setText(f"<b>Not usable:</b> {exc}")
            self._update_fraction_enabled()
            return False
        names = {"mrnet": "MRNet", "kneemri": "KneeMRI", "dicom": "DICOM studies + labels.csv"}
        self.layout_label.setText(
            f"{names.get(self.layout_name, self.layout_name)} layout; "
            f"labels: {', '.join(tasks) or 'none'}"
        )
        self.valid_split_check.setEnabled(self.layout_name == "mrnet")
        self._fill_tasks(tasks or _table_tasks())
        self._update_fraction_enabled()
        return True

    def _fill_tasks(self, tasks: tuple[str, ...]) -> None:
        previous = self.task_combo.currentText()
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        self.task_combo.addItems(tasks)
        if previous in tasks:
            self.task_combo.setCurrentText(previous)
        self.task_combo.blockSignals(False)
        self._apply_task_defaults(self.task_combo.currentText())

    def _apply_task_defaults(self, task: str) -> None:
        """The paper's plane and normalization for ``task`` (sagittal for KneeMRI)."""
        from napari_elnet.datasets import default_choice

        if not task:
            return
        plane, norm = default_choice(self.layout_name, task)
        self.plane_combo.setCurrentText(plane)
        self.norm_combo.setCurrentText(norm)

    def _update_fraction_enabled(self) -> None:
        use_split = self.valid_split_check.isEnabled() and self.valid_split_check.isChecked()
        self.val_fraction_spin.setEnabled(not use_split)

    # ----------------------------------------------------------------- settings
    def config(self) -> TrainConfig:
        """The run's settings from the controls (ConfigurationError if they are inconsistent)."""
        from napari_elnet.training.config import TrainConfig

        return TrainConfig.for_task(
            self.task_combo.currentText(),
            plane=self.plane_combo.currentText(),
            norm=self.norm_combo.currentText(),
            k=self.k_spin.value(),
            epochs=self.epochs_spin.value(),
            lr=self.lr_spin.value(),
            seed=self.seed_spin.value(),
            val_fraction=self.val_fraction_spin.value(),
            device=self.device_combo.currentText(),
        )

    def _set_settings_enabled(self, enabled: bool) -> None:
        for control in (
            self.folder_edit,
            self.browse_button,
            self.task_combo,
            self.plane_combo,
            self.valid_split_check,
            self.val_fraction_spin,
            self.k_spin,
            self.norm_combo,
            self.epochs_spin,
            self.lr_spin,
            self.seed_spin,
            self.device_combo,
        ):
            control.setEnabled(enabled)
        if enabled:
            self.valid_split_check.setEnabled(self.layout_name == "mrnet")
            self._update_fraction_enabled()

    # ----------------------------------------------------------------- running
    @property
    def running(self) -> bool:
        """A run is in progress."""
        return self.worker is not None

    def _start_or_stop(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        """Start training in a worker thread; False (and a message) if the settings are unusable."""
        from napari_elnet.training.session import training_session

        folder = self.folder_edit.text()
        if folder != self._detected and not self.set_data_folder(folder):
            return False
        if self.layout_name is None:
            self.status_label.setText("<b>Choose a usable data folder first.</b>")
            return False
        try:
            config = self.config()
        except ElnetError as exc:
            self.status_label.setText(f"<b>Settings:</b> {exc}")
            return False
        self._runs += 1
        out = self.workdir / f"{config.task}_{config.plane}_run{self._runs}.pt"
        self._run_data = Path(folder)
        self._cancel.clear()
        valid_split = self.valid_split_check.isEnabled() and self.valid_split_check.isChecked()
        session = partial(
            training_session,
            config,
            self._run_data,
            out,
            valid_split=valid_split,
            cancel=self._cancel,
        )
        self._reset_results(config.epochs)
        self._set_settings_enabled(False)
        self.start_button.setText("Stop")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("opening data set...")
        self.status_label.setText("")
        self.worker = start_worker(
            session,
            yielded=self._on_yielded,
            returned=self._on_returned,
            errored=self._on_error,
            finished=self._on_finished,
        )
        return True

    def stop(self) -> None:
        """Stop the run at its next step; the best checkpoint so far stays usable."""
        if self.running:
            self._cancel.set()
            self.start_button.setEnabled(False)
            self.progress.setFormat("stopping...")

    def _reset_results(self, epochs: int) -> None:
        self.outcome = None
        self._train_started = None
        self._last_status = 0.0
        self.curve.clear(epochs)
        for col in range(len(METRIC_COLUMNS)):
            self.metrics_table.setItem(0, col, QTableWidgetItem(""))
        self.model_label.setText("training...")
        self._set_result_controls_enabled(False)

    def _on_yielded(self, item: str | TrainProgress) -> None:
        if isinstance(item, str):
            self.status_label.setText(item)
        else:
            self._on_progress(item)

    def _on_progress(self, progress: TrainProgress) -> None:
        from napari_elnet.training.session import eta_seconds

        if progress.phase == "train":
            if self._train_started is None:
                self._train_started = progress.elapsed
            done = progress.step / max(progress.steps, 1)
            self.curve.add_loss(progress.epoch, done, progress.loss)
        if progress.metrics:
            self.curve.add_auc(int(progress.metrics["epoch"]), progress.metrics["roc_auc"])
        self.curve.set_best(progress.best_epoch)
        now = time.monotonic()
        if now - self._last_status < STATUS_INTERVAL and progress.step != progress.steps:
            return
        self._last_status = now
        self.progress.setRange(0, max(progress.steps, 1))
        self.progress.setValue(progress.step)
        where = (
            "preparing"
            if progress.phase == "prepare"
            else f"epoch {progress.epoch}/{progress.epochs}"
        )
        phase = "" if progress.phase == "prepare" else f" {progress.phase}"
        self.progress.setFormat(f"{where}{phase} {progress.step}/{progress.steps}")
        first = [where]
        if not math.isnan(progress.loss):
            first.append(f"loss {progress.loss:.4f}")
        if progress.metrics:
            first.append(f"last val AUC {_number(progress.metrics.get('roc_auc'))}")
        second = [
            f"{progress.volumes_per_s:.1f} volumes/s",
            f"elapsed {clock(progress.elapsed)}",
            f"ETA {clock(eta_seconds(progress, self._train_started))}",
        ]
        self.status_label.setText(" | ".join(first) + "\n" + " | ".join(second))

    def _on_returned(self, outcome: TrainingOutcome) -> None:
        self.outcome = outcome
        for record in outcome.history:
            if "epoch" in record and "roc_auc" in record:
                self.curve.add_auc(int(record["epoch"]), record["roc_auc"])
        self.curve.set_best(outcome.best_epoch)
        self._fill_metrics(outcome)
        has_model = outcome.path is not None and outcome.path.is_file()
        self._set_result_controls_enabled(has_model)
        ending = "failed" if outcome.error else "stopped" if outcome.stopped else "finished"
        if has_model:
            self.model_label.setText(
                f"Training {ending}; best checkpoint: epoch {outcome.best_epoch} "
                f"(unsaved working copy {outcome.path.name}). Save it or use it for triage."
            )
        else:
            self.model_label.setText(f"Training {ending} before the first validation: no model.")
        self.progress.setFormat(ending)
        self.progress.setValue(self.progress.maximum())
        if outcome.error:
            from napari.utils.notifications import show_error

            self.status_label.setText(f"<b>Training failed:</b> {outcome.error}")
            show_error(f"ELNet training failed: {outcome.error}")
        self.trainingFinished.emit(outcome)

    def _fill_metrics(self, outcome: TrainingOutcome) -> None:
        from napari_elnet.training.metrics import METRIC_NAMES

        cells = [str(outcome.best_epoch) if outcome.best_epoch else "-"]
        cells += [
            _number(outcome.metrics.get(key)) if outcome.metrics else "-" for key in METRIC_NAMES
        ]
        for col, text in enumerate(cells):
            self.metrics_table.setItem(0, col, QTableWidgetItem(text))

    def _on_error(self, exc: Exception) -> None:
        """An unexpected error (a bug): napari's worker already shows it with its traceback."""
        self.model_label.setText("no model")
        self.progress.setFormat("failed")
        self.status_label.setText(f"<b>Training failed:</b> {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self.start_button.setText("Start")
        self.start_button.setEnabled(True)
        self._set_settings_enabled(True)

    # ----------------------------------------------------------------- the model
    @property
    def model_path(self) -> Path | None:
        """The best checkpoint of the last run (working copy), None if there is none."""
        if self.outcome is None or self.outcome.path is None or not self.outcome.path.is_file():
            return None
        return self.outcome.path

    def _set_result_controls_enabled(self, enabled: bool) -> None:
        self.save_button.setEnabled(enabled)
        self.use_button.setEnabled(enabled)

    def save_model_as(self, path: str | Path) -> Path | None:
        """Copy the best checkpoint to ``path``; refuses a path inside the data folder (None)."""
        from napari.utils.notifications import show_error, show_info

        from napari_elnet.common.outputs import ensure_outside_inputs

        source = self.model_path
        if source is None:
            show_error("no trained model to save")
            return None
        inputs = [self._run_data] if self._run_data is not None else []
        try:
            target = ensure_outside_inputs(path, inputs)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except (ElnetError, OSError) as exc:
            self.model_label.setText(f"<b>Not saved:</b> {exc}")
            show_error(f"model not saved: {exc}")
            return None
        self.model_label.setText(f"Model saved to {target}")
        show_info(f"ELNet model saved to {target}")
        return target

    def _choose_save_path(self) -> None:
        stem = self.model_path.stem.rsplit("_run", 1)[0] if self.model_path else "model"
        suggestion = f"elnet_{stem}.pt"
        path, _ = QFileDialog.getSaveFileName(
            self, "Save ELNet model as", str(Path.home() / suggestion), "ELNet models (*.pt)"
        )
        if path:
            self.save_model_as(path if path.endswith(".pt") else f"{path}.pt")

    def use_for_triage(self) -> QWidget | None:
        """Open (or find) the "ELNet triage" widget and give it the best checkpoint for its task."""
        path = self.model_path
        if path is None:
            return None
        dock, triage = self.viewer.window.add_plugin_dock_widget("napari-elnet", "ELNet triage")
        dock.show()
        dock.raise_()
        triage.use_model_file(str(path))
        return triage

    # ----------------------------------------------------------------- teardown
    def closeEvent(self, event: Any) -> None:
        """Stop a running training when the widget closes."""
        self._cancel.set()
        if self.worker is not None:
            self.worker.quit()
        super().closeEvent(event)
