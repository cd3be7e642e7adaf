"""A small bar chart of the slice relevance profile; clicking a bar selects that slice."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, QRectF, QSize, Qt, Signal
from qtpy.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

BAR_COLOR = QColor(230, 120, 40)
CURRENT_COLOR = QColor(250, 220, 60)
TOP_OUTLINE = QColor(255, 255, 255)
HEIGHT = 72
"""Height of the chart (pixels)."""


class RelevancePlot(QWidget):
    """Bars r(s) for every slice s; the current slice is highlighted, a click emits its index."""

    sliceClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._relevance = np.zeros(0)
        self._current: int | None = None
        self.setMinimumSize(120, HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Slice relevance (FullGrad): click a bar to show that slice")

    def sizeHint(self) -> QSize:
        """Wide as the dock allows, :data:`HEIGHT` pixels tall."""
        return QSize(240, HEIGHT)

    def set_profile(self, relevance: np.ndarray | None, current: int | None = None) -> None:
        """Show a new profile (None clears the plot)."""
        self._relevance = np.zeros(0) if relevance is None else np.asarray(relevance, float)
        self._current = current
        self.update()

    def set_current(self, index: int | None) -> None:
        """Highlight slice ``index``."""
        if index != self._current:
            self._current = index
            self.update()

    def slice_at(self, x: float) -> int | None:
        """Slice index under horizontal widget position ``x``."""
        n = self._relevance.size
        if n == 0 or self.width() <= 0:
            return None
        return int(np.clip(x / self.width() * n, 0, n - 1))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.slice_at(event.position().x())
        if index is not None:
            self.sliceClicked.emit(index)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 34))
        n = self._relevance.size
        peak = float(self._relevance.max()) if n else 0.0
        if n == 0 or peak <= 0:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no relevance profile yet")
            return
        width, height = self.width() / n, self.height() - 4
        top = int(np.argmax(self._relevance))
        for index, value in enumerate(self._relevance):
            bar = QRectF(
                index * width + 1,
                2 + height * (1 - value / peak),
                max(width - 2, 1),
                height * value / peak,
            )
            painter.fillRect(bar, CURRENT_COLOR if index == self._current else BAR_COLOR)
            if index == top:
                painter.setPen(QPen(TOP_OUTLINE, 1))
                painter.drawRect(bar)
        if self._current is not None and 0 <= self._current < n:
            painter.setPen(QPen(CURRENT_COLOR, 1, Qt.PenStyle.DashLine))
            x = (self._current + 0.5) * width
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
