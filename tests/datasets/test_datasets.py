"""Data set readers: MRNet, KneeMRI (restricted unpickler), DICOM folders + labels.csv, detection."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from support.synthetic_data import write_mrnet

from napari_elnet.common.errors import ConfigurationError, ElnetError
from napari_elnet.common.series import Series
from napari_elnet.datasets import dataset_tasks, detect_layout, open_dataset
from napari_elnet.datasets.dicom import read_dicom_table
from napari_elnet.datasets.safe_pickle import UnsafePickleError, load_array_pickle


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


# --- MRNet -------------------------------------------------------------------------------------


def test_mrnet_split_labels_and_volumes(tmp_path: Path) -> None:
    root = write_mrnet(tmp_path / "mrnet", {"train": [0, 1, 1], "valid": [1, 0]}, slices=4)
    before = _tree(root)
    train = open_dataset(root, "acl", "coronal", "train")
    assert detect_layout(root) == "mrnet"
    assert [c.case_id for c in train] == ["0000", "0001", "0002"]
    assert train.labels.tolist() == [0, 1, 1]
    volume = train[1].volume()
    assert volume.shape == (4, 64, 64)
    assert volume.dtype == np.float32
    assert volume.max() == 250.0
    assert train[1].source == root / "train" / "coronal" / "0001.npy"
    valid = open_dataset(root, "acl", "coronal", "valid")
    assert [c.case_id for c in valid] == ["0003", "0004"]
    both = open_dataset(root, "acl", "coronal")
    assert len(both) == 5
    assert dataset_tasks(root) == ("abnormal", "acl", "meniscus")
    assert _tree(root) == before  # nothing written into the data folder


def test_mrnet_missing_volume_names_file(tmp_path: Path) -> None:
    root = write_mrnet(tmp_path / "mrnet", {"train": [0, 1]})
    (root / "train" / "axial" / "0001.npy").unlink()
    with pytest.raises(ConfigurationError, match=r"train-acl\.csv: case 0001 has no axial volume"):
        open_dataset(root, "acl", "axial", "train")


def test_mrnet_bad_row_names_file_and_line(tmp_path: Path) -> None:
    root = write_mrnet(tmp_path / "mrnet", {"train": [0, 1]})
    (root / "train-acl.csv").write_text("0,0\n1,maybe\n")
    with pytest.raises(ConfigurationError, match=r"train-acl\.csv: line 2: label must be 0 or 1"):
        open_dataset(root, "acl", "axial", "train")


def test_mrnet_unpadded_case_numbers_are_padded(tmp_path: Path) -> None:
    root = write_mrnet(tmp_path / "mrnet", {"train": [0, 1]})
    (root / "train-acl.csv").write_text("0,0\n1,1\n")
    assert [c.case_id for c in open_dataset(root, "acl", "axial", "train")] == ["0000", "0001"]


def test_unknown_layout_and_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown data set layout"):
        open_dataset(tmp_path, "acl", "axial")
    root = write_mrnet(tmp_path / "mrnet", {"train": [0, 1]})
    with pytest.raises(ConfigurationError, match="MRNet split must be one of"):
        open_dataset(root, "acl", "axial", "test")


# --- KneeMRI and the restricted unpickler -------------------------------------------------------


class _Exploit:
    def __init__(self, func: object, arg: str) -> None:
        self.func, self.arg = func, arg

    def __reduce__(self) -> tuple:
        return (self.func, (self.arg,))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_unpickler_loads_real_arrays(tmp_path: Path, protocol: int) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    path = tmp_path / "v.pck"
    path.write_bytes(pickle.dumps(array, protocol=protocol))
    loaded = load_array_pickle(path)
    np.testing.assert_array_equal(loaded, array)
    assert loaded.dtype == np.int16


@pytest.mark.parametrize("func", [os.system, eval])
def test_unpickler_refuses_code(tmp_path: Path, func: object) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pck"
    path.write_bytes(pickle.dumps(_Exploit(func, f"open({str(marker)!r}, 'w')"), protocol=2))
    with pytest.raises(UnsafePickleError, match="only NumPy arrays may be unpickled"):
        load_array_pickle(path)
    assert not marker.exists()


def test_unpickler_refuses_non_array(tmp_path: Path) -> None:
    path = tmp_path / "list.pck"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ElnetError, match="holds a list, not an array"):
        load_array_pickle(path)


def _write_kneemri(root: Path, diagnoses: list[int]) -> Path:
    (root / "vol01").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["examId,serieNo,kneeLR,roiX,aclDiagnosis,volumeFilename"]
    for i, diagnosis in enumerate(diagnoses):
        name = f"{1000 + i}-1.pck"
        volume = rng.integers(0, 500, size=(3, 20, 20)).astype(np.uint16)
        (root / "vol01" / name).write_bytes(pickle.dumps(volume, protocol=2))
        lines.append(f"{1000 + i},1,0,10,{diagnosis},{name}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_kneemri_label_mapping(tmp_path: Path) -> None:
    root = _write_kneemri(tmp_path / "knee", [0, 1, 2, 0])
    assert detect_layout(root) == "kneemri"
    injured = open_dataset(root, "acl", "sagittal")
    assert injured.labels.tolist() == [0, 1, 1, 0]
    ruptured = open_dataset(root, "acl", "sagittal", kneemri_positive="ruptured")
    assert ruptured.labels.tolist() == [0, 0, 1, 0]
    assert injured[2].case_id == "1002-1"
    assert injured[2].volume().shape == (3, 20, 20)


def test_kneemri_errors_name_the_file(tmp_path: Path) -> None:
    root = _write_kneemri(tmp_path / "knee", [0, 3])
    with pytest.raises(ConfigurationError, match=r"metadata\.csv: line 3: aclDiagnosis must be"):
        open_dataset(root, "acl", "sagittal")
    root = _write_kneemri(tmp_path / "knee2", [0, 1])
    (root / "vol01" / "1001-1.pck").unlink()
    with pytest.raises(ConfigurationError, match=r"line 3: volume '1001-1\.pck' not found"):
        open_dataset(root, "acl", "sagittal")
    with pytest.raises(ConfigurationError, match="only has sagittal series"):
        open_dataset(root, "acl", "axial")
    with pytest.raises(ConfigurationError, match="only has ACL labels"):
        open_dataset(root, "meniscus", "sagittal")


# --- DICOM folders with labels.csv --------------------------------------------------------------


def _fake_loader(folder: Path) -> list[Series]:
    size = int(folder.name.split("_")[1]) + 3
    return [
        Series(np.zeros((2, 8, 8), np.float32), plane="axial"),  # too few slices: never chosen
        Series(np.full((size, 8, 8), 7, np.float32), plane="axial"),
        Series(np.ones((9, 8, 8), np.float32), plane="sagittal"),
    ]


def _write_table(root: Path, rows: list[str]) -> Path:
    root.mkdir(parents=True)
    for row in rows:
        (root / row.split(",")[0]).mkdir()
    (root / "labels.csv").write_text("case,abnormal,acl,meniscus\n" + "\n".join(rows) + "\n")
    return root


def test_dicom_table_picks_series_by_plane(tmp_path: Path) -> None:
    root = _write_table(tmp_path / "dcm", ["case_0,1,0,1", "case_1,1,1,0"])
    assert detect_layout(root) == "dicom"
    assert dataset_tasks(root) == ("abnormal", "acl", "meniscus")
    data = read_dicom_table(root, "acl", "axial", loader=_fake_loader)
    assert data.labels.tolist() == [0, 1]
    assert data[1].volume().shape == (4, 8, 8)
    sagittal = read_dicom_table(root, "meniscus", "sagittal", loader=_fake_loader)
    assert sagittal.labels.tolist() == [1, 0]
    assert sagittal[0].volume().shape == (9, 8, 8)
    coronal = read_dicom_table(root, "acl", "coronal", loader=_fake_loader)
    with pytest.raises(ElnetError, match=r"case_0: no coronal series .*found axial \(2 slices\)"):
        coronal[0].volume()


def test_dicom_table_errors(tmp_path: Path) -> None:
    root = _write_table(tmp_path / "dcm", ["case_0,1,0,1"])
    with pytest.raises(ConfigurationError, match="no column for task 'pcl'"):
        read_dicom_table(root, "pcl", "axial")
    (root / "labels.csv").write_text("case,acl\ncase_0,1\ncase_9,0\n")
    with pytest.raises(ConfigurationError, match=r"line 3: case folder .*case_9 not found"):
        read_dicom_table(root, "acl", "axial")
    (root / "labels.csv").write_text("case,acl\ncase_0,1,3\n")
    with pytest.raises(ConfigurationError, match="line 2: 3 fields, the header has 2"):
        read_dicom_table(root, "acl", "axial")
    (root / "labels.csv").write_text("id,acl\ncase_0,1\n")
    with pytest.raises(ConfigurationError, match="header must be 'case,<task>"):
        read_dicom_table(root, "acl", "axial")


def _write_dicom_series(folder: Path, volume: np.ndarray, uid: str) -> None:
    """Axial series of uint16 slices written with pydicom."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True)
    for i, plane in enumerate(volume.astype(np.uint16)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "MR", uid, uid + ".1"
        ds.SeriesNumber, ds.InstanceNumber = 1, i + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, 3.0 * i]
        ds.PixelSpacing, ds.SliceThickness = [1, 1], 3
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = plane.tobytes()
        ds.save_as(folder / f"{i:03d}.dcm", enforce_file_format=True)


def test_dicom_table_with_real_files(tmp_path: Path) -> None:
    root = tmp_path / "dcm"
    volume = np.arange(4 * 6 * 6).reshape(4, 6, 6)
    _write_dicom_series(root / "case_0000" / "ax", volume, "1.2.3.4")
    _write_dicom_series(root / "case_0001" / "ax", volume + 1, "1.2.3.5")
    (root / "labels.csv").write_text(
        "case,abnormal,acl,meniscus\ncase_0000,1,1,0\ncase_0001,0,0,0\n"
    )
    data = open_dataset(root, "acl", "axial")
    assert data.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(data[0].volume(), volume.astype(np.float32))


def test_default_choice_is_the_papers_on_the_layouts_plane() -> None:
    from napari_elnet.datasets import default_choice

    assert default_choice("mrnet", "meniscus") == ("coronal", "contrast")
    assert default_choice("dicom", "acl") == ("axial", "layer")
    assert default_choice("kneemri", "acl") == ("sagittal", "layer")
    assert default_choice(None, "cartilage") == ("axial", "layer")
