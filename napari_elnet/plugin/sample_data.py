"""napari sample data: a knee MRI phantom study generated on the fly (nothing is downloaded)."""

from __future__ import annotations

from napari_elnet.plugin.layers import LayerDataTuple, study_layers

SAMPLE_SEED = 7
"""Seed of the sample study: the same knee every time."""


def phantom_sample() -> list[LayerDataTuple]:
    """Sagittal, coronal and axial series of one synthetic knee with lesions, as image layers."""
    from napari_elnet.phantom import generate_study

    study = generate_study(SAMPLE_SEED)
    return study_layers(list(study.series.values()))
