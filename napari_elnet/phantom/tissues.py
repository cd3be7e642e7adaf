"""Tissue labels of the phantom and their MR signal for each contrast."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from napari_elnet.common.errors import ConfigurationError


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


CONTRASTS: dict[str, dict[Tissue, float]] = {
    # Proton density, fat suppressed (MRNet's axial and coronal-like): fluid and edema bright,
    # cartilage intermediate, fat and fatty marrow dark, menisci and ligaments very dark.
    "pd_fs": {
        Tissue.AIR: 0.0,
        Tissue.SKIN: 0.30,
        Tissue.FAT: 0.07,
        Tissue.MUSCLE: 0.20,
        Tissue.CORTEX: 0.02,
        Tissue.MARROW: 0.10,
        Tissue.CARTILAGE: 0.50,
        Tissue.MENISCUS: 0.04,
        Tissue.LIGAMENT: 0.05,
        Tissue.FLUID: 0.95,
        Tissue.EDEMA: 0.70,
    },
    "t1": {
        Tissue.AIR: 0.0,
        Tissue.SKIN: 0.55,
        Tissue.FAT: 0.90,
        Tissue.MUSCLE: 0.32,
        Tissue.CORTEX: 0.03,
        Tissue.MARROW: 0.80,
        Tissue.CARTILAGE: 0.38,
        Tissue.MENISCUS: 0.05,
        Tissue.LIGAMENT: 0.07,
        Tissue.FLUID: 0.18,
        Tissue.EDEMA: 0.30,
    },
    "t2": {
        Tissue.AIR: 0.0,
        Tissue.SKIN: 0.35,
        Tissue.FAT: 0.55,
        Tissue.MUSCLE: 0.18,
        Tissue.CORTEX: 0.02,
        Tissue.MARROW: 0.45,
        Tissue.CARTILAGE: 0.30,
        Tissue.MENISCUS: 0.03,
        Tissue.LIGAMENT: 0.05,
        Tissue.FLUID: 1.00,
        Tissue.EDEMA: 0.80,
    },
}


def signal_table(contrast: str) -> np.ndarray:
    """Signal per label value for a contrast, as a lookup array indexed by label."""
    if contrast not in CONTRASTS:
        raise ConfigurationError(
            f"unknown contrast {contrast!r}; expected one of {sorted(CONTRASTS)}"
        )
    table = np.zeros(len(Tissue), np.float32)
    for tissue, value in CONTRASTS[contrast].items():
        table[tissue] = value
    return table
