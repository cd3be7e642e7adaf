"""BlurPool: shape, filter, module equals functional, equals depthwise conv, gradcheck."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.nn.blur_pool import BlurPool2d, binomial_kernel, blur_pool2d


def test_binomial_kernel_values() -> None:
    kernel = binomial_kernel(5, torch.float64)
    row = torch.tensor([1, 4, 6, 4, 1], dtype=torch.float64) / 16
    torch.testing.assert_close(kernel, torch.outer(row, row))
    assert float(kernel.sum()) == pytest.approx(1.0)


@pytest.mark.parametrize(("size", "expected"), [(128, 62), (62, 29), (29, 13), (13, 5), (5, 1)])
def test_valid_output_sizes(size: int, expected: int) -> None:
    assert BlurPool2d(5)(torch.zeros(1, 2, size, size)).shape[-1] == expected


def test_module_equals_functional_and_depthwise_conv() -> None:
    x = torch.randn(3, 4, 20, 17, dtype=torch.float64)
    module = BlurPool2d(5).double()
    depthwise = F.conv2d(
        x, binomial_kernel(5, torch.float64).expand(4, 1, 5, 5), stride=2, groups=4
    )
    torch.testing.assert_close(module(x), blur_pool2d(x, module.kernel))
    torch.testing.assert_close(module(x), depthwise)


def test_constant_input_stays_constant() -> None:
    out = BlurPool2d(5)(torch.full((1, 1, 9, 9), 3.0))
    torch.testing.assert_close(out, torch.full_like(out, 3.0))


def test_gradcheck() -> None:
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64, requires_grad=True)
    kernel = binomial_kernel(5, torch.float64)
    assert torch.autograd.gradcheck(lambda t: blur_pool2d(t, kernel), (x,))


def test_too_small_input_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="4x4 is smaller than its 5x5"):
        BlurPool2d(5)(torch.zeros(1, 1, 4, 4))
