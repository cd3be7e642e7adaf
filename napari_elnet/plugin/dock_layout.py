"""Dock widgets that share a column: content in a vertical scroll area, tables sized to their rows.

napari stacks the dock widgets of one side in a column. When their content is taller than their
share of the column, Qt squeezes the widgets below their minimum sizes and they overlap; inside a
:class:`DockScrollArea` the content keeps its sizes and scrolls instead, and the dock still fits
the window. The scroll area is as wide as the content needs, so nothing scrolls sideways.
"""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import (
    QFrame,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

MIN_VISIBLE_HEIGHT = 220
"""Default smallest height (pixels) of a dock's visible part.

The triage (400), worklist and training docks (220 each) fit one above the other, with their
title bars, in the dock column of a 1000-pixel-high napari window."""


class DockScrollArea(QScrollArea):
    """A vertical scroll area as wide as its content's minimum width, ``min_visible`` pixels tall."""

    def __init__(
        self, content: QWidget, min_visible: int = MIN_VISIBLE_HEIGHT, width: int = 0
    ) -> None:
        super().__init__()
        self.min_visible = min_visible
        self.preferred_width = width
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(content)

    def _bar_width(self) -> int:
        return self.verticalScrollBar().sizeHint().width()

    def minimumSizeHint(self) -> QSize:
        """The content's minimum width (plus the scroll bar), ``min_visible`` tall at most."""
        inner = self.widget().minimumSizeHint()
        height = min(inner.height(), self.min_visible)
        return QSize(inner.width() + self._bar_width(), height)

    def sizeHint(self) -> QSize:
        """The content's preferred size (plus the scroll bar), at least ``width`` wide."""
        inner = self.widget().sizeHint()
        width = max(inner.width() + self._bar_width(), self.preferred_width)
        return QSize(width, inner.height())


def scrolling_layout(
    widget: QWidget, min_visible: int = MIN_VISIBLE_HEIGHT, width: int = 0
) -> QVBoxLayout:
    """Put a :class:`DockScrollArea` into ``widget`` and return the layout of its content.

    Args:
        widget: The dock widget; its scroll area is ``widget.scroll_area``.
        min_visible: Smallest visible height (pixels) of the content.
        width: Preferred width (pixels) of the dock, when wider than what its content asks for.
    """
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    content = QWidget()
    content.setObjectName("dock_content")
    layout = QVBoxLayout(content)
    widget.scroll_area = DockScrollArea(content, min_visible, width)  # type: ignore[attr-defined]
    outer.addWidget(widget.scroll_area)  # type: ignore[attr-defined]
    return layout


class RowsTable(QTableWidget):
    """A table exactly as tall as its header and ``visible_rows`` rows (measured once styled).

    The height follows the style sheet napari applies after construction, so the rows never
    need a vertical scroll bar and the table is never squeezed to nothing by its neighbours.
    """

    def __init__(self, columns: Sequence[str], visible_rows: int) -> None:
        super().__init__(0, len(columns))
        self.visible_rows = visible_rows
        self.setHorizontalHeaderLabels(list(columns))
        self.verticalHeader().setVisible(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def rows_height(self) -> int:
        """Pixels for the header, ``visible_rows`` rows and the frame."""
        header = self.horizontalHeader().sizeHint().height()
        rows = self.visible_rows * self.verticalHeader().defaultSectionSize()
        return header + rows + 2 * self.frameWidth()

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.rows_height())

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self.rows_height())
