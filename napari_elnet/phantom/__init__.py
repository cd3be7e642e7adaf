"""A digital knee phantom: synthetic three-plane knee MRI studies with known lesions.

Feeds the tests, the demonstration models, the napari sample data and the localization benchmark.
Every study is drawn from a seed, so the same seed gives the same study.
"""

from __future__ import annotations

from napari_elnet.phantom.study import (
    LesionTruth,
    PhantomConfig,
    PhantomStudy,
    draw_labels,
    generate_study,
)
from napari_elnet.phantom.writers import (
    main_phantom,
    to_mrnet_volume,
    write_dicom_dataset,
    write_dicom_study,
    write_mrnet,
)

__all__ = [
    "LesionTruth",
    "PhantomConfig",
    "PhantomStudy",
    "draw_labels",
    "generate_study",
    "main_phantom",
    "to_mrnet_volume",
    "write_dicom_dataset",
    "write_dicom_study",
    "write_mrnet",
]
