"""The digital knee phantom: determinism, labels, geometry, lesion truth, writers, speed-free."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.phantom import (
    PhantomConfig,
    generate_study,
    main_phantom,
    write_dicom_study,
    write_mrnet,
)

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


def test_dicom_writer_roundtrip_through_pydicom_and_the_loader(torn, tmp_path: Path) -> None:
    pydicom = pytest.importorskip("pydicom")
    from napari_elnet.io import load_study

    root = write_dicom_study(torn, tmp_path / "case")
    first = pydicom.dcmread(root / "ax" / "IM0001.dcm")
    assert first.Modality == "MR" and first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert first.StudyInstanceUID == torn.series["axial"].study.study_uid
    loaded = {s.plane: s for s in load_study(root)}
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


def test_lesion_truth_slice_margin_and_box_distance() -> None:
    from napari_elnet.phantom import LesionTruth

    truth = LesionTruth("acl_tear", (4, 6), (4, 6, 10, 20, 30, 40), np.zeros((1, 1, 1), bool))
    assert truth.near_slice(3) and truth.near_slice(7) and not truth.near_slice(8)
    assert not truth.near_slice(3, margin=0)
    assert truth.distance((5, 15, 35), (3.0, 0.5, 0.5)) == 0.0
    assert truth.distance((5, 23, 35), (3.0, 0.5, 0.5)) == pytest.approx(1.5)
    assert truth.distance((8, 23, 44), (3.0, 0.5, 0.5)) == pytest.approx(
        np.hypot(6, np.hypot(1.5, 2))
    )
