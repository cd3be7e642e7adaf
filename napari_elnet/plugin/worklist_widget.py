"""The "ELNet worklist" dock widget: triage every study under a folder, most suspicious first.

Discovery and triage run in a napari thread worker over the core generator
:func:`napari_elnet.worklist.worklist_steps` (see :mod:`napari_elnet.plugin.worklist_jobs`); rows
appear as studies finish, ranked by suspicion. Double-clicking a row loads that study in a worker,
triages it again for its heatmaps and shows it at the top slice of its most suspicious task.
Reviewed marks are remembered in the user's data folder (:mod:`napari_elnet.worklist.reviewed`).
Results stay in memory unless the user exports a report (never into the root folder).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush, QColor, QFont
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_elnet.common.clock import clock
from napari_elnet.common.device import DEVICE_NAMES
from napari_elnet.plugin import viewer_actions as actions
from napari_elnet.plugin.dock_layout import scrolling_layout
from napari_elnet.plugin.layers import study_layers
from napari_elnet.plugin.model_picker import ModelPicker
from napari_elnet.plugin.run_controls import run_controls
from napari_elnet.plugin.workers import start_worker
from napari_elnet.plugin.worklist_jobs import (
    OpenedStudy,
    most_suspicious,
    open_study_run,
    worklist_run,
)

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from napari_elnet.models.model_file import LoadedModel
    from napari_elnet.worklist import Discovery, StudyRef, StudyResult, WorklistProgress
    from napari_elnet.worklist.report import TaskRow
    from napari_elnet.worklist.reviewed import ReviewedMarks

ID_ROLE = Qt.ItemDataRole.UserRole
REVIEWED_LABEL = "\u2713"
"""Header of the reviewed column (a check mark keeps the column narrow in a dock)."""
REVIEWED_COLUMN, NAME_COLUMN, SUSPICION_COLUMN, TASK_COLUMN = 0, 1, 2, 3
"""Table columns (the task probabilities start at TASK_COLUMN, then comes the status)."""
GREEN, ORANGE, RED, GREY = (46, 125, 50), (239, 108, 0), (198, 40, 40), (97, 97, 97)


def task_text(row: TaskRow) -> str:
    """A task's cell: its probability, or ``n/a (reason)`` when withheld (model not applicable)."""
    if row.probability is None:
        return f"n/a ({'; '.join(row.reasons) or 'not applicable'})"
    return f"{row.probability:.3f}" + (" (outside plane)" if row.outside_plane else "")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def suspicion_color(score: float | None) -> tuple[int, int, int]:
    """RGB cue of a suspicion score: green at 0, orange at the decision point 0.5, red at 1.

    Studies without a score (errors) are grey.
    """
    if score is None:
        return GREY
    s = min(max(float(score), 0.0), 1.0)
    low, high, t = (GREEN, ORANGE, s / 0.5) if s < 0.5 else (ORANGE, RED, (s - 0.5) / 0.5)
    return tuple(round(a + (b - a) * t) for a, b in zip(low, high, strict=True))  # type: ignore[return-value]


