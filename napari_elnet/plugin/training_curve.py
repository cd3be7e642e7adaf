"""A small live chart of a training run: training loss (left axis) and validation ROC-AUC (right).

Drawn with QPainter only (no plotting library). The x axis is in epochs: a loss point at
``epoch`` is that epoch's mean training loss, an AUC point its validation ROC-AUC. While an epoch
runs, a dashed segment leads to its running mean so far at ``epoch - 1 + step / steps``.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

BACKGROUND = QColor(30, 30, 34)
AXIS_COLOR = QColor(150, 150, 150)
LOSS_COLOR = QColor(90, 170, 250)
AUC_COLOR = QColor(240, 140, 50)
BEST_COLOR = QColor(120, 220, 120)


class TrainingCurve(QWidget):
    """Training loss and validation ROC-AUC per epoch (two y axes), the running epoch, a legend."""

    MARGIN_LEFT = 44
    MARGIN_RIGHT = 40
    MARGIN_TOP = 22
    MARGIN_BOTTOM = 20

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loss: dict[int, float] = {}
        self._live: tuple[float, float] | None = None
        self._auc: dict[int, float] = {}
        self._epochs = 1
        self._best: int | None = None
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Training loss (left axis) and validation ROC-AUC (right axis) per epoch")

    # ----------------------------------------------------------------- data
    @property
    def loss_points(self) -> list[tuple[float, float]]:
        """(epoch, mean loss) of finished epochs, then the running epoch's point if any."""
        points = [(float(epoch), loss) for epoch, loss in sorted(self._loss.items())]
        return points + ([self._live] if self._live is not None else [])

    @property
    def auc_points(self) -> list[tuple[int, float]]:
        """(epoch, validation ROC-AUC) points shown, in epoch order."""
        return sorted(self._auc.items())

    def clear(self, epochs: int = 1) -> None:
        """Forget all points; the x axis spans ``epochs``."""
        self._loss.clear()
        self._live = None
        self._auc.clear()
        self._epochs = max(int(epochs), 1)
        self._best = None
        self.update()

    def add_loss(self, epoch: int, done: float, loss: float) -> None:
        """Mean training loss of ``epoch`` after a share ``done`` (0..1] of its steps (nan ignored)."""
        if math.isnan(loss):
            return
        if done >= 1.0:
            self._loss[int(epoch)] = float(loss)
            self._live = None
        else:
            self._live = (epoch - 1 + done, float(loss))
        self.update()

    def add_auc(self, epoch: int, auc: float) -> None:
        """Set the validation ROC-AUC of ``epoch`` (nan is drawn as a gap)."""
        self._auc[int(epoch)] = float(auc)
        self.update()

    def set_best(self, epoch: int | None) -> None:
        """Mark the epoch of the best checkpoint with a dashed line."""
        if epoch != self._best:
            self._best = epoch
            self.update()

    # ----------------------------------------------------------------- drawing
    def _plot_rect(self) -> QRectF:
        return QRectF(
            self.MARGIN_LEFT,
            self.MARGIN_TOP,
            max(self.width() - self.MARGIN_LEFT - self.MARGIN_RIGHT, 1),
            max(self.height() - self.MARGIN_TOP - self.MARGIN_BOTTOM, 1),
        )

    def _loss_top(self) -> float:
        """Upper end of the loss axis: the largest epoch loss, at least ln 2 (chance level).

        The running epoch's mean only sets the scale before the first epoch ends (it is noisy
        after few steps, and would make the axis jump at every epoch start).
        """
        losses = list(self._loss.values())
        if not losses and self._live is not None:
            losses.append(self._live[1])
        return max([math.log(2.0), *losses]) * 1.05

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), BACKGROUND)
        rect = self._plot_rect()
        loss_top = self._loss_top()
        self._draw_axes(painter, rect, loss_top)
        self._draw_legend(painter)
        if not self._loss and self._live is None and not self._auc:
            painter.setPen(AXIS_COLOR)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no training yet")
            return

        def point(x: float, y: float, top: float) -> QPointF:
            return QPointF(
                rect.left() + rect.width() * x / self._epochs,
                rect.bottom() - rect.height() * y / top,
            )

        if self._best is not None:
            painter.setPen(QPen(BEST_COLOR, 1, Qt.PenStyle.DashLine))
            x = point(self._best, 0, 1).x()
            painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        finished = [point(epoch, loss, loss_top) for epoch, loss in sorted(self._loss.items())]
        painter.setPen(QPen(LOSS_COLOR, 1.5))
        painter.setBrush(LOSS_COLOR)
        self._draw_segment(painter, finished)
        for dot in finished:
            painter.drawEllipse(dot, 2.5, 2.5)
        if self._live is not None:
            x, loss = self._live
            start = finished[-1] if finished else point(x, loss, loss_top)
            painter.setPen(QPen(LOSS_COLOR, 1.5, Qt.PenStyle.DashLine))
            painter.drawLine(start, point(x, min(loss, loss_top), loss_top))
        painter.setPen(QPen(AUC_COLOR, 1.5))
        painter.setBrush(AUC_COLOR)
        segment: list[QPointF] = []
        for epoch, auc in self.auc_points:
            if math.isnan(auc):
                self._draw_segment(painter, segment)
                segment = []
                continue
            segment.append(point(epoch, auc, 1.0))
            painter.drawEllipse(segment[-1], 2.5, 2.5)
        self._draw_segment(painter, segment)

    @staticmethod
    def _draw_segment(painter: QPainter, points: list[QPointF]) -> None:
        if len(points) > 1:
            painter.drawPolyline(QPolygonF(points))

    def _draw_axes(self, painter: QPainter, rect: QRectF, loss_top: float) -> None:
        painter.setPen(QPen(AXIS_COLOR, 1))
        painter.drawRect(rect)
        metrics = painter.fontMetrics()
        height = metrics.height()
        for fraction in (0.0, 0.5, 1.0):
            y = rect.bottom() - rect.height() * fraction
            left = QRectF(0, y - height / 2, self.MARGIN_LEFT - 4, height)
            right = QRectF(rect.right() + 4, y - height / 2, self.MARGIN_RIGHT - 4, height)
            painter.setPen(LOSS_COLOR)
            painter.drawText(left, Qt.AlignmentFlag.AlignRight, f"{loss_top * fraction:.2f}")
            painter.setPen(AUC_COLOR)
            painter.drawText(right, Qt.AlignmentFlag.AlignLeft, f"{fraction:.1f}")
        painter.setPen(AXIS_COLOR)
        below = QRectF(rect.left(), rect.bottom() + 2, rect.width(), height)
        painter.drawText(below, Qt.AlignmentFlag.AlignLeft, "0")
        painter.drawText(below, Qt.AlignmentFlag.AlignHCenter, "epoch")
        painter.drawText(below, Qt.AlignmentFlag.AlignRight, str(self._epochs))

    def _draw_legend(self, painter: QPainter) -> None:
        x = float(self.MARGIN_LEFT)
        y = self.MARGIN_TOP / 2
        entries = [("train loss", LOSS_COLOR), ("val ROC-AUC", AUC_COLOR)]
        if self._best is not None:
            entries.append(("best", BEST_COLOR))
        metrics = painter.fontMetrics()
        for text, color in entries:
            painter.setPen(QPen(color, 2))
            painter.drawLine(QPointF(x, y), QPointF(x + 14, y))
            painter.setPen(AXIS_COLOR)
            painter.drawText(QPointF(x + 18, y + metrics.ascent() / 2 - 1), text)
            x += 18 + metrics.horizontalAdvance(text) + 12
