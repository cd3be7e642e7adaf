"""Random augmentation of one prepared series (paper, section 2.1).

Translation, horizontal flip, scaling and a rotation up to +-10 degrees about the image centre,
applied as one affine transform to every slice of the series alike, plus a random multiple of 90
degrees for axial and coronal series. All randomness comes from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from napari_elnet.common.errors import ConfigurationError

ROT90_PLANES: tuple[str, ...] = ("axial", "coronal")
"""Planes whose series are also turned by a random multiple of 90 degrees (paper, section 2.1)."""


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transform.

    Attributes:
        translate: Largest shift, as a fraction of the image width/height.
        scale: (smallest, largest) zoom factor.
        rotate: Largest in-plane rotation in degrees (either direction).
        flip: Probability of a horizontal (left-right) flip.
        rot90_planes: Planes that also get a random multiple of 90 degrees.
    """

    translate: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)
    rotate: float = 10.0
    flip: float = 0.5
    rot90_planes: tuple[str, ...] = ROT90_PLANES

    def __post_init__(self) -> None:
        if not 0.0 <= self.translate < 1.0:
            raise ConfigurationError(f"translate must be in [0, 1), got {self.translate}")
        if not 0.0 < self.scale[0] <= self.scale[1]:
            raise ConfigurationError(f"scale must be 0 < low <= high, got {self.scale}")
        if not 0.0 <= self.rotate <= 180.0:
            raise ConfigurationError(f"rotate must be in [0, 180] degrees, got {self.rotate}")
        if not 0.0 <= self.flip <= 1.0:
            raise ConfigurationError(f"flip must be a probability, got {self.flip}")


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the random transform (angles in degrees, shift in normalized [-1, 1] units)."""

    quarter_turns: int
    angle: float
    scale: float
    flip: bool
    shift: tuple[float, float]


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def draw_params(
    plane: str, generator: torch.Generator, config: AugmentConfig = AugmentConfig()
) -> AugmentParams:
    """Draw one random transform; quarter turns only for ``config.rot90_planes``."""
    quarter_turns = int(torch.randint(4, (), generator=generator))
    if plane not in config.rot90_planes:
        quarter_turns = 0
    angle = _uniform(generator, -config.rotate, config.rotate)
    scale = _uniform(generator, *config.scale)
    flip = bool(torch.rand((), generator=generator) < config.flip)
    shift_x = _uniform(generator, -2 * config.translate, 2 * config.translate)
    shift_y = _uniform(generator, -2 * config.translate, 2 * config.translate)
    return AugmentParams(quarter_turns, angle, scale, flip, (shift_x, shift_y))


def affine_matrix(params: AugmentParams) -> torch.Tensor:
    """The (2, 3) ``affine_grid`` matrix (output -> input sampling) of rotation, flip, zoom, shift."""
    radians = math.radians(params.angle)
    cos, sin = math.cos(radians) / params.scale, math.sin(radians) / params.scale
    flip = -1.0 if params.flip else 1.0
    return torch.tensor(
        [[cos * flip, -sin, params.shift[0]], [sin * flip, cos, params.shift[1]]],
        dtype=torch.float32,
    )


def apply_params(volume: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Transform every slice of ``volume`` alike; uncovered pixels take the volume's minimum.

    Shape:
        volume (S, 1, H, W) -> (S, 1, H, W).
    """
    if volume.ndim != 4 or volume.shape[1] != 1:
        raise ConfigurationError(f"expected a (S, 1, H, W) series, got {tuple(volume.shape)}")
    x = torch.rot90(volume, params.quarter_turns, dims=(2, 3)) if params.quarter_turns else volume
    theta = affine_matrix(params).to(x.device, x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    low = x.amin()
    out = F.grid_sample(x - low, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + low


def augment(
    volume: torch.Tensor,
    plane: str,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
) -> torch.Tensor:
    """A randomly transformed copy of a prepared series (same transform for all slices).

    Args:
        volume: Prepared series, e.g. from :func:`napari_elnet.transforms.preprocess.prepare_volume`.
        plane: The series' plane; axial and coronal series also get quarter turns.
        generator: CPU generator supplying all randomness.
        config: Ranges of the transform.

    Shape:
        volume (S, 1, H, W) with H == W -> (S, 1, H, W).
    """
    return apply_params(volume, draw_params(plane, generator, config))
