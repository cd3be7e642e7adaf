"""Hooks and replaced forwards on a model's modules for the length of one ``with`` block."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import torch
from torch import nn


class ModulePatches:
    """Base of the context managers that hook or patch a model's modules inside a block.

    A subclass installs its hooks in :meth:`install` (with :meth:`hook` and
    :meth:`replace_forward`) and drops its own state in :meth:`release`. On exit, and when
    :meth:`install` fails part way, every hook is removed and every module gets its class's
    forward back before :meth:`release` runs.

    Args:
        model: the network whose modules are patched.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._patched: list[nn.Module] = []

    def install(self) -> None:
        """Register the hooks and replace the forwards (called on entering the block)."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop the subclass's own state (called on leaving the block, after the unpatching)."""

    def hook(self, handle: torch.utils.hooks.RemovableHandle) -> None:
        """Keep ``handle`` to remove it on exit."""
        self._handles.append(handle)

    def replace_forward(self, module: nn.Module, forward: Callable[..., Any]) -> None:
        """Run ``forward`` instead of ``module``'s own forward until exit."""
        module.forward = forward  # type: ignore[method-assign]
        self._patched.append(module)

    def __enter__(self) -> Self:
        try:
            self.install()
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for handle in self._handles:
            handle.remove()
        for module in self._patched:
            del module.forward  # the instance attribute set over the class's forward
        self._handles.clear()
        self._patched.clear()
        self.release()