class WorklistWidget(QWidget):
    """Dock widget that ranks the studies under a folder by suspicion and opens them on demand.

    Args:
        napari_viewer: The viewer studies open in.
        data_dir: Folder of the reviewed marks file (default: the user's data folder, see
            :func:`napari_elnet.worklist.reviewed.default_data_dir`).
    """

    worklistFinished = Signal(list)
    """Emitted with the ranked results when a run ends (completed, stopped or failed)."""
    studyAdded = Signal(object)
    """Emitted with each StudyResult as its row appears."""
    studyOpened = Signal(object)
    """Emitted with the :class:`OpenedStudy` once its layers are in the viewer."""
    modelsChanged = Signal()

    def __init__(self, napari_viewer: napari.Viewer, data_dir: str | Path | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.models: list[LoadedModel] = []
        self.results: list[StudyResult] = []
        """Rows of the table, in table order (ranked)."""
        self.refs: dict[str, StudyRef] = {}
        self.root: Path | None = None
        self.tasks: list[str] = []
        self.worker: Any = None
        self.open_worker: Any = None
        self.opened: OpenedStudy | None = None
        self.opened_layers: list[Image] = []
        self._marks: ReviewedMarks | None = None
        self._filling = False
        self._run_key: tuple[str, tuple[str, ...]] | None = None
        self._cancel = threading.Event()
        self.destroyed.connect(self._cancel.set)  # a closed viewer stops the run
        self._build()

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        layout = scrolling_layout(self)
        layout.addWidget(self._build_input_box())
        layout.addWidget(self._build_run_box())
        layout.addWidget(self._build_table_box(), stretch=1)
        from napari_elnet.plugin.node_panel import embed  # the "DICOM node" section

        self.node_panel = embed(self, layout)

    def _build_input_box(self) -> QGroupBox:
        box = QGroupBox("Studies and models")
        form = QFormLayout(box)
        row = QHBoxLayout()
        self.root_edit = QLineEdit()
        self.root_edit.setPlaceholderText("folder of DICOM studies or MRNet .npy volumes")
        self.root_edit.textChanged.connect(self._update_buttons)
        self.browse_button = QPushButton("Browse...")
        self.browse_button.clicked.connect(self._choose_root)
        row.addWidget(self.root_edit)
        row.addWidget(self.browse_button)
        form.addRow("Root folder", row)
        # The worklist core is imported with the models, off the GUI thread.
        self.picker = ModelPicker(several=True, warm=("napari_elnet.worklist",))
        self.picker.modelsChanged.connect(self._on_models_changed)
        form.addRow("Models", self.picker)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICE_NAMES)
        form.addRow("Device", self.device_combo)
        return box

    def _build_run_box(self) -> QGroupBox:
        controls = run_controls(self._start_or_stop, enabled=False)
        self.start_button, self.progress = controls.button, controls.progress
        self.status = controls.status
        return controls.box

    def _build_table_box(self) -> QGroupBox:
        box = QGroupBox("Worklist")
        layout = QVBoxLayout(box)
        hint = QLabel("Most suspicious first. Double-click a study to open it.")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setMinimumHeight(200)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.table.itemChanged.connect(self._on_item_changed)
        self._set_columns([])
        layout.addWidget(self.table, stretch=1)
        self.export_button = QPushButton("Export report...")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._choose_report)
        layout.addWidget(self.export_button)
        self.export_dicom_button = QPushButton("Export DICOM results...")
        self.export_dicom_button.setToolTip(
            "Each study's structured report, heatmap maps and key images (the models run again: "
            "the worklist keeps no heatmaps)"
        )
        self.export_dicom_button.setEnabled(False)
        self.export_dicom_button.clicked.connect(self._choose_dicom_folder)
        layout.addWidget(self.export_dicom_button)
        return box

    def _set_columns(self, tasks: Sequence[str]) -> None:
        """Columns: reviewed, study, suspicion, one probability per task, status."""
        self.tasks = list(tasks)
        labels = [REVIEWED_LABEL, "study", "suspicion", *self.tasks, "status"]
        self.table.setColumnCount(len(labels))
        self.table.setHorizontalHeaderLabels(labels)
        tips = [
            "reviewed (remembered in your data folder)",
            "accession number (or a hash of the study UID)",
            "suspicion score: 0.5 = a positive decision; green < orange < red",
            *(f"probability of {task} (bold: positive)" for task in self.tasks),
            "ok, or error (hover for the reason)",
        ]
        for column, tip in enumerate(tips):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)

    @property
    def status_column(self) -> int:
        return TASK_COLUMN + len(self.tasks)

    # ----------------------------------------------------------------- models
    @property
    def model_status(self) -> QLabel:
        """The line saying which models are in use (or that they are loading)."""
        return self.picker.status

    def use_default_models(self) -> None:
        """Forget the model files the user picked and (re)load the shipped defaults."""
        self.picker.use_default_models()

    def use_model_file(self, path: str | Path) -> None:
        """Load a model file and use it for its task (replacing the model of that task)."""
        self.picker.use_model_file(path)

    def _on_models_changed(self) -> None:
        self.device_combo.setItemText(0, f"auto ({self.picker.auto_device})")
        self.set_models(self.picker.models())

    def set_models(self, models: Sequence[LoadedModel]) -> None:
        """Use these models (one per task)."""
        self.models = list(models)
        if not self.results:
            self._set_columns([m.info.task for m in self.models])
        self._update_buttons()
        self.modelsChanged.emit()

    # ----------------------------------------------------------------- reviewed marks
    @property
    def marks(self) -> ReviewedMarks:
        """The reviewed marks (read on first use)."""
        if self._marks is None:
            from napari_elnet.worklist.reviewed import ReviewedMarks

            self._marks = ReviewedMarks(self.data_dir)
        return self._marks

    def mark_key(self, study_id: str) -> str:
        """The key of a study in the reviewed marks."""
        from napari_elnet.worklist.reviewed import mark_key

        return mark_key(self.refs[study_id], self.root or Path("."))

    def is_reviewed(self, study_id: str) -> bool:
        """Whether the study carries a reviewed mark."""
        return self.mark_key(study_id) in self.marks

    def set_reviewed(self, study_id: str, reviewed: bool) -> None:
        """Mark (or unmark) a study as reviewed: the checkbox and the remembered mark."""
        row = self.row_of(study_id)
        if row is not None:
            state = Qt.CheckState.Checked if reviewed else Qt.CheckState.Unchecked
            self.table.item(row, REVIEWED_COLUMN).setCheckState(state)  # -> _on_item_changed
        else:
            self._remember(study_id, reviewed)

    def _remember(self, study_id: str, reviewed: bool) -> None:
        from napari.utils.notifications import show_error

        try:
            self.marks.set(self.mark_key(study_id), reviewed)
        except OSError as exc:
            show_error(f"reviewed mark not saved ({self.marks.path}): {exc}")

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != REVIEWED_COLUMN:
            return
        study_id = self.table.item(item.row(), NAME_COLUMN).data(ID_ROLE)
        self._remember(study_id, item.checkState() == Qt.CheckState.Checked)

    # ----------------------------------------------------------------- running
    def _choose_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of studies", self.root_edit.text())
        if folder:
            self.root_edit.setText(folder)

    def _update_buttons(self) -> None:
        running = self.worker is not None
        self.start_button.setEnabled(
            running
            or (self.picker.ready and bool(self.models) and bool(self.root_edit.text().strip()))
        )
        for control in (self.root_edit, self.browse_button):
            control.setEnabled(not running)
        self.picker.set_running(running)
        self.device_combo.setEnabled(not running)
        self.export_button.setEnabled(not running and bool(self.results))
        self.export_dicom_button.setEnabled(not running and bool(self.results))

    def _start_or_stop(self) -> None:
        if self.worker is not None:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        """Triage every study under the root folder in a worker; rows arrive as studies finish.

        Starting again on the same folder with the same models continues a stopped run: the rows
        shown are kept and their studies skipped.
        """
        root = Path(self.root_edit.text().strip()).expanduser()
        if not root.is_dir():
            self.status.setText(f"{root}: not a folder")
            return
        key = (str(root.resolve()), tuple(m.identity for m in self.models))
        if key != self._run_key:
            self._clear()
            self._set_columns([m.info.task for m in self.models])
        self._run_key = key
        self._cancel.clear()
        device = self.device_combo.currentText().split(" ")[0]
        done = {r.study_id for r in self.results}
        self.worker = start_worker(
            worklist_run,
            root,
            list(self.models),
            device,
            done,
            self._cancel,
            yielded=self._on_yielded,
            returned=self._on_returned,
            errored=self._on_error,
            finished=self._on_finished,
            tagged=True,
        )
        self.start_button.setText("Stop")
        self.progress.setRange(0, 0)
        self.progress.setFormat("finding studies...")
        self.status.setText("")
        self._update_buttons()

    def stop(self) -> None:
        """Stop at the next step; the rows done so far stay (Start continues the run)."""
        if self.worker is not None:
            self._cancel.set()
            self.progress.setFormat("stopping...")

    def _clear(self) -> None:
        self.results.clear()
        self.refs.clear()
        self.table.setRowCount(0)

    def _on_yielded(self, worker: Any, item: Discovery | WorklistProgress) -> None:
        from napari_elnet.worklist import Discovery

        if worker is not self.worker:
            return

        if isinstance(item, Discovery):
            self._on_discovery(item)
            return
        if item.result is not None:
            self.add_result(item.result)
        self.progress.setRange(0, max(item.total, 1))
        self.progress.setValue(item.done)
        doing = f"{item.study} {item.task}".strip() if item.stage == "task" else ""
        parts = [f"{item.done}/{item.total} studies", doing, f"ETA {clock(item.eta)}"]
        self.progress.setFormat(" - ".join(p for p in parts if p))

    def _on_discovery(self, discovery: Discovery) -> None:
        self.root = discovery.root
        self.refs.update({s.study_id: s for s in discovery.studies})
        found = f"{len(discovery.studies)} studies found"
        if discovery.problems:
            found += f"; {len(discovery.problems)} file(s) could not be read"
        self.status.setText(found)
        self.status.setToolTip("\n".join(f"{p.path.name}: {p.reason}" for p in discovery.problems))

    def _on_returned(self, worker: Any, report: Any) -> None:
        if worker is not self.worker:
            return
        done = len(self.results)
        if report is None:
            self.progress.setFormat(f"stopped: {done} studies done (Start continues)")
        else:
            errors = sum(r.status == "error" for r in self.results)
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat(f"done: {done} studies in {clock(report.elapsed)}")
            if errors:
                self.status.setText(f"{self.status.text()}; {errors} could not be triaged")

    def _on_error(self, worker: Any, exc: Exception) -> None:
        from napari.utils.notifications import show_error

        if worker is not self.worker:
            return
        self.progress.setFormat("failed")
        self.status.setText(f"worklist failed: {exc}")
        show_error(f"ELNet worklist failed: {exc}")

    def _on_finished(self, worker: Any) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        self.start_button.setText("Start")
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self._update_buttons()
        self.worklistFinished.emit(list(self.results))

    # ----------------------------------------------------------------- table
    def add_result(self, result: StudyResult) -> int:
        """Insert a study's row at its rank; returns the row."""
        from napari_elnet.worklist.report import rank_key

        keys = [rank_key(r) for r in self.results]
        row = bisect.bisect(keys, rank_key(result))
        self.results.insert(row, result)
        self._filling = True
        try:
            self.table.insertRow(row)
            self._fill_row(row, result)
        finally:
            self._filling = False
        self.export_button.setEnabled(self.worker is None)
        self.studyAdded.emit(result)
        return row

    def replace_result(self, result: StudyResult) -> int:
        """Put a study's new result at its rank, removing its old row if it has one; returns the row.

        The study's reviewed mark is cleared: what was reviewed was the old result.
        """
        old = self.row_of(result.study_id)
        if old is not None:
            del self.results[old]
            self.table.removeRow(old)
            if result.study_id in self.refs:  # marks are keyed by the study's reference
                self.set_reviewed(result.study_id, False)
        return self.add_result(result)

    def _fill_row(self, row: int, result: StudyResult) -> None:
        error = result.status != "ok"
        name = QTableWidgetItem(result.study)
        name.setData(ID_ROLE, result.study_id)
        name.setToolTip(f"study id {result.study_id}")
        score = QTableWidgetItem("-" if result.suspicion is None else f"{result.suspicion:.3f}")
        score.setBackground(QBrush(QColor(*suspicion_color(result.suspicion))))
        score.setForeground(QBrush(QColor("white")))
        score.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        by_task = {t.task: t for t in result.tasks}
        task_cells: list[QTableWidgetItem] = []
        for task in self.tasks:
            row_of_task = by_task.get(task)
            item = QTableWidgetItem("" if row_of_task is None else task_text(row_of_task))
            if row_of_task is not None and row_of_task.probability is None:
                item.setToolTip(
                    f"{task}: not applicable ({'; '.join(row_of_task.reasons)}); score "
                    f"{_fmt(row_of_task.applicability_score)} / threshold "
                    f"{_fmt(row_of_task.applicability_threshold)}"
                )
                item.setForeground(QBrush(QColor("gray")))
            elif row_of_task is not None:
                decision = "positive" if row_of_task.decision else "negative"
                item.setToolTip(
                    f"{task}: {decision} (threshold {row_of_task.threshold:.2f}), top slice "
                    f"{row_of_task.top_slice} of {row_of_task.series}"
                    + "".join(f"\n{w}" for w in row_of_task.warnings)
                )
                if row_of_task.decision:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
            task_cells.append(item)
        status = QTableWidgetItem(result.status)
        status.setToolTip(result.reason)
        reviewed = QTableWidgetItem("")
        reviewed.setFlags(
            Qt.ItemFlag.ItemIsUserCheckable
            | Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
        )
        checked = result.study_id in self.refs and self.is_reviewed(result.study_id)
        reviewed.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        cells = [reviewed, name, score, *task_cells, status]
        for column, item in enumerate(cells):
            if error and column != SUSPICION_COLUMN:
                item.setForeground(QBrush(QColor(*GREY)))
            self.table.setItem(row, column, item)

    def row_of(self, study_id: str) -> int | None:
        """The table row of a study, None if it has no row."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, NAME_COLUMN).data(ID_ROLE) == study_id:
                return row
        return None

    def _on_double_click(self, row: int, column: int) -> None:
        if column != REVIEWED_COLUMN:
            self.open_row(row)

    # ----------------------------------------------------------------- opening
    def open_row(self, row: int) -> None:
        """Open the study of a table row in the viewer (see :meth:`open_study`)."""
        item = self.table.item(row, NAME_COLUMN)
        if item is not None:
            self.open_study(item.data(ID_ROLE))

    def open_study(self, study_id: str) -> None:
        """Load and triage one study in a worker, then show it (``studyOpened`` when shown)."""
        ref = self.refs.get(study_id)
        if ref is None or not self.models:
            return
        if self.open_worker is not None:
            self.open_worker.quit()  # the newest double-click wins
        device = self.device_combo.currentText().split(" ")[0]
        self.open_worker = start_worker(
            open_study_run,
            ref,
            list(self.models),
            device,
            yielded=lambda _worker, text: self.status.setText(text),
            returned=self._on_opened,
            errored=partial(self._on_open_error, name=ref.name),
            tagged=True,
        )

    def _on_open_error(self, worker: Any, exc: Exception, name: str) -> None:
        from napari.utils.notifications import show_error

        if worker is self.open_worker:
            self.open_worker = None
        self.status.setText(f"cannot open {name}: {exc}")
        show_error(f"ELNet worklist: cannot open {name}: {exc}")

    def _on_opened(self, worker: Any, opened: OpenedStudy) -> None:
        if worker is not self.open_worker:
            return
        self.open_worker = None
        if opened.warnings:
            from napari.utils.notifications import show_warning

            show_warning(f"ELNet worklist: {opened.ref.name}: " + "; ".join(opened.warnings))
        self._remove_opened_layers()
        layers = [
            self.viewer.add_image(data, **kwargs) for data, kwargs, _ in study_layers(opened.series)
        ]
        used = [None if r.series_index is None else layers[r.series_index] for r in opened.results]
        heatmaps = actions.replace_heatmaps(self.viewer, opened.results, used)
        self.opened_layers = [*layers, *(h for h in heatmaps if h is not None)]
        self.opened = opened
        self.viewer.reset_view()
        best = most_suspicious(opened.results)
        self._mark_opened_row(opened.ref.study_id)
        if opened.results[best].probability is None:  # no model applicable: no heatmap, no slice
            actions.focus(self.viewer, layers[0], None)
            self.status.setText(f"{opened.ref.name}: not assessed (no model applicable)")
            self.studyOpened.emit(opened)
            return
        result = opened.results[best]
        actions.focus(self.viewer, used[best], heatmaps[best])
        self.viewer.layers.selection.active = used[best]
        actions.go_to_slice(self.viewer, used[best], result.top_slice)
        self.status.setText(
            f"{opened.ref.name}: {result.task} p={result.probability:.3f}, "
            f"slice {result.top_slice} of {result.series_name}"
        )
        self.studyOpened.emit(opened)

    def _remove_opened_layers(self) -> None:
        """Remove the layers of the study opened before (layers opened by other means stay)."""
        for layer in self.opened_layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.opened_layers = []

    def _mark_opened_row(self, study_id: str) -> None:
        """The opened study's name in bold, the others plain."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, NAME_COLUMN)
            font = QFont(item.font())
            font.setBold(item.data(ID_ROLE) == study_id)
            item.setFont(font)
            if item.data(ID_ROLE) == study_id:
                self.table.selectRow(row)

    # ----------------------------------------------------------------- export
    def export_report(self, path: str | Path) -> Path | None:
        """Write the ranked report (CSV or JSON by suffix, no patient data) outside the root."""
        from napari.utils.notifications import show_error, show_info

        from napari_elnet.common.errors import ElnetError
        from napari_elnet.common.outputs import ensure_outside_inputs
        from napari_elnet.worklist import write_report

        try:
            if self.root is not None:
                ensure_outside_inputs(path, [self.root])
            written = write_report(path, self.results)
        except (ElnetError, OSError) as exc:
            show_error(f"report not written: {exc}")
            return None
        show_info(f"ELNet worklist report written to {written}")
        return written

    def _choose_report(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export worklist report", "worklist.csv", "CSV (*.csv);;JSON (*.json)"
        )
        if path:
            self.export_report(path)

    def export_dicom(self, folder: str | Path) -> bool:
        """Write each triaged study's DICOM results into ``folder/<study id>/`` in a worker.

        The models run again on each study (the worklist keeps no heatmaps); Stop stops it.
        Returns whether the export started (not inside the root, a study to export).
        """
        from napari.utils.notifications import show_error

        from napari_elnet.common.errors import ElnetError
        from napari_elnet.common.outputs import ensure_outside_inputs
        from napari_elnet.plugin.dicom_results import worklist_dicom_run
        from napari_elnet.plugin.workers import start_worker

        refs = [self.refs[r.study_id] for r in self.results if r.study_id in self.refs]
        refs = [ref for ref in refs if ref.kind == "dicom"]
        if self.worker is not None or self.root is None or not refs:
            return False
        try:
            target = ensure_outside_inputs(folder, [self.root])
        except ElnetError as exc:
            show_error(f"DICOM results not written: {exc}")
            return False
        self._cancel.clear()
        device = self.device_combo.currentText().split(" ")[0]
        self.worker = start_worker(
            worklist_dicom_run,
            self.root,
            refs,
            list(self.models),
            device,
            target,
            self._cancel,
            yielded=lambda worker, text: self.progress.setFormat(text),
            returned=self._on_dicom_written,
            errored=self._on_error,
            finished=self._on_finished,
            tagged=True,
        )
        self.start_button.setText("Stop")
        self.progress.setRange(0, 0)
        self._update_buttons()
        return True

    def _on_dicom_written(self, worker: Any, outcome: tuple[list[Path], list[str]]) -> None:
        written, problems = outcome
        folder = written[0].parent if written else ""
        self.status.setText(
            f"DICOM results of {len(written)} studies written to {folder}"
            + (f"; {len(problems)} not written: {problems[0]}" if problems else "")
        )
        self.progress.setFormat("DICOM results written")

    def _choose_dicom_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export ELNet DICOM results to")
        if folder:
            self.export_dicom(folder)
