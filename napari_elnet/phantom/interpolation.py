"""The phantom's filters and resizes in NumPy, computed as PyTorch's CPU kernels compute them.

The phantom drew its volumes with ``torch.nn.functional`` (``conv1d``, ``interpolate``); the shipped
models were trained on them, so these functions repeat PyTorch's arithmetic step by step (float32,
the same index and weight formulas, the same summation order, a fused multiply-add where PyTorch's
vectorized CPU kernels use one) and give the same float32 values without importing torch.

A fused multiply-add ``round32(a * b + c)`` is computed in float64: the product of two float32
values is exact in float64, so only the final rounding can differ from a true FMA, when the float64
sum lands exactly half-way between two float32 values (about once in 2**29).
"""

from __future__ import annotations

import numpy as np


def fma32(a: np.ndarray, b: np.ndarray | np.floating, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once to float32 (inputs float32, broadcastable)."""
    return (np.asarray(a, np.float64) * np.float64(b) + np.asarray(c, np.float64)).astype(
        np.float32
    )


def running_mean(volume: np.ndarray, axis: int, width: int) -> np.ndarray:
    """Centered running mean of ``width`` values along ``axis``, zero padded (float32).

    Repeats ``conv1d`` with a kernel of ``width`` taps ``float32(1 / width)`` after padding
    ``(width // 2, (width - 1) // 2)`` zeros: taps summed left to right with fused multiply-adds.

    Args:
        volume: float32 array of any shape.
        axis: Axis to smooth.
        width: Number of values averaged; 1 or less returns ``volume`` unchanged.

    Returns:
        float32 array of ``volume``'s shape.
    """
    if width <= 1:
        return volume
    moved = np.moveaxis(np.asarray(volume, np.float32), axis, -1)
    n = moved.shape[-1]
    pad = [(0, 0)] * (moved.ndim - 1) + [(width // 2, (width - 1) // 2)]
    padded = np.pad(moved, pad)
    tap = np.float32(1.0 / width)
    out = padded[..., 0:n] * tap
    for j in range(1, width):
        out = fma32(padded[..., j : j + n], tap, out)
    return np.moveaxis(out, -1, axis)


def _linear_indices(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of linear resizing ``n_in -> n_out`` (align_corners=False).

    Returns:
        (i0, i1, w0, w1): output i reads ``w0[i] * x[i0[i]] + w1[i] * x[i1[i]]``.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    centers = np.arange(n_out, dtype=np.float32) + np.float32(0.5)
    source = np.maximum(fma32(centers, scale, np.full(n_out, -0.5, np.float32)), np.float32(0))
    i0 = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    w1 = np.clip(source - i0.astype(np.float32), np.float32(0), np.float32(1))
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, np.float32(1) - w1, w1


def upsample_trilinear(volume: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Trilinear resize of a (D, H, W) float32 volume to ``shape``, align_corners=False.

    Same values as ``torch.nn.functional.interpolate(v[None, None], size=shape,
    mode="trilinear")[0, 0]``: last axis innermost, each level ``x0 * w0 + x1 * w1`` with the
    first product fused into the sum.
    """
    out = np.asarray(volume, np.float32)
    for axis in (2, 1, 0):
        i0, i1, w0, w1 = _linear_indices(out.shape[axis], shape[axis])
        view = [1, 1, 1]
        view[axis] = -1
        high = np.take(out, i1, axis=axis) * w1.reshape(view)
        out = fma32(np.take(out, i0, axis=axis), w0.reshape(view), high)
    return out


def _antialias_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights of antialiased linear resizing ``n_in -> n_out``.

    PyTorch's (and Pillow's) triangle filter widened by the scale factor when shrinking, with its
    float32 and float64 steps as PyTorch takes them.

    Returns:
        (index, weight), both (n_out, taps): output i reads ``sum_j weight[i, j] * x[index[i, j]]``;
        taps past a row's support have weight 0 and a valid index (adding them changes nothing).
    """
    scale = np.float32(n_in) / np.float32(n_out)
    support = np.float32(scale) if scale >= 1.0 else np.float32(1.0)
    invscale = np.float32(1.0 / np.float64(scale)) if scale >= 1.0 else np.float32(1.0)
    taps = int(np.ceil(support)) * 2 + 1
    used = 1
    index = np.zeros((n_out, taps), np.int64)
    weight = np.zeros((n_out, taps), np.float32)
    for i in range(n_out):
        center = np.float32(np.float64(scale) * (i + 0.5))
        xmin = max(int(np.float64(center - support) + 0.5), 0)
        xsize = min(int(np.float64(center + support) + 0.5), n_in) - xmin
        xsize = min(max(xsize, 0), taps)
        total = np.float32(0.0)
        for j in range(xsize):
            x = np.float32((np.float64(np.float32(j + xmin) - center) + 0.5) * np.float64(invscale))
            x = abs(x)
            w = np.float32(1.0 - np.float64(x)) if x < 1.0 else np.float32(0.0)
            weight[i, j] = w
            total = np.float32(total + w)
        if total != 0.0:
            weight[i, :xsize] /= total
        index[i, :xsize] = np.arange(xmin, xmin + xsize)
        index[i, xsize:] = xmin
        used = max(used, xsize)
    return index[:, :used], weight[:, :used]


def _resize_axis_antialiased(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Antialiased linear resize of float32 ``array`` along ``axis`` to ``size`` values."""
    if array.shape[axis] == size:
        return array
    index, weight = _antialias_weights(array.shape[axis], size)
    moved = np.moveaxis(array, axis, -1)
    out = moved[..., index[:, 0]] * weight[:, 0]
    for j in range(1, index.shape[1]):
        out = fma32(moved[..., index[:, j]], weight[:, j], out)
    return np.moveaxis(out, -1, axis)


def resize_antialiased(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of each slice of a (S, H, W) float32 stack to ``size`` (h, w).

    Same values as ``torch.nn.functional.interpolate(stack[:, None], size=size, mode="bilinear",
    antialias=True, align_corners=False)[:, 0]``: columns first, then rows.
    """
    columns = _resize_axis_antialiased(np.asarray(stack, np.float32), 2, size[1])
    return np.ascontiguousarray(_resize_axis_antialiased(columns, 1, size[0]))
