"""The storage SOP classes the node accepts: what a knee MR study (and its derived objects) may carry."""

from __future__ import annotations

from pydicom.uid import (
    BasicTextSRStorage,
    ComprehensiveSRStorage,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    EncapsulatedPDFStorage,
    EnhancedCTImageStorage,
    EnhancedMRColorImageStorage,
    EnhancedMRImageStorage,
    EnhancedSRStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
    LegacyConvertedEnhancedMRImageStorage,
    MRImageStorage,
    MRSpectroscopyStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    ParametricMapStorage,
    RawDataStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)
from pynetdicom import ALL_TRANSFER_SYNTAXES, build_context
from pynetdicom.presentation import PresentationContext

VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"

STORAGE_CLASSES: tuple[str, ...] = tuple(
    str(uid)
    for uid in (
        MRImageStorage,
        EnhancedMRImageStorage,
        EnhancedMRColorImageStorage,
        LegacyConvertedEnhancedMRImageStorage,
        MRSpectroscopyStorage,
        SecondaryCaptureImageStorage,
        MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        MultiFrameTrueColorSecondaryCaptureImageStorage,
        CTImageStorage,  # scout or CT arthrography in the same study
        EnhancedCTImageStorage,
        ComputedRadiographyImageStorage,  # knee radiographs filed with the MR
        DigitalXRayImageStorageForPresentation,
        GrayscaleSoftcopyPresentationStateStorage,
        KeyObjectSelectionDocumentStorage,
        BasicTextSRStorage,
        EnhancedSRStorage,
        ComprehensiveSRStorage,
        ParametricMapStorage,
        SegmentationStorage,
        EncapsulatedPDFStorage,
        RawDataStorage,
    )
)
"""SOP Class UIDs accepted by C-STORE (and requested as C-GET sub-operations)."""


def storage_contexts() -> list[PresentationContext]:
    """One presentation context per storage class, with every transfer syntax pynetdicom knows."""
    return [build_context(uid, ALL_TRANSFER_SYNTAXES) for uid in STORAGE_CLASSES]


def acceptor_contexts() -> list[PresentationContext]:
    """Verification (C-ECHO) plus the storage contexts."""
    return [build_context(VERIFICATION), *storage_contexts()]
