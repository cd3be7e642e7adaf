"""The "DICOM node" section of the worklist widget: receive studies, triage them as they arrive.

Start listens as a DICOM node (:class:`napari_elnet.node.service.Node`) with the worklist's models and
device; the receiver, the stability watcher and the triage worker run on their own threads, and
their events reach this panel through a Qt signal (queued to the GUI thread). Incoming studies are
rows here (receiving -> complete -> triaged); a triaged study also becomes a row of the worklist
table, so a double-click there opens it with its heatmaps. The remote PACS box searches with C-FIND
and retrieves the selected studies with C-GET into the same store. Closing the widget stops the node.
"""

from __future__ import annotations

import contextlib
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_elnet.plugin.workers import start_worker

if TYPE_CHECKING:
    from napari_elnet.node.events import NodeEvent
    from napari_elnet.node.pull import FoundStudy
    from napari_elnet.node.service import Node
    from napari_elnet.plugin.worklist_widget import WorklistWidget
    from napari_elnet.worklist import StudyRef

DEFAULT_AE_TITLE = (
    "ELNET"  # napari_elnet.node.config defaults, repeated to keep pynetdicom unloaded
)
DEFAULT_PORT = 11112
DEFAULT_STABLE_SECONDS = 5.0
STATE_COLUMN = 2
STATE_TEXT = {
    "receiving": "receiving",
    "complete": "complete",
    "triaged": "triaged",
    "skipped": "already triaged",
}


class _NodeHolder:
    """The running node, kept apart from the widget so that the widget's ``destroyed`` can stop it."""

    def __init__(self) -> None:
        self.node: Node | None = None

    def stop(self, *_: object) -> None:
        node, self.node = self.node, None
        if node is not None:
            node.stop(wait=False)


