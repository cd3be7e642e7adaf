"""The napari sample study: a phantom knee generated on the fly, opened through npe2."""

from __future__ import annotations

import numpy as np
import pytest

from napari_elnet.plugin.sample_data import phantom_sample


def test_sample_layers_have_three_planes_in_mm() -> None:
    layers = phantom_sample()
    names = [kwargs["name"] for _, kwargs, _ in layers]
    assert [n.rsplit("(", 1)[1] for n in names] == ["sagittal)", "coronal)", "axial)"]
    for data, kwargs, kind in layers:
        assert kind == "image" and data.ndim == 3 and data.dtype == np.float32
        assert kwargs["units"] == ("mm", "mm", "mm")
        assert 3.0 <= kwargs["scale"][0] <= 4.6
    assert sum(kwargs["visible"] for _, kwargs, _ in layers) == 1


def test_sample_opens_in_a_viewer(make_napari_viewer) -> None:
    pytest.importorskip("napari")
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-elnet", "knee_phantom")
    assert len(layers) == 3
    assert {layer.metadata["napari_elnet"]["plane"] for layer in layers} == {
        "sagittal",
        "coronal",
        "axial",
    }


def test_default_models_find_the_sample_knees_tears() -> None:
    from napari_elnet.inference.triage import run_triage
    from napari_elnet.models.defaults import load_default_models
    from napari_elnet.phantom import generate_study
    from napari_elnet.plugin.sample_data import SAMPLE_LABELS, SAMPLE_SEED

    study = generate_study(SAMPLE_SEED, labels=SAMPLE_LABELS)
    assert {"acl_tear", "meniscal_tear"} <= set(study.lesions)
    results = run_triage(list(study.series.values()), load_default_models(), device="cpu")
    assert {r.task: r.decision for r in results} == {"acl": 1, "meniscus": 1, "abnormal": 1}
    for result in results:
        truth = study.truth[result.plane]
        assert any(t.near_slice(result.top_slice) for t in truth)
