"""Device choice."""

from __future__ import annotations

import pytest
import torch

from napari_elnet.common.device import resolve_device
from napari_elnet.common.errors import ConfigurationError


def test_auto_prefers_cuda_then_mps_then_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else None
    if expected is None:
        mps = getattr(torch.backends, "mps", None)
        expected = "mps" if mps and mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_cpu_always_available() -> None:
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_name_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="'cuda' is not available"):
        resolve_device("cuda")
