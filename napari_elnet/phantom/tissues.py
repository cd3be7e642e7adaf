"""Tissue labels of the phantom, their relaxation parameters, and their signal in each contrast.

Signal of a spin-echo sequence: ``PD * (1 - exp(-TR / T1)) * exp(-TE / T2)``, times the residual
fat fraction for fat under fat suppression, scaled so the brightest tissue is 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from napari_elnet.errors import ConfigurationError


class Tissue(IntEnum):
    """Label values of the phantom's tissue volume."""

    AIR = 0
    SKIN = 1
    FAT = 2
    MUSCLE = 3
    CORTEX = 4
    MARROW = 5
    CARTILAGE = 6
    MENISCUS = 7
    LIGAMENT = 8
    FLUID = 9
    EDEMA = 10
    SYNOVIUM = 11


@dataclass(frozen=True)
class Relaxation:
    """Relative proton density, T1 and T2 (ms) at 1.5 T, and whether the signal is fat."""

    pd: float
    t1: float
    t2: float
    fat: bool = False


TISSUES: dict[Tissue, Relaxation] = {
    Tissue.AIR: Relaxation(0.0, 1.0, 1.0),
    Tissue.SKIN: Relaxation(0.6, 600.0, 30.0),
    Tissue.FAT: Relaxation(1.0, 280.0, 85.0, fat=True),
    Tissue.MUSCLE: Relaxation(0.6, 1000.0, 26.0),
    Tissue.CORTEX: Relaxation(0.05, 1000.0, 1.0),
    Tissue.MARROW: Relaxation(0.95, 300.0, 60.0, fat=True),  # fatty (yellow) marrow
    Tissue.CARTILAGE: Relaxation(0.85, 1100.0, 35.0),
    Tissue.MENISCUS: Relaxation(0.35, 1000.0, 6.0),
    Tissue.LIGAMENT: Relaxation(0.35, 1000.0, 8.0),  # ligaments and tendons
    Tissue.FLUID: Relaxation(1.0, 3000.0, 700.0),
    Tissue.EDEMA: Relaxation(0.8, 1800.0, 150.0),
    Tissue.SYNOVIUM: Relaxation(0.5, 900.0, 30.0),  # synovium and fat of the notch
}


@dataclass(frozen=True)
class Sequence:
    """A spin-echo protocol: TR and TE (ms), fat suppression (residual fat fraction, 1 = none)."""

    tr: float
    te: float
    fat_residual: float
    description: str


CONTRASTS: dict[str, Sequence] = {
    "pd_fs": Sequence(3000.0, 30.0, 0.15, "PD FS"),
    "t1": Sequence(550.0, 12.0, 1.0, "T1"),
    "t2": Sequence(4000.0, 80.0, 1.0, "T2"),
}


def signal_table(contrast: str) -> np.ndarray:
    """Signal per label value for a contrast (brightest tissue 1), float32 indexed by label."""
    if contrast not in CONTRASTS:
        raise ConfigurationError(
            f"unknown contrast {contrast!r}; expected one of {sorted(CONTRASTS)}"
        )
    seq = CONTRASTS[contrast]
    table = np.zeros(len(Tissue), np.float32)
    for tissue, p in TISSUES.items():
        value = p.pd * (1.0 - np.exp(-seq.tr / p.t1)) * np.exp(-seq.te / p.t2)
        table[tissue] = value * (seq.fat_residual if p.fat else 1.0)
    return table / table.max()