class NodePanel(QGroupBox):
    """Start/stop a DICOM node and search/retrieve from a PACS, feeding the worklist.

    Args:
        worklist: The worklist widget whose models, device and table the node uses.
        store_dir: Folder of received studies (default: ``node-store`` in the user's data folder).
    """

    nodeEvent = Signal(object, object)
    """(NodeEvent, StudyRef | None) from the node's threads, delivered on the GUI thread."""
    studyTriaged = Signal(object)
    """Emitted with each StudyResult once its row is in the worklist."""

    def __init__(self, worklist: WorklistWidget, store_dir: str | Path | None = None) -> None:
        super().__init__("DICOM node")
        self.worklist = worklist
        self._holder = _NodeHolder()
        self.destroyed.connect(self._holder.stop)
        self.search_worker: Any = None
        self.retrieve_worker: Any = None
        self.found: list[FoundStudy] = []
        self._rows: dict[str, int] = {}
        self.nodeEvent.connect(self._on_event)
        self._build(store_dir)

    @property
    def node(self) -> Node | None:
        """The running node, None when stopped."""
        return self._holder.node

    # ----------------------------------------------------------------- layout
    def _build(self, store_dir: str | Path | None) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        self.ae_edit = QLineEdit(DEFAULT_AE_TITLE)
        self.ae_edit.setMaxLength(16)
        self.ae_edit.setToolTip("our AE title: the called AE title the scanner or PACS sends to")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(DEFAULT_PORT)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self._start_or_stop)
        row.addWidget(self.ae_edit)
        row.addWidget(QLabel("port"))
        row.addWidget(self.port_spin)
        row.addWidget(self.start_button)
        form.addRow("AE title", row)
        store_row = QHBoxLayout()
        self.store_edit = QLineEdit(str(store_dir or _default_store()))
        self.store_edit.setToolTip("received studies are stored here, one folder per study")
        self.stable_spin = QDoubleSpinBox()
        self.stable_spin.setRange(0.0, 600.0)
        self.stable_spin.setValue(DEFAULT_STABLE_SECONDS)
        self.stable_spin.setSuffix(" s")
        self.stable_spin.setToolTip("a study is complete this long after its last image")
        store_row.addWidget(self.store_edit, stretch=1)
        store_row.addWidget(QLabel("complete after"))
        store_row.addWidget(self.stable_spin)
        form.addRow("Store", store_row)
        self.send_edit = QLineEdit()
        self.send_edit.setPlaceholderText("AET@HOST:PORT (empty: results stay in the store)")
        self.send_edit.setToolTip(
            "C-STORE each study's DICOM results (report, heatmaps, key images) to this AE, "
            "e.g. the PACS the study came from"
        )
        form.addRow("Results to", self.send_edit)
        layout.addLayout(form)
        self.status = QLabel("stopped (listens on 127.0.0.1 only)")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.incoming = _table(["study", "images", "state"])
        self.incoming.setMaximumHeight(120)
        layout.addWidget(self.incoming)
        layout.addWidget(self._build_remote_box())

    def _build_remote_box(self) -> QGroupBox:
        box = QGroupBox("Remote PACS")
        layout = QVBoxLayout(box)
        form = QFormLayout()
        self.remote_edit = QLineEdit()
        self.remote_edit.setPlaceholderText("AET@HOST:PORT, e.g. PACS@10.0.0.5:104")
        form.addRow("PACS", self.remote_edit)
        query = QHBoxLayout()
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("patient ID")
        self.accession_edit = QLineEdit()
        self.accession_edit.setPlaceholderText("accession")
        self.date_edit = QLineEdit()
        self.date_edit.setPlaceholderText("date YYYYMMDD[-YYYYMMDD]")
        self.date_edit.setToolTip("StudyDate, or a range YYYYMMDD-YYYYMMDD")
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        for widget in (self.patient_edit, self.accession_edit, self.date_edit, self.search_button):
            query.addWidget(widget)
        form.addRow("Find", query)
        layout.addLayout(form)
        self.retrieve_button = QPushButton("Retrieve selected")
        self.retrieve_button.setEnabled(False)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.found_table = _table(["accession", "date", "modalities", "images"])
        self.found_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.found_table.setMaximumHeight(100)
        self.found_table.itemSelectionChanged.connect(self._update_retrieve)
        layout.addWidget(self.found_table)
        row = QHBoxLayout()
        self.remote_status = QLabel("")
        self.remote_status.setWordWrap(True)
        row.addWidget(self.remote_status, stretch=1)
        row.addWidget(self.retrieve_button)
        layout.addLayout(row)
        return box

    # ----------------------------------------------------------------- node
    def _start_or_stop(self) -> None:
        if self.node is None:
            self.start_node()
        else:
            self.stop_node()

    def _configs(self) -> tuple[Any, Any]:
        """The NodeConfig and PipelineConfig from the form and the worklist's device."""
        from napari_elnet.node.config import NodeConfig, Peer
        from napari_elnet.node.pipeline import PipelineConfig

        store = Path(self.store_edit.text().strip()).expanduser()
        config = NodeConfig(
            store=store,
            ae_title=self.ae_edit.text(),
            port=self.port_spin.value(),
            stable_seconds=self.stable_spin.value(),
        )
        pipeline = PipelineConfig(
            report=store / "worklist.csv",
            device=self.worklist.device_combo.currentText().split(" ")[0],
            send_to=Peer.parse(send_to) if (send_to := self.send_edit.text().strip()) else None,
            calling_ae=config.ae_title,
        )
        return config, pipeline

    def start_node(self) -> bool:
        """Listen with the worklist's models; returns False (reason in the status) when it cannot."""
        from napari_elnet.common.errors import ElnetError
        from napari_elnet.node.service import Node

        if not self.worklist.models:
            self.status.setText("no models yet: wait for the models to load, or pick model files")
            return False
        try:
            config, pipeline = self._configs()
            node = Node(config, pipeline, self.worklist.models, self._from_node)
            node.start()
        except (ElnetError, OSError) as exc:
            self.status.setText(f"cannot start: {exc}")
            return False
        self._holder.node = node
        threading.Thread(
            target=self._show_reported, args=(node.store, pipeline.report), daemon=True
        ).start()
        self.status.setText(
            f"listening as {config.ae_title} on {config.host}:{node.port}; store {node.store.root}"
            + (f"; results to {pipeline.send_to}" if pipeline.send_to else "")
        )
        self.start_button.setText("Stop")
        for control in self._node_controls():
            control.setEnabled(False)
        return True

    def stop_node(self) -> None:
        """Stop listening; the study being triaged finishes in the background."""
        self._holder.stop()
        self.status.setText("stopped")
        self.start_button.setText("Start")
        for control in self._node_controls():
            control.setEnabled(True)

    def _node_controls(self) -> tuple[QWidget, ...]:
        """The settings fixed while the node runs."""
        return (self.ae_edit, self.port_spin, self.store_edit, self.stable_spin, self.send_edit)

    def _from_node(self, event: NodeEvent) -> None:
        """Node listener (network, watcher or worker thread): hand the event to the GUI thread."""
        ref = None
        node = self.node
        if event.kind == "triaged" and node is not None:
            ref = _ref_or_none(node, event.study_uid)
        with contextlib.suppress(RuntimeError):  # the panel was deleted while a study finished
            self.nodeEvent.emit(event, ref)

    def _show_reported(self, store: Any, report: Path) -> None:
        """Background thread: the studies triaged by earlier runs, as rows here and in the worklist."""
        from napari_elnet.plugin.node_jobs import reported_studies

        try:
            found = reported_studies(store, report)
        except Exception as exc:  # an unreadable report: say so, the node still runs
            found = []
            with contextlib.suppress(RuntimeError):
                self.nodeEvent.emit(_problem(f"report {report} not shown: {exc}"), None)
        for event, ref in found:
            with contextlib.suppress(RuntimeError):
                self.nodeEvent.emit(event, ref)

    def _on_event(self, event: NodeEvent, ref: StudyRef | None) -> None:
        """GUI thread: update the incoming row; add triaged studies to the worklist."""
        if event.kind == "refused":
            self.status.setText(f"refused an instance: {event.message}")
            return
        if not event.study_uid:
            if event.message:
                self.status.setText(event.message)
            return
        row = self._row(event)
        if event.kind in STATE_TEXT:
            self.incoming.item(row, STATE_COLUMN).setText(STATE_TEXT[event.kind])
        if event.instances:
            self.incoming.item(row, 1).setText(str(event.instances))
        if event.kind == "sent":
            self.incoming.item(row, STATE_COLUMN).setText("triaged, sent")
        if event.kind == "error":
            cell = self.incoming.item(row, STATE_COLUMN)
            cell.setText(f"{cell.text()}; error")
            cell.setToolTip(event.message)
        if event.kind == "triaged" and event.result is not None:
            self.incoming.item(row, 0).setText(event.result.study)
            if event.late:
                self.incoming.item(row, STATE_COLUMN).setText("triaged again")
                self.incoming.item(row, STATE_COLUMN).setToolTip(event.message)
            self._add_to_worklist(event, ref)

    def _row(self, event: NodeEvent) -> int:
        row = self._rows.get(event.study_uid)
        if row is None:
            row = self.incoming.rowCount()
            self.incoming.insertRow(row)
            name = QTableWidgetItem(event.study_id.removeprefix("dicom-")[:10])
            name.setToolTip(f"study id {event.study_id}")
            for column, item in enumerate([name, QTableWidgetItem(""), QTableWidgetItem("")]):
                self.incoming.setItem(row, column, item)
            self._rows[event.study_uid] = row
            self.incoming.scrollToBottom()
        return row

    def _add_to_worklist(self, event: NodeEvent, ref: StudyRef | None) -> None:
        result = event.result
        if result is None:
            return
        if ref is not None:
            self.worklist.refs[result.study_id] = ref
        if self.worklist.row_of(result.study_id) is None:
            self.worklist.add_result(result)
        elif event.late:  # triaged again after late instances: the new result replaces the row
            self.worklist.replace_result(result)
        self.studyTriaged.emit(result)

    # ----------------------------------------------------------------- remote PACS
    def search(self) -> None:
        """C-FIND on the remote PACS in a worker; the studies found fill the table."""
        from napari_elnet.node.pull import StudyQuery

        query = StudyQuery(
            patient_id=self.patient_edit.text().strip(),
            study_date=self.date_edit.text().strip(),
            accession=self.accession_edit.text().strip(),
        )
        from napari_elnet.plugin.node_jobs import search_run

        self.search_button.setEnabled(False)
        self.remote_status.setText("searching...")
        self.search_worker = start_worker(
            search_run,
            self.remote_edit.text(),
            query,
            self.ae_edit.text(),
            returned=self._on_found,
            errored=partial(self._on_remote_error, "search"),
            finished=lambda: self.search_button.setEnabled(True),
        )

    def _on_found(self, found: list[FoundStudy]) -> None:
        self.found = list(found)
        self.found_table.setRowCount(0)
        for study in self.found:
            row = self.found_table.rowCount()
            self.found_table.insertRow(row)
            cells = [study.accession or "-", study.study_date or "-", study.modalities or "-"]
            cells.append("-" if study.instances is None else str(study.instances))
            for column, text in enumerate(cells):
                self.found_table.setItem(row, column, QTableWidgetItem(text))
        self.remote_status.setText(
            f"{len(self.found)} stud{'y' if len(self.found) == 1 else 'ies'} found"
        )
        self._update_retrieve()

    def _update_retrieve(self) -> None:
        rows = {i.row() for i in self.found_table.selectedIndexes()}
        self.retrieve_button.setEnabled(bool(rows) and self.retrieve_worker is None)

    def retrieve_selected(self) -> None:
        """C-GET the selected studies into the store and triage them (worker thread)."""
        from napari_elnet.node.config import Peer
        from napari_elnet.node.store import Store
        from napari_elnet.plugin.node_jobs import retrieve_run

        rows = sorted({i.row() for i in self.found_table.selectedIndexes()})
        uids = [self.found[r].study_uid for r in rows]
        if not uids or not self.worklist.models:
            return
        from napari_elnet.common.errors import ElnetError

        node = self.node
        try:
            config, pipeline = self._configs()
            peer = Peer.parse(self.remote_edit.text())
            store = node.store if node is not None else Store(config.store)
        except (ElnetError, OSError) as exc:  # a typo in the form: say so, nothing starts
            self.remote_status.setText(f"cannot retrieve: {exc}")
            return
        self.retrieve_button.setEnabled(False)
        self.remote_status.setText(f"retrieving {len(uids)}...")
        self.retrieve_worker = start_worker(
            retrieve_run, peer, uids, config, store, node, list(self.worklist.models), pipeline,
            yielded=self._on_retrieved_event,
            errored=partial(self._on_remote_error, "retrieve"),
            returned=lambda n: self.remote_status.setText(f"{n} retrieved"),
            finished=self._on_retrieve_finished,
        )  # fmt: skip

    def _on_retrieved_event(self, event: NodeEvent) -> None:
        from napari_elnet.node.store import Store

        ref = None
        if event.kind == "triaged":
            ref = _stored_ref(
                Store(Path(self.store_edit.text().strip()).expanduser()), event.study_uid
            )
        self._on_event(event, ref)

    def _on_retrieve_finished(self) -> None:
        self.retrieve_worker = None
        self._update_retrieve()

    def _on_remote_error(self, what: str, exc: Exception) -> None:
        self.remote_status.setText(f"{what} failed: {exc}")


def _problem(message: str) -> NodeEvent:
    from napari_elnet.node.events import NodeEvent

    return NodeEvent("error", message=message)


def _default_store() -> Path:
    from napari_elnet.worklist.reviewed import default_data_dir

    return default_data_dir() / "node-store"


def _table(labels: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(labels))
    table.setHorizontalHeaderLabels(labels)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    return table


def _stored_ref(store: Any, study_uid: str) -> StudyRef | None:
    from napari_elnet.plugin.node_jobs import study_ref

    try:
        return study_ref(store, study_uid)
    except Exception:  # a study that cannot be listed still shows its row, without opening
        return None


def _ref_or_none(node: Node, study_uid: str) -> StudyRef | None:
    return _stored_ref(node.store, study_uid)


def embed(worklist: WorklistWidget, layout: QVBoxLayout) -> NodePanel:
    """Add the panel to the worklist widget's layout (one line in the worklist widget)."""
    panel = NodePanel(worklist)
    layout.addWidget(panel)
    return panel
