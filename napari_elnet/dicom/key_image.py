"""The key image of one task: its most informative slice with the heatmap burned in and a legend.

A Secondary Capture (RGB, 8 bit) for viewers that show neither structured reports nor parametric
maps. The slice is windowed like the napari layer (DICOM window, else the 0.5..99.5 percentile range),
the heatmap is added in the ``inferno`` colour map at the napari layer's opacity, and a band below the
image carries the legend: task, probability and decision, slice, a colour bar, and "demonstration
weights: not for diagnosis" when the model is a demonstration model. Text is drawn with Pillow's
built-in font (Pillow is a dependency of highdicom; no font file is read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from highdicom import UID
from highdicom.sc import SCImage
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from napari_elnet.dicom import concepts, identity
from napari_elnet.dicom.source import SourceSeries, copy_laterality

DEMO_WARNING = "DEMONSTRATION WEIGHTS: NOT FOR DIAGNOSIS"
HEATMAP_OPACITY = 0.6
"""Weight of the heatmap colour added to the grey slice."""
_INFERNO = np.array(
    [
        (0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
        (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164),
    ],
    dtype=np.float32,
)  # fmt: skip
"""The inferno colour map (napari's heatmap colour map) at 0, 1/8, ..., 1."""


@dataclass(frozen=True)
class Legend:
    """What the legend says.

    Attributes:
        task: Task name.
        probability: Positive-class probability.
        threshold: Decision threshold of the model.
        slice_index: 0-based index of the slice shown.
        n_slices: Number of slices of the series.
        series_name: Display name of the series.
        demo: Whether the model has demonstration weights.
    """

    task: str
    probability: float
    threshold: float
    slice_index: int
    n_slices: int
    series_name: str
    demo: bool

    def lines(self) -> list[str]:
        """Text lines, top to bottom (the colour bar goes after them)."""
        decision = "positive" if self.probability >= self.threshold else "negative"
        lines = [
            f"ELNet {self.task}: {concepts.finding_meaning(self.task)}",
            f"probability {self.probability:.3f} ({decision} at threshold {self.threshold:.2f})",
            f"slice {self.slice_index + 1} of {self.n_slices}, {self.series_name}",
        ]
        if self.demo:
            lines.append(DEMO_WARNING)
        return lines


def inferno(values: np.ndarray) -> np.ndarray:
    """RGB float32 (..., 3) in 0..255 of values in [0, 1] through the inferno colour map."""
    scaled = np.clip(values, 0.0, 1.0) * (len(_INFERNO) - 1)
    low = np.floor(scaled).astype(np.int64).clip(0, len(_INFERNO) - 2)
    frac = (scaled - low)[..., None]
    return _INFERNO[low] * (1.0 - frac) + _INFERNO[low + 1] * frac


def window_to_grey(plane: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """(H, W) values -> float32 0..255 through a (low, high) display range."""
    low, high = window
    return (np.clip((plane - low) / max(high - low, 1e-6), 0.0, 1.0) * 255.0).astype(np.float32)


def display_range(source: SourceSeries) -> tuple[float, float]:
    """(low, high) display range: the DICOM window, else the 0.5..99.5 percentile range."""
    series = source.series
    if series.window is not None and series.window[1] > 0:
        center, width = series.window
        return (center - width / 2, center + width / 2)
    low, high = np.percentile(series.array[:: max(1, series.shape[0] // 8)], (0.5, 99.5))
    return (float(low), float(high) if high > low else float(low) + 1.0)


def render(grey: np.ndarray, heat: np.ndarray, legend: Legend) -> np.ndarray:
    """The key image: (H + band, W, 3) uint8, the slice with the heatmap above a legend band.

    Args:
        grey: (H, W) float32 0..255 windowed slice.
        heat: (H, W) heatmap in [0, 1].
        legend: Legend text.
    """
    height, width = grey.shape
    picture = grey[..., None] + HEATMAP_OPACITY * inferno(heat)
    font_size = max(10, width // 32)
    font = ImageFont.load_default(size=font_size)
    lines = legend.lines()
    line_height = int(font_size * 1.3)
    bar_height = max(6, font_size // 2)
    band = line_height * (len(lines) + 2) + 8
    canvas = Image.new("RGB", (width, height + band), (0, 0, 0))
    canvas.paste(Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8), "RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = height + 4
    for text in lines:
        colour = (255, 140, 0) if text == DEMO_WARNING else (255, 255, 255)
        draw.text((4, y), _fit(draw, text, font, width - 8), fill=colour, font=font)
        y += line_height
    label_width = int(draw.textlength("0.0", font=font)) + 8
    bar_left, bar_right = 4 + label_width, width - 4 - label_width
    if bar_right > bar_left + 8:
        ramp = inferno(np.linspace(0.0, 1.0, bar_right - bar_left, dtype=np.float32))
        bar = np.repeat(ramp[None], bar_height, axis=0).astype(np.uint8)
        canvas.paste(Image.fromarray(bar, "RGB"), (bar_left, y + 2))
        draw.text((4, y), "0.0", fill=(255, 255, 255), font=font)
        draw.text((bar_right + 8, y), "1.0", fill=(255, 255, 255), font=font)
    y += line_height
    draw.text(
        (4, y), "FullGrad heatmap (where the network looked)", fill=(200, 200, 200), font=font
    )
    return np.asarray(canvas, dtype=np.uint8)


def _fit(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: int,
) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def patient_orientation(orientation: np.ndarray) -> tuple[str, str]:
    """PatientOrientation letters of the row and column directions (LPS: +x L, +y P, +z H)."""
    letters = (("R", "L"), ("A", "P"), ("F", "H"))

    def name(vector: np.ndarray) -> str:
        order = np.argsort(-np.abs(vector))
        parts = [letters[a][int(vector[a] > 0)] for a in order if abs(vector[a]) > 0.2]
        return "".join(parts[:3]) or letters[int(order[0])][int(vector[order[0]] > 0)]

    return name(orientation[0]), name(orientation[1])


def key_image(
    source: SourceSeries,
    heatmap: np.ndarray,
    legend: Legend,
    series_number: int = identity.KEY_IMAGE_SERIES_NUMBER,
) -> SCImage:
    """Build the Secondary Capture key image of one task.

    Args:
        source: The series the heatmap was computed on, with its headers.
        heatmap: (S, H, W) values in [0, 1], aligned with ``source.series``.
        legend: Legend; ``legend.slice_index`` is the slice shown.
        series_number: SeriesNumber of the new series.
    """
    series = source.series
    index = legend.slice_index
    grey = window_to_grey(series.array[index], display_range(source))
    pixels = render(grey, heatmap[index], legend)
    reference = source.slices[index]
    orientation_kwargs: dict[str, object] = {"coordinate_system": "PATIENT"}
    letters = None if series.orientation is None else patient_orientation(series.orientation)
    if letters is not None:  # highdicom takes one letter per direction: the main one first
        orientation_kwargs["patient_orientation"] = (letters[0][0], letters[1][0])
    else:
        orientation_kwargs["coordinate_system"] = None
    image = SCImage.from_ref_dataset(
        ref_dataset=source.dataset_of(index),
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        series_instance_uid=UID(),
        series_number=series_number,
        sop_instance_uid=UID(),
        instance_number=1,
        manufacturer=identity.MANUFACTURER,
        pixel_spacing=(float(series.spacing[1]), float(series.spacing[2])),  # type: ignore[arg-type]
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        **orientation_kwargs,  # type: ignore[arg-type]
    )
    if letters is not None:  # an oblique direction has up to three letters (PS3.3 C.7.6.1.1.1)
        image.PatientOrientation = list(letters)
    image.BurnedInAnnotation = "YES"
    image.RecognizableVisualFeatures = "NO"
    image.ImageType = ["DERIVED", "SECONDARY"]
    image.SeriesDescription = f"ELNet {legend.task} key image"[:64]
    image.ManufacturerModelName = identity.MODEL_NAME
    image.SoftwareVersions = identity.SOFTWARE_VERSION
    image.DerivationDescription = (
        f"Slice {index + 1} of series {series.number} with the ELNet {legend.task} FullGrad heatmap "
        "burned in, and a legend"
    )[:1024]
    source_item = Dataset()
    source_item.ReferencedSOPClassUID = reference.sop_class_uid
    source_item.ReferencedSOPInstanceUID = reference.sop_instance_uid
    if reference.frame_number is not None:
        source_item.ReferencedFrameNumber = reference.frame_number
    image.SourceImageSequence = DicomSequence([source_item])
    copy_laterality(source, image)
    return image
