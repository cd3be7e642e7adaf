"""The FullGrad heatmap of one task as a DICOM Parametric Map (float, 0..1, one frame per source slice).

The map shares the source series' frame of reference, orientation, pixel spacing and slice positions,
derives from (and references) the source instances, and its real-world value mapping is coded as a
class activation map (DCM 130402).
"""

from __future__ import annotations

import numpy as np
from highdicom import (
    UID,
    PlaneOrientationSequence,
    PlanePositionSequence,
    VOILUTTransformation,
)
from highdicom.content import PixelMeasuresSequence
from highdicom.pm import ParametricMap, RealWorldValueMapping

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.dicom import concepts, identity
from napari_elnet.dicom.source import SourceSeries, copy_laterality

CONTENT_LABEL = "FULLGRAD"
"""ContentLabel of every heatmap map (read-back looks for it)."""


def heatmap_map(
    source: SourceSeries,
    heatmap: np.ndarray,
    task: str,
    series_number: int = identity.MAP_SERIES_NUMBER,
) -> ParametricMap:
    """Build the parametric map of one task's heatmap.

    Args:
        source: The series the heatmap was computed on, with its headers.
        heatmap: (S, H, W) values in [0, 1], aligned voxel for voxel with ``source.series``.
        task: Task name (goes into the description and the LUT explanation).
        series_number: SeriesNumber of the new series.

    Raises:
        ConfigurationError: The heatmap does not match the series, or the series has no slice
            geometry or no Frame of Reference UID (the map's positions would refer to nothing).
    """
    series = source.series
    if heatmap.shape != series.shape:
        raise ConfigurationError(
            f"{task} heatmap shape {heatmap.shape} does not match series {series.name} {series.shape}"
        )
    if series.orientation is None or any(s.position is None for s in source.slices):
        raise ConfigurationError(
            f"series {series.name} has no slice geometry (ImagePositionPatient/"
            "ImageOrientationPatient): a parametric map cannot be placed on it"
        )
    unframed = next((ds for ds in source.datasets if not ds.get("FrameOfReferenceUID")), None)
    if unframed is not None:  # highdicom raised a bare ValueError
        raise ConfigurationError(
            f"{getattr(unframed, 'filename', None) or series.name}: no FrameOfReferenceUID: the "
            "parametric map's slice positions could not refer to the series' frame of reference"
        )
    values = np.clip(np.nan_to_num(heatmap.astype(np.float32)), 0.0, 1.0)
    orientation = series.orientation
    mapping = RealWorldValueMapping(
        lut_label=CONTENT_LABEL,
        lut_explanation=f"FullGrad class activation of ELNet {task}"[:64],
        unit=concepts.PROBABILITY_UNIT,
        value_range=(0.0, 1.0),
        slope=1.0,
        intercept=0.0,
        quantity_definition=concepts.CLASS_ACTIVATION,
    )
    pmap = ParametricMap(
        source_images=list(source.datasets),
        pixel_array=values,
        series_instance_uid=UID(),
        series_number=series_number,
        sop_instance_uid=UID(),
        instance_number=1,
        manufacturer=identity.MANUFACTURER,
        manufacturer_model_name=identity.MODEL_NAME,
        software_versions=identity.SOFTWARE_VERSION,
        device_serial_number=identity.DEVICE_SERIAL_NUMBER,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_label=CONTENT_LABEL,
        content_description=f"ELNet {task} FullGrad heatmap"[:64],
        pixel_measures=PixelMeasuresSequence(
            pixel_spacing=(float(series.spacing[1]), float(series.spacing[2])),
            slice_thickness=float(series.spacing[0]),
            spacing_between_slices=float(series.spacing[0]),
        ),
        plane_orientation=PlaneOrientationSequence(
            coordinate_system="PATIENT",
            image_orientation=[float(v) for v in (*orientation[0], *orientation[1])],
        ),
        plane_positions=[
            PlanePositionSequence("PATIENT", [float(v) for v in s.position])  # type: ignore[union-attr]
            for s in source.slices
        ],
        derivation=concepts.CLASS_ACTIVATION,
    )
    pmap.SeriesDescription = f"ELNet {task} heatmap"[:64]
    copy_laterality(source, pmap)
    return pmap
