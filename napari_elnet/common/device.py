"""Choice of the torch device a model runs on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from napari_elnet.common.errors import ConfigurationError

if TYPE_CHECKING:
    import torch

DeviceName = Literal["auto", "cuda", "mps", "cpu"]
DEVICE_NAMES: tuple[DeviceName, ...] = ("auto", "cuda", "mps", "cpu")


def resolve_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name``; ``auto`` picks cuda, then mps, then cpu.

    Raises ConfigurationError for an unknown name or a device this machine does not have.
    """
    import torch

    if name not in DEVICE_NAMES:
        raise ConfigurationError(f"unknown device {name!r}; expected one of {DEVICE_NAMES}")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ConfigurationError(f"device {name!r} is not available on this machine")
    return torch.device(name)
