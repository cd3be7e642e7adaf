"""The learning-rate spin box: compact notation, exact values, doubling arrows."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
from qtpy.QtGui import QValidator

from napari_elnet.plugin.number_fields import ScientificSpinBox


def test_shows_compact_notation_and_keeps_the_value(qtbot) -> None:
    box = ScientificSpinBox(1e-7, 1.0)
    qtbot.addWidget(box)
    box.setValue(1e-5)
    assert box.text() == "1e-05"
    assert box.value() == pytest.approx(1e-5, rel=1e-9)  # not rounded to the display
    box.setValue(3e-4)
    assert box.text() == "0.0003"


def test_typed_text_is_read_and_checked_against_the_range(qtbot) -> None:
    box = ScientificSpinBox(1e-7, 1.0)
    qtbot.addWidget(box)
    assert box.valueFromText("2.5e-5") == pytest.approx(2.5e-5)
    assert box.validate("2.5e-5", 0)[0] == QValidator.State.Acceptable
    assert box.validate("1e-", 0)[0] == QValidator.State.Intermediate  # still typing
    assert box.validate("5", 0)[0] == QValidator.State.Intermediate  # above the maximum
    box.lineEdit().setText("4e-5")
    box.interpretText()
    assert box.value() == pytest.approx(4e-5)


def test_arrows_double_and_halve(qtbot) -> None:
    box = ScientificSpinBox(1e-7, 1.0)
    qtbot.addWidget(box)
    box.setValue(1e-5)
    box.stepBy(1)
    assert box.value() == pytest.approx(2e-5)
    box.stepBy(-2)
    assert box.value() == pytest.approx(5e-6)
    box.setValue(0.8)
    box.stepBy(1)
    assert box.value() == 1.0  # clamped to the maximum
