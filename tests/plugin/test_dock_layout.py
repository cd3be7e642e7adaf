"""The triage, worklist and training docks together in a 1600 x 1000 napari window (under xvfb).

Every table, chart and button keeps at least its minimum size (the content scrolls instead of
being squeezed), nothing overlaps, the window does not grow past the screen, and the models table
shows task, series and model in full without scrolling sideways.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

pytest.importorskip("napari")
from qtpy.QtCore import QRect
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QProgressBar,
    QSlider,
    QStyle,
    QStyleOptionComboBox,
    QWidget,
)

from napari_elnet.plugin import dock_layout
from napari_elnet.plugin.relevance_plot import RelevancePlot
from napari_elnet.plugin.training_curve import TrainingCurve
from napari_elnet.plugin.triage_widget import MODEL_COLUMNS, SERIES_COLUMN

WIDTH, HEIGHT = 1600, 1000
CONTROLS = (QAbstractButton, QAbstractItemView, QComboBox, QProgressBar, QSlider)
CHARTS = (RelevancePlot, TrainingCurve)


def _docked(make_napari_viewer, qtbot, phantom_dir: Path):
    """A shown 1600 x 1000 viewer with the phantom study, triaged, and the three docks."""
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(WIDTH, HEIGHT)
    viewer.open(phantom_dir, plugin="napari-elnet")
    names = ("ELNet triage", "ELNet worklist", "ELNet training")
    widgets = [viewer.window.add_plugin_dock_widget("napari-elnet", name)[1] for name in names]
    triage = widgets[0]
    for widget in widgets[:2]:
        qtbot.waitUntil(lambda w=widget: "loading" not in w.model_status.text(), timeout=60_000)
    if not triage.models:
        pytest.skip("the default models do not ship with this build")
    with qtbot.waitSignal(triage.triageFinished, timeout=120_000):
        triage.run()
    qtbot.wait(200)  # let the docks settle
    return window, widgets


def _controls(widget: QWidget) -> list[QWidget]:
    """The visible tables, charts, buttons, combo boxes, sliders and progress bars of a dock."""
    content = widget.scroll_area.widget()
    found = [
        child
        for child in content.findChildren(QWidget)
        if isinstance(child, CONTROLS + CHARTS) and child.isVisibleTo(content)
    ]
    # a table's own scroll bars and buttons are parts of the table, not separate controls
    return [c for c in found if not any(p in found for p in _ancestors(c, content))]


def _ancestors(child: QWidget, top: QWidget) -> list[QWidget]:
    parents, parent = [], child.parentWidget()
    while parent is not None and parent is not top:
        parents.append(parent)
        parent = parent.parentWidget()
    return parents


def _rect_in(child: QWidget, top: QWidget) -> QRect:
    return QRect(child.mapTo(top, child.rect().topLeft()), child.size())


def test_three_docks_fit_the_window_and_keep_every_control_usable(
    phantom_dir: Path, make_napari_viewer, qtbot
) -> None:
    window, widgets = _docked(make_napari_viewer, qtbot, phantom_dir)
    triage = widgets[0]
    assert (window.width(), window.height()) == (WIDTH, HEIGHT)  # the window did not grow
    for widget in widgets:
        area = widget.scroll_area
        assert isinstance(area, dock_layout.DockScrollArea)
        assert area.viewport().height() >= area.min_visible - 2 * area.frameWidth()
        assert area.horizontalScrollBar().maximum() == 0  # nothing to scroll sideways
        content = area.widget()
        assert content.width() >= content.minimumSizeHint().width()
        controls = _controls(widget)
        assert len(controls) >= 6
        for control in controls:  # at least the minimum size: never squeezed
            least = control.minimumSizeHint().expandedTo(control.minimumSize())
            assert control.height() >= least.height(), (type(control).__name__, control.height())
            assert control.width() >= least.width(), (type(control).__name__, control.width())
        for a, b in itertools.combinations(controls, 2):  # and never on top of one another
            overlap = _rect_in(a, content).intersected(_rect_in(b, content))
            assert overlap.isEmpty(), (type(a).__name__, type(b).__name__, overlap)
    # the results table shows its rows, the relevance chart sits clear of the buttons
    assert triage.result_table.rowCount() == 3
    assert triage.result_table.height() == triage.result_table.rows_height()
    chart = _rect_in(triage.profile, triage.scroll_area.widget())
    for button in (triage.previous_button, triage.next_button, triage.export_button):
        assert not chart.intersects(_rect_in(button, triage.scroll_area.widget()))
    assert triage.profile.height() >= triage.profile.minimumHeight() > 0
    _check_models_table(triage)


def _check_models_table(triage) -> None:
    """The models table shows task, series and model in full, without scrolling sideways."""
    table = triage.model_table
    assert [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())] == list(
        MODEL_COLUMNS
    )
    assert table.rowCount() == len(triage.models) == 3
    assert table.height() == table.rows_height()  # every model row shows
    assert table.horizontalHeader().length() <= table.viewport().width()
    for row in range(table.rowCount()):  # each series name fits its combo box's text field
        combo = triage.series_combo(row)
        option = QStyleOptionComboBox()
        combo.initStyleOption(option)
        field = combo.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, combo
        )
        text = combo.currentText()
        assert text and combo.fontMetrics().horizontalAdvance(text) <= field.width(), text
    for column in range(table.columnCount()):
        if column != SERIES_COLUMN:  # as wide as Qt says the texts need: nothing elided
            assert table.columnWidth(column) >= table.sizeHintForColumn(column), column
