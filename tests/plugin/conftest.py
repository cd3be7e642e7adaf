"""Fixtures of the GUI tests: a generated phantom study, and the thread the model runs in."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def model_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread of every pass of an ELNet made during the test, in call order.

    Recorded in ``ELNet.slice_features``, the convolutional stages that ``forward`` and the
    FullGrad explanation both run.
    """
    from napari_elnet.nn.elnet import ELNet

    calls: list[threading.Thread] = []
    original = ELNet.slice_features

    def recording(self: ELNet, *args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ELNet, "slice_features", recording)
    return calls


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated three-plane phantom knee (ACL and meniscal tear) written as a DICOM study.

    16 slices of 128 x 128 per plane: the GUI tests run on it on a clean clone, without the real
    scanner data of ``../shared/data``.
    """
    from napari_elnet.phantom import generate_study
    from napari_elnet.phantom.study import PhantomConfig
    from napari_elnet.phantom.writers import write_dicom_study

    config = PhantomConfig(slices=(16, 16), matrix=(128, 128))
    study = generate_study(3, config, labels={"acl": True, "meniscus": True})
    return write_dicom_study(study, tmp_path_factory.mktemp("phantom") / "knee")
