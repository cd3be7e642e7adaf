"""ModulePatches: hooks and replaced forwards last exactly as long as the block, even on errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_elnet.inference.module_patches import ModulePatches


class Doubler(ModulePatches):
    """Doubles every Linear's output and counts forwards; fails part way when asked to."""

    def __init__(self, model: nn.Module, fail: bool = False) -> None:
        super().__init__(model)
        self.fail = fail
        self.calls = 0
        self.released = 0

    def install(self) -> None:
        for module in self.model.modules():
            if isinstance(module, nn.Linear):
                self.replace_forward(module, lambda x, m=module: 2 * nn.Linear.forward(m, x))
        self.hook(self.model.register_forward_pre_hook(self._count))
        if self.fail:
            raise RuntimeError("install failed")

    def release(self) -> None:
        self.released += 1

    def _count(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.calls += 1


def test_patches_hold_inside_the_block_only() -> None:
    model = nn.Sequential(nn.Linear(3, 2))
    x = torch.ones(1, 3)
    plain = model(x)
    with Doubler(model) as patches:
        torch.testing.assert_close(model(x), 2 * plain)
    torch.testing.assert_close(model(x), plain)
    assert patches.calls == 1 and patches.released == 1
    assert "forward" not in vars(model[0])


def test_a_failed_install_leaves_the_model_as_it_was() -> None:
    model = nn.Sequential(nn.Linear(3, 2))
    x = torch.ones(1, 3)
    plain = model(x)
    patches = Doubler(model, fail=True)
    with pytest.raises(RuntimeError, match="install failed"), patches:
        pass
    torch.testing.assert_close(model(x), plain)
    assert patches.calls == 0 and patches.released == 1
    assert "forward" not in vars(model[0])
