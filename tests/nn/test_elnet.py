"""ELNet architecture: parameter counts, feature-map sizes, slice counts, init, eval-mode backward."""

from __future__ import annotations

import pytest
import torch

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.nn.elnet import ELNet, count_parameters, expected_parameter_count


@pytest.mark.parametrize(("k", "expected"), [(4, 211_314), (2, 53_178)])
@pytest.mark.parametrize("norm", ["layer", "contrast"])
def test_parameter_count_matches_paper(k: int, norm: str, expected: int) -> None:
    model = ELNet(k=k, norm=norm)
    assert count_parameters(model) == expected
    assert expected_parameter_count(k) == expected


def test_blur_filters_are_buffers_not_parameters() -> None:
    model = ELNet(k=1)
    names = {name for name, _ in model.named_parameters()}
    assert not any("kernel" in name for name in names)
    assert sum(1 for name, _ in model.named_buffers() if name.endswith("kernel")) == 5


def test_feature_map_sizes_at_256() -> None:
    model = ELNet(k=1).eval()
    sizes = []
    x = model.stem(torch.zeros(2, 1, 256, 256))
    sizes.append(x.shape[-1])
    for stage in model.stages:
        x = stage(x)
        sizes.append(x.shape[-1])
    assert sizes == [62, 29, 13, 5, 1]
    assert tuple(x.shape) == (2, 16, 1, 1)


@pytest.mark.parametrize("slices", [1, 3, 17])
def test_any_slice_count_gives_two_logits(slices: int) -> None:
    model = ELNet(k=1).eval()
    with torch.no_grad():
        logits = model(torch.randn(slices, 1, 256, 256))
    assert tuple(logits.shape) == (2,)
    assert torch.isfinite(logits).all()


def test_wrong_input_shape_names_the_shape() -> None:
    with pytest.raises(ConfigurationError, match=r"\(S, 1, H, W\).*\(3, 256, 256\)"):
        ELNet(k=1)(torch.zeros(3, 256, 256))


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = ELNet(k=1, seed=7), ELNet(k=1, seed=7), ELNet(k=1, seed=8)
    after = torch.rand(1)
    assert torch.equal(before, after)
    for (name, pa), (_, pb), (_, _pc) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_backward_works_in_eval_mode() -> None:
    model = ELNet(k=1).eval()
    x = torch.randn(2, 1, 256, 256, requires_grad=True)
    model(x)[1].backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is not None for p in model.parameters())


def test_dropout_only_in_training_mode() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 256, 256)
    model = ELNet(k=1, dropout=0.5)
    without = ELNet(k=1, dropout=0.0)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))  # dropout draws a new mask per pass
        without.train()
        assert torch.equal(without(x), without(x))  # the difference above is dropout's alone
        model.eval()
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "k must be"), ({"norm": "batch"}, "unknown norm"), ({"dropout": 1.0}, "dropout")],
)
def test_invalid_configuration_is_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ELNet(**kwargs)
