"""napari sample data: a knee MRI phantom study generated on the fly (nothing is downloaded)."""

from __future__ import annotations

from napari_elnet.plugin.layers import LayerDataTuple, study_layers

SAMPLE_SEED = 7
"""Seed of the sample study: the same knee every time."""
SAMPLE_LABELS = {"acl": True, "meniscus": True}
"""The sample knee has an ACL tear and a meniscal tear, so that every model has something to show."""


def phantom_sample() -> list[LayerDataTuple]:
    """Sagittal, coronal and axial series of one synthetic knee with lesions, as image layers."""
    from napari_elnet.phantom import generate_study

    study = generate_study(SAMPLE_SEED, labels=SAMPLE_LABELS)
    return study_layers(list(study.series.values()))
