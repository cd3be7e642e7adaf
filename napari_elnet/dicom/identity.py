"""Who wrote a result object: manufacturer, software version, device UID, series numbers, file names."""

from __future__ import annotations

from pydicom.uid import generate_uid

import napari_elnet

MANUFACTURER = "napari-elnet"
"""Manufacturer (0008,0070) of every object written; read-back recognises our objects by it."""
MODEL_NAME = "ELNet"
"""ManufacturerModelName: the network (Tsai et al., MIDL 2020)."""
SOFTWARE_VERSION = napari_elnet.__version__
"""SoftwareVersions (0018,1020)."""
DEVICE_SERIAL_NUMBER = "napari-elnet-" + SOFTWARE_VERSION
"""DeviceSerialNumber (required by the parametric map): software has no serial, so its name and version."""
DEVICE_UID = generate_uid(prefix=None, entropy_srcs=[MANUFACTURER, MODEL_NAME])
"""Stable UID of the observing device in the report (same for every installation and version)."""

SR_SERIES_NUMBER = 9900
"""Series number of the structured report; parametric maps and key images follow it."""
MAP_SERIES_NUMBER = 9901
KEY_IMAGE_SERIES_NUMBER = 9951


def result_file_name(kind: str, task: str = "") -> str:
    """File name of one object: ``ELNET_SR.dcm``, ``ELNET_MAP_<task>.dcm``, ``ELNET_KEY_<task>.dcm``."""
    return f"ELNET_{kind}.dcm" if not task else f"ELNET_{kind}_{task}.dcm"
