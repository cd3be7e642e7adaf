"""The "ELNet triage" dock widget: choose series and models, run, read results, navigate, export.

The computation is the core generator :func:`napari_elnet.inference.triage.triage_steps`, relayed
by :func:`napari_elnet.common.runs.relay` (Cancel stops it at its next stage) in a napari thread
worker (:func:`napari_elnet.plugin.workers.start_worker`); this widget only arranges calls and layers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_elnet.common.device import DEVICE_NAMES
from napari_elnet.plugin import viewer_actions as actions
from napari_elnet.plugin.dock_layout import RowsTable, scrolling_layout
from napari_elnet.plugin.model_picker import ModelPicker
from napari_elnet.plugin.relevance_plot import RelevancePlot
from napari_elnet.plugin.workers import start_worker

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from napari_elnet.common.runs import RunEnd
    from napari_elnet.inference.triage import TaskResult, TriageProgress
    from napari_elnet.models.model_file import LoadedModel

DEMO_BANNER = "Demonstration weights (synthetic knee phantom): NOT for clinical use."
DEMO_DETAIL = (
    "The shipped models were trained on synthetic knee phantoms, not on patients. "
    "Retrain on your own labelled data (ELNet training) before drawing any conclusion."
)
MODEL_COLUMNS = ("task", "series", "model")
SERIES_COLUMN, MODEL_COLUMN = 1, 2
MODEL_COLUMN_WIDTH = 160
"""Widest the model column gets (pixels); longer file names are elided in the middle."""
RESULT_COLUMNS = ("task", "probability", "decision", "top slice")
TABLE_ROWS = 3
MIN_VISIBLE_HEIGHT = 400
"""Pixels of the widget that stay visible in a shared dock column (banner, models, Run)."""
DOCK_WIDTH = 480
"""Preferred dock width (pixels): the models table shows task, series and model names in full."""
"""Rows the models and results tables show without scrolling: one per task."""


def no_series_item(plane: str) -> str:
    """Series-chooser entry of a model whose plane the study lacks (the model then does not run)."""
    return f"(no {plane} series: not run)"


def _series_chooser() -> QComboBox:
    """A series combo box that shrinks to its column (long series names are elided)."""
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
    combo.currentTextChanged.connect(combo.setToolTip)
    return combo


class TriageWidget(QWidget):
    """Dock widget that triages the open study with one ELNet per task."""

    modelsChanged = Signal()
    triageFinished = Signal(list)

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.models: list[LoadedModel] = []
        self.results: list[TaskResult] = []
        self.result_layers: list[Image | None] = []
        self.worker: Any = None
        self._cancel = threading.Event()
        self.destroyed.connect(lambda *_: self._cancel.set())  # a closed viewer stops the run
        self._order: list[int] = []
        self._build()
        self.viewer.layers.events.inserted.connect(self._refresh_series)
        self.viewer.layers.events.inserted.connect(self._show_saved_results)
        self.viewer.layers.events.removed.connect(self._refresh_series)
        self.viewer.dims.events.current_step.connect(self._on_step)

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        layout = scrolling_layout(self, MIN_VISIBLE_HEIGHT, DOCK_WIDTH)
        self.banner = QLabel(DEMO_BANNER)
        self.banner.setWordWrap(True)
        self.banner.setToolTip(DEMO_DETAIL)
        self.banner.setStyleSheet("background:#7a4b00; color:white; padding:4px; font-weight:bold")
        self.banner.setVisible(False)
        layout.addWidget(self.banner)
        layout.addWidget(self._build_models_box())
        layout.addWidget(self._build_run_box())
        layout.addWidget(self._build_results_box())
        layout.addStretch(1)

    def _build_models_box(self) -> QGroupBox:
        box = QGroupBox("Models and series")
        layout = QVBoxLayout(box)
        self.model_table = RowsTable(MODEL_COLUMNS, TABLE_ROWS)
        header = self.model_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(SERIES_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(MODEL_COLUMN, QHeaderView.ResizeMode.Interactive)
        self.model_table.setWordWrap(False)
        self.model_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.model_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.model_table)
        self.picker = ModelPicker()
        self.picker.modelsChanged.connect(self._on_models_changed)
        layout.addWidget(self.picker)
        return box

    def _build_run_box(self) -> QGroupBox:
        box = QGroupBox("Run")
        layout = QFormLayout(box)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICE_NAMES)
        self.device_combo.currentTextChanged.connect(self._update_device_note)
        layout.addRow("Device", self.device_combo)
        self.device_note = QLabel("")
        self.device_note.setWordWrap(True)
        layout.addRow(self.device_note)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self._run_or_cancel)
        self.run_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        layout.addRow(self.run_button, self.progress)
        return box

    def _build_results_box(self) -> QGroupBox:
        box = QGroupBox("Results")
        layout = QVBoxLayout(box)
        self.result_table = RowsTable(RESULT_COLUMNS, TABLE_ROWS)
        self.result_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.result_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.result_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.result_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.result_table.cellClicked.connect(lambda row, _col: self.show_result(row))
        layout.addWidget(self.result_table)
        layout.addWidget(QLabel("Slice relevance (click a bar to go there)"))
        self.profile = RelevancePlot()
        self.profile.sliceClicked.connect(self.go_to_slice)
        layout.addWidget(self.profile)
        nav = QHBoxLayout()
        self.previous_button = QPushButton("< Previous informative")
        self.previous_button.clicked.connect(lambda: self.step_informative(-1))
        self.next_button = QPushButton("Next informative >")
        self.next_button.clicked.connect(lambda: self.step_informative(+1))
        nav.addWidget(self.previous_button)
        nav.addWidget(self.next_button)
        layout.addLayout(nav)
        opacity = QHBoxLayout()
        opacity.addWidget(QLabel("Heatmap opacity"))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.opacity_slider.valueChanged.connect(self._set_opacity)
        opacity.addWidget(self.opacity_slider)
        layout.addLayout(opacity)
        self.export_button = QPushButton("Export results...")
        self.export_button.clicked.connect(self._choose_export_folder)
        layout.addWidget(self.export_button)
        self.export_dicom_button = QPushButton("Export DICOM results...")
        self.export_dicom_button.setToolTip(
            "Structured report, heatmap parametric maps and key images, for a PACS"
        )
        self.export_dicom_button.clicked.connect(self._choose_dicom_folder)
        layout.addWidget(self.export_dicom_button)
        self._set_result_controls_enabled(False)
        return box

    # ----------------------------------------------------------------- models
    @property
    def model_status(self) -> QLabel:
        """The line saying which models are in use (or that they are loading)."""
        return self.picker.status

    def use_default_models(self) -> None:
        """Forget the model files the user picked and (re)load the shipped defaults."""
        self.picker.use_default_models()

    def use_model_file(self, path: str) -> None:
        """Load a model file and use it for its task (replacing the model of that task)."""
        self.picker.use_model_file(path)

    def _on_models_changed(self) -> None:
        self.set_models(self.picker.models())
        self._update_device_note()

    def set_models(self, models: Sequence[LoadedModel]) -> None:
        """Use these models (one per task) and choose a series for each."""
        self.models = list(models)
        self.banner.setVisible(any(m.info.demo for m in self.models))
        self.model_table.setRowCount(len(self.models))
        for row, loaded in enumerate(self.models):
            info = loaded.info
            task = QTableWidgetItem(info.task)
            task.setToolTip(f"{info.task}: a model of {info.plane} series")
            self.model_table.setItem(row, 0, task)
            self.model_table.setCellWidget(row, SERIES_COLUMN, _series_chooser())
            item = QTableWidgetItem(loaded.path.name if loaded.path else info.summary)
            item.setToolTip(f"{loaded.identity}\n{info.summary}".strip())
            self.model_table.setItem(row, MODEL_COLUMN, item)
        self.model_table.resizeColumnToContents(MODEL_COLUMN)
        width = min(self.model_table.columnWidth(MODEL_COLUMN), MODEL_COLUMN_WIDTH)
        self.model_table.setColumnWidth(MODEL_COLUMN, width)
        self._refresh_series()
        self.modelsChanged.emit()

    def series_combo(self, row: int) -> QComboBox:
        """The series chooser of model row ``row``."""
        return self.model_table.cellWidget(row, SERIES_COLUMN)

    def _refresh_series(self, event: Any = None) -> None:
        from napari_elnet.inference.triage import choose_series

        layers = actions.series_layers(self.viewer)
        series = [actions.series_of_layer(layer) for layer in layers]
        for row, loaded in enumerate(self.models):
            combo = self.series_combo(row)
            previous = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            auto = choose_series(series, loaded.info.plane)
            names = [layer.name for layer in layers]
            if auto is None:  # plane gate: the model does not run unless the user picks a series
                names.insert(0, no_series_item(loaded.info.plane))
            combo.addItems(names)
            if previous in names:
                combo.setCurrentIndex(names.index(previous))
            elif auto is not None:
                combo.setCurrentIndex(auto)
            combo.blockSignals(False)
        self.run_button.setEnabled(bool(layers) and bool(self.models) and self.worker is None)

    def chosen_layers(self) -> list[Image | None]:
        """The series layer chosen for each model, in model order (None: no series of its plane)."""
        layers = {layer.name: layer for layer in actions.series_layers(self.viewer)}
        return [layers.get(self.series_combo(row).currentText()) for row in range(len(self.models))]

    # ----------------------------------------------------------------- device
    def _update_device_note(self) -> None:
        chosen = self.device_combo.currentText()
        device = self.picker.auto_device if chosen == "auto" else chosen
        note = ""
        if device == "cpu":
            note = "Running on the CPU (no GPU in use): expect a few seconds per task."
        self.device_note.setText(note)

    # ----------------------------------------------------------------- running
    def _run_or_cancel(self) -> None:
        if self.worker is not None:
            self.cancel()
        else:
            self.run()

    def run(self) -> None:
        """Start triage in a worker thread (results arrive through ``triageFinished``)."""
        from napari_elnet.common.runs import relay
        from napari_elnet.inference.triage import triage_steps

        chosen = self.chosen_layers()
        picked = [(m, layer) for m, layer in zip(self.models, chosen, strict=True) if layer]
        series = [actions.series_of_layer(layer) for _, layer in picked]
        overrides = {m.info.task: i for i, (m, _) in enumerate(picked)}
        layers = chosen  # None for a model without a series: it is not run (plane gate)
        device = self.device_combo.currentText()
        self._cancel = threading.Event()  # a fresh flag: a cancelled run may still be closing
        steps = triage_steps(series, list(self.models), device, overrides)
        self.run_button.setText("Cancel")
        self.progress.setRange(0, 2 * len(self.models))
        self.progress.setValue(0)
        self.progress.setFormat("starting...")
        self.worker = start_worker(
            relay,
            steps,
            self._cancel,
            yielded=self._on_progress,
            returned=partial(self._on_results, self._cancel, layers),
            errored=self._on_error,
            finished=partial(self._release, self._cancel),
        )

    def cancel(self) -> None:
        """Stop the running triage at its next stage; nothing of it is added to the viewer."""
        if self.worker is not None:
            self.progress.setFormat("cancelling...")
            self._cancel.set()

    def _on_progress(self, progress: TriageProgress) -> None:
        self.progress.setValue(progress.step)
        label = "done" if progress.stage == "done" else f"{progress.task}: {progress.stage}"
        self.progress.setFormat(f"{label} ({progress.step}/{progress.total})")

    def _on_error(self, exc: Exception) -> None:
        from napari.utils.notifications import show_error

        show_error(f"ELNet triage failed: {exc}")

    def _release(self, run: threading.Event) -> None:
        """Back to "Run" once the run of cancel flag ``run`` (the current one) has delivered or stopped."""
        if self._cancel is run and self.worker is not None:
            self.worker = None
            self.run_button.setText("Run")
            self.run_button.setEnabled(bool(self.models))

    def _on_results(
        self, run: threading.Event, layers: list[Image], end: RunEnd[list[TaskResult]]
    ) -> None:
        self._release(run)
        if end.result is None:
            self.progress.setFormat("cancelled")
            return
        self.results = list(end.result)
        self.result_layers = list(layers)
        actions.replace_heatmaps(self.viewer, self.results, layers)
        self._set_opacity(self.opacity_slider.value())
        self._fill_result_table()
        self._set_result_controls_enabled(True)
        self.scroll_area.ensureWidgetVisible(self.profile)  # the results in view, table first
        self.scroll_area.ensureWidgetVisible(self.result_table)
        self.progress.setFormat("done")
        from napari_elnet.worklist.suspicion import most_suspicious

        best = most_suspicious(self.results)  # the worklist's rule: the result that sets the score
        self.show_result(0 if best is None else best)
        self.triageFinished.emit(self.results)

    def _fill_result_table(self) -> None:
        self.result_table.setRowCount(len(self.results))
        for row, result in enumerate(self.results):
            a = result.applicability
            withheld = result.probability is None
            reason = "; ".join(a.reasons)
            cells = (
                result.task + (" (outside plane)" if a.outside_plane else ""),
                f"n/a ({reason})" if withheld else f"{result.probability:.3f}",
                "not applicable"
                if withheld
                else ("positive" if result.decision else "negative")
                + (" (applicability unknown)" if a.applicable is None else ""),
                "-" if result.top_slice is None else str(result.top_slice),
            )
            tooltip = "\n".join((a.details(), *result.warnings))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tooltip)
                if withheld:  # greyed: the model gives no answer on this series
                    item.setForeground(QBrush(QColor("gray")))
                self.result_table.setItem(row, col, item)

    def _set_result_controls_enabled(self, enabled: bool) -> None:
        for control in (
            self.previous_button,
            self.next_button,
            self.export_button,
            self.export_dicom_button,
            self.opacity_slider,
        ):
            control.setEnabled(enabled)

    # ----------------------------------------------------------------- navigation
    @property
    def current_row(self) -> int | None:
        """Row of the result being shown."""
        rows = self.result_table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def show_result(self, row: int) -> None:
        """Show a task's series and heatmap at its most informative slice."""
        if not 0 <= row < len(self.results):
            return
        self.result_table.selectRow(row)
        result = self.results[row]
        layer = self.result_layers[row]
        if layer is None or result.relevance is None or result.top_slice is None:
            self._order = []  # not run (no series of the model's plane): nothing to show
            return
        actions.focus(self.viewer, layer, actions.find_heatmap(self.viewer, result.task))
        self.viewer.layers.selection.active = layer
        if result.applicability.applicable is False:  # not applicable: no slice guidance
            self._order = []
            return
        self._order = [int(i) for i in np.argsort(-result.relevance, kind="stable")]
        self.profile.set_profile(result.relevance, result.top_slice)
        self.go_to_slice(result.top_slice)

    def go_to_slice(self, index: int) -> None:
        """Move the viewer to slice ``index`` of the shown result's series."""
        row = self.current_row
        if row is None or self.result_layers[row] is None:
            return
        actions.go_to_slice(self.viewer, self.result_layers[row], index)
        self.profile.set_current(index)

    def step_informative(self, direction: int) -> None:
        """Go to the next (+1) or previous (-1) slice in order of decreasing relevance."""
        row = self.current_row
        if row is None or not self._order:
            return
        current = actions.data_slice(self.viewer, self.result_layers[row])
        rank = self._order.index(current) if current in self._order else -1
        self.go_to_slice(self._order[(rank + direction) % len(self._order)])

    def _on_step(self, event: Any = None) -> None:
        row = self.current_row
        if row is not None and row < len(self.result_layers) and self.result_layers[row]:
            self.profile.set_current(actions.data_slice(self.viewer, self.result_layers[row]))

    def _set_opacity(self, value: int) -> None:
        for result in self.results:
            layer = actions.find_heatmap(self.viewer, result.task)
            if layer is not None:
                layer.opacity = value / 100

    # ----------------------------------------------------------------- export
    def export(self, folder: str) -> list[str]:
        """Write results (JSON, CSV) and heatmaps (NumPy) into ``folder``; returns the paths."""
        from napari.utils.notifications import show_error, show_info

        from napari_elnet.common.errors import ElnetError
        from napari_elnet.inference.export import export_results

        inputs = {
            str(path.parent)
            for layer in self.result_layers
            if layer is not None
            for path in actions.series_of_layer(layer).files
        }
        try:
            written = export_results(folder, self.results, inputs)
        except (ElnetError, OSError) as exc:
            show_error(f"export failed: {exc}")
            return []
        show_info(f"ELNet results written to {folder}")
        return [str(p) for p in written]

    def _choose_export_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export ELNet results to")
        if folder:
            self.export(folder)

    def export_dicom(self, folder: str) -> list[str]:
        """Write the results as DICOM (report, heatmap maps, key images) into ``folder``."""
        from napari.utils.notifications import show_error, show_info

        from napari_elnet.common.errors import ElnetError
        from napari_elnet.plugin.dicom_results import export_dicom

        try:
            written = export_dicom(
                folder, self.viewer, self.results, self.result_layers, self.models
            )
        except (ElnetError, OSError) as exc:
            show_error(f"DICOM export failed: {exc}")
            return []
        show_info(f"ELNet DICOM results written to {folder}")
        return [str(p) for p in written]

    def _choose_dicom_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export ELNet DICOM results to")
        if folder:
            self.export_dicom(folder)

    def _show_saved_results(self, event: Any = None) -> None:
        """Fill the table from DICOM results the reader opened (a study triaged before)."""
        from napari_elnet.plugin.dicom_results import is_saved_result, saved_results
        from napari_elnet.worklist.suspicion import most_suspicious

        if not is_saved_result(getattr(event, "value", None)):
            return  # only a heatmap layer read from DICOM results, never one of a live run
        results, layers = saved_results(self.viewer)
        if self.worker is not None or not results:
            return
        self.results, self.result_layers = results, layers
        self._set_opacity(self.opacity_slider.value())
        self._fill_result_table()
        self._set_result_controls_enabled(True)
        self.progress.setFormat("read from DICOM results")
        best = most_suspicious(self.results)
        self.show_result(0 if best is None else best)
