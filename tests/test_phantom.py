"""The digital knee phantom: determinism, labels, geometry, lesion truth, writers, speed-free."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from napari_elnet.errors import ConfigurationError
from napari_elnet.phantom import (
    PhantomConfig,
    generate_study,
    main_phantom,
    write_dicom_dataset,
    write_dicom_study,
    write_mrnet,
)
from napari_elnet.phantom.acquisition import Resampler, stack_geometry
from napari_elnet.phantom.canvas import Grid
from napari_elnet.phantom.tissues import Tissue, signal_table

SMALL = PhantomConfig(matrix=(64, 64), slices=(17, 24))


@pytest.fixture(scope="module")
def torn():
    return generate_study(3, SMALL, labels={"acl": True, "meniscus": True, "abnormal": True})


def test_same_seed_same_study_other_seed_differs() -> None:
    a, b, c = generate_study(5, SMALL), generate_study(5, SMALL), generate_study(6, SMALL)
    for plane in ("sagittal", "coronal", "axial"):
        np.testing.assert_array_equal(a.series[plane].array, b.series[plane].array)
    assert a.labels == b.labels
    assert not np.array_equal(a.series["axial"].array[:5], c.series["axial"].array[:5])


@pytest.mark.parametrize("seed", range(8))
def test_a_tear_implies_abnormal(seed: int) -> None:
    labels = generate_study(seed, SMALL).labels
    assert set(labels) == {"abnormal", "acl", "meniscus"}
    if labels["acl"] or labels["meniscus"]:
        assert labels["abnormal"] == 1


def test_forced_labels_are_respected(torn) -> None:
    assert torn.labels == {"abnormal": 1, "acl": 1, "meniscus": 1}
    assert {"acl_tear", "meniscal_tear"} <= set(torn.lesions)
    healthy = generate_study(3, SMALL, labels={"acl": False, "meniscus": False, "abnormal": False})
    assert healthy.lesions == ()
    assert all(items == [] for items in healthy.truth.values())


def test_shapes_and_ranges(torn) -> None:
    for plane, series in torn.series.items():
        s, h, w = series.shape
        assert 17 <= s <= 24 and h == w == 64
        assert series.plane == plane
        assert series.array.dtype == np.float32
        assert float(series.array.min()) >= 0.0
        assert 3.0 <= series.spacing[0] <= 4.5


def test_planes_are_orthogonal_and_named_by_their_normal(torn) -> None:
    axis = {"sagittal": 0, "coronal": 1, "axial": 2}
    normals = []
    for plane, series in torn.series.items():
        o = series.orientation
        np.testing.assert_allclose(o @ o.T, np.eye(3), atol=1e-9)
        np.testing.assert_allclose(np.cross(o[0], o[1]), o[2], atol=1e-9)
        assert int(np.argmax(np.abs(o[2]))) == axis[plane]
        normals.append(o[2])
    np.testing.assert_allclose(
        np.abs(np.array(normals) @ np.array(normals).T), np.eye(3), atol=1e-9
    )


def test_truth_boxes_lie_in_the_volume_and_bound_the_mask(torn) -> None:
    for plane, items in torn.truth.items():
        shape = torn.series[plane].shape
        for item in items:
            s0, s1, r0, r1, c0, c1 = item.box
            assert (
                0 <= s0 <= s1 < shape[0] and 0 <= r0 <= r1 < shape[1] and 0 <= c0 <= c1 < shape[2]
            )
            assert item.mask.shape == shape
            inside = item.mask[s0 : s1 + 1, r0 : r1 + 1, c0 : c1 + 1]
            assert int(inside.sum()) == int(item.mask.sum()) > 0


def test_a_positive_differs_from_its_negative_inside_the_lesion() -> None:
    yes = generate_study(11, SMALL, labels={"acl": True, "meniscus": False, "abnormal": True})
    no = generate_study(11, SMALL, labels={"acl": False, "meniscus": False, "abnormal": False})
    (tear,) = [t for t in yes.truth["axial"] if t.kind == "acl_tear"]
    a, b = yes.series["axial"].array, no.series["axial"].array
    assert a.shape == b.shape
    lesion = tear.mask
    # Fluid and edema replace a dark ligament: the tear is brighter than the intact ACL there.
    assert float(a[lesion].mean()) > 1.5 * float(b[lesion].mean())


def test_mrnet_writer_layout(tmp_path: Path) -> None:
    root = write_mrnet(tmp_path / "mrnet", 5, seed=2, config=SMALL, valid_fraction=0.4)
    train = sorted(p.name for p in (root / "train" / "axial").iterdir())
    valid = sorted(p.name for p in (root / "valid" / "axial").iterdir())
    assert train == ["0000.npy", "0001.npy", "0002.npy"] and valid == ["0003.npy", "0004.npy"]
    volume = np.load(root / "valid" / "coronal" / "0003.npy")
    assert volume.dtype == np.uint8 and volume.shape[1:] == (256, 256)
    rows = list(csv.reader((root / "valid-acl.csv").open()))
    assert [r[0] for r in rows] == ["0003", "0004"] and {r[1] for r in rows} <= {"0", "1"}
    truth = json.loads((root / "truth.json").read_text())
    assert set(truth) == {f"{i:04d}" for i in range(5)}


def test_dicom_writer_headers_and_pixels_through_pydicom(torn, tmp_path: Path) -> None:
    import pydicom

    root = write_dicom_study(torn, tmp_path / "case", patient=1)
    assert (root / "truth.json").is_file()
    series = torn.series["axial"]
    files = sorted((root / "ax").glob("IM*.dcm"))
    assert len(files) == series.shape[0]
    for index in (0, len(files) - 1):
        ds = pydicom.dcmread(files[index])
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.Modality == "MR" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY"]
        assert str(ds.PatientName) == "PHANTOM^KNEE-0001"
        assert ds.StudyInstanceUID == series.study.study_uid
        assert ds.SeriesInstanceUID == series.uid and ds.InstanceNumber == index + 1
        assert ds.SeriesDescription == "PD FS AX" and ds.SeriesNumber == series.number
        assert (ds.Rows, ds.Columns) == series.shape[1:] and ds.BitsStored in (12, 16)
        np.testing.assert_allclose(
            [float(v) for v in ds.PixelSpacing], series.spacing[1:], rtol=1e-5
        )
        assert float(ds.SpacingBetweenSlices) == pytest.approx(series.spacing[0], abs=1e-3)
        assert float(ds.SliceThickness) <= float(ds.SpacingBetweenSlices) + 1e-3
        np.testing.assert_allclose(
            np.asarray(ds.ImageOrientationPatient, float), series.orientation[:2].ravel(), atol=1e-6
        )
        position = np.asarray(series.origin) + index * series.spacing[0] * series.orientation[2]
        np.testing.assert_allclose(np.asarray(ds.ImagePositionPatient, float), position, atol=1e-3)
        pixels = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_allclose(pixels, series.array[index], atol=1.0)
    uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    assert len(uids) == len(files)


def test_dicom_writer_roundtrip_through_the_loader(torn, tmp_path: Path) -> None:
    io = pytest.importorskip("napari_elnet.io")
    root = write_dicom_study(torn, tmp_path / "case")
    loaded = {s.plane: s for s in io.load_study(root)}
    assert set(loaded) == {"sagittal", "coronal", "axial"}
    for plane, series in torn.series.items():
        got = loaded[plane]
        assert got.shape == series.shape
        np.testing.assert_allclose(got.array, np.round(series.array), atol=1.0)
        np.testing.assert_allclose(got.spacing, series.spacing, rtol=1e-4)
        np.testing.assert_allclose(got.orientation, series.orientation, atol=1e-6)


def test_cli_entry_refuses_a_non_empty_folder_and_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("user data")
    with pytest.raises(ConfigurationError, match="not empty"):
        main_phantom(tmp_path / "x", 1, "mrnet", 0)
    with pytest.raises(ConfigurationError, match="unknown format"):
        main_phantom(tmp_path / "y", 1, "nifti", 0)


def test_invalid_config() -> None:
    with pytest.raises(ConfigurationError, match="unknown contrast"):
        PhantomConfig(contrast="flair")


def test_forced_abnormal_false_clears_tears_and_contradictions_raise() -> None:
    for seed in range(4):
        study = generate_study(seed, SMALL, labels={"abnormal": False})
        assert study.labels == {"abnormal": 0, "acl": 0, "meniscus": 0}
    with pytest.raises(ConfigurationError, match="abnormal=False"):
        generate_study(0, SMALL, labels={"acl": True, "abnormal": False})
    with pytest.raises(ConfigurationError, match="unknown labels"):
        generate_study(0, SMALL, labels={"pcl": True})


def test_a_meniscal_tear_is_bright_on_the_coronal_stack() -> None:
    yes = generate_study(12, SMALL, labels={"acl": False, "meniscus": True, "abnormal": True})
    no = generate_study(12, SMALL, labels={"acl": False, "meniscus": False, "abnormal": False})
    (tear,) = [t for t in yes.truth["coronal"] if t.kind == "meniscal_tear"]
    a, b = yes.series["coronal"].array, no.series["coronal"].array
    assert float(a[tear.mask].mean()) > 1.5 * float(b[tear.mask].mean())


@pytest.mark.parametrize(
    ("contrast", "brighter", "darker"),
    [
        ("pd_fs", Tissue.FLUID, Tissue.CARTILAGE),
        ("pd_fs", Tissue.CARTILAGE, Tissue.FAT),
        ("pd_fs", Tissue.FAT, Tissue.MENISCUS),
        ("t1", Tissue.FAT, Tissue.FLUID),
        ("t1", Tissue.MARROW, Tissue.EDEMA),
        ("t2", Tissue.FLUID, Tissue.CARTILAGE),
    ],
)
def test_contrast_table_orders_tissues(contrast: str, brighter: Tissue, darker: Tissue) -> None:
    table = signal_table(contrast)
    assert table.max() == pytest.approx(1.0)
    assert table[brighter] > table[darker]


def test_t1_study_has_its_description_and_differs() -> None:
    t1 = generate_study(5, PhantomConfig(matrix=(64, 64), slices=(17, 24), contrast="t1"))
    pd = generate_study(5, SMALL)
    assert t1.series["sagittal"].description == "T1 SAG"
    assert not np.allclose(t1.series["sagittal"].array, pd.series["sagittal"].array)


def test_region_resampling_matches_whole_volume_resampling() -> None:
    grid = Grid((-20.0, -20.0, -20.0), (41, 41, 41), 1.0)
    rng = np.random.default_rng(0)
    mask = np.zeros(grid.shape, bool)
    box = (slice(12, 25), slice(8, 30), slice(15, 21))
    mask[box] = rng.random((13, 22, 6)) < 0.6
    for plane in ("sagittal", "coronal", "axial"):
        geometry = stack_geometry(plane, np.array([1.0, -2.0, 0.5]), 36.0, 48, 9, 3.0, 0.5)
        resampler = Resampler.of(grid, geometry)
        whole = resampler(mask.astype(np.float32)) >= 0.3
        np.testing.assert_array_equal(resampler.region(mask[box], box, 0.3), whole)


def test_dicom_dataset_layout(tmp_path: Path) -> None:
    root = write_dicom_dataset(tmp_path / "dicom", 2, seed=4, config=SMALL)
    rows = list(csv.reader((root / "labels.csv").open()))
    assert rows[0] == ["case", "abnormal", "acl", "meniscus"]
    assert [r[0] for r in rows[1:]] == ["case_0000", "case_0001"]
    for case in ("case_0000", "case_0001"):
        assert {p.name for p in (root / case).iterdir()} == {"sag", "cor", "ax", "truth.json"}
        truth = json.loads((root / case / "truth.json").read_text())
        assert set(truth["labels"]) == {"abnormal", "acl", "meniscus"}
