"""A spin box for small positive numbers (learning rates), shown as ``1e-05`` rather than ``0.000010``."""

from __future__ import annotations

import math

from qtpy.QtGui import QValidator
from qtpy.QtWidgets import QDoubleSpinBox

DECIMALS = 12
"""Decimals kept internally (QDoubleSpinBox rounds values to its decimals)."""


class ScientificSpinBox(QDoubleSpinBox):
    """A positive number in compact notation; each arrow step doubles or halves it."""

    def __init__(self, minimum: float, maximum: float) -> None:
        super().__init__()
        self.setDecimals(DECIMALS)
        self.setRange(minimum, maximum)

    def textFromValue(self, value: float) -> str:
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        try:
            value = float(text)
        except ValueError:  # "1e-" on the way to "1e-5"
            return QValidator.State.Intermediate, text, pos
        if math.isfinite(value) and self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * 2.0**steps)
