"""Fixtures of the GUI tests: where the model runs."""

from __future__ import annotations

import threading
from typing import Any

import pytest


@pytest.fixture
def forward_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread of every ``ELNet.forward`` call made during the test, in call order."""
    from napari_elnet.nn.elnet import ELNet

    calls: list[threading.Thread] = []
    original = ELNet.forward

    def recording(self: ELNet, *args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ELNet, "forward", recording)
    return calls
