"""Model files validated as data (issue 10): schema, finiteness, SHA-256; one ModelFileError each.

Invariants, one test each:

1. Every schema breach is a ModelFileError naming the file and ``metadata.<field>``.
2. Metadata that is not an object, not text, or nested too deep is refused (no RecursionError).
3. A state_dict that is not a dict of text keys and tensors is refused, naming ``state_dict``.
4. All-NaN weights are refused even with a matching SHA-256.
5. A byte flipped in the weights or the metadata fails the SHA-256 check.
6. A format 1 file (no SHA-256) loads with a warning saying corruption cannot be detected.
7. A FIFO or /dev/zero is refused without being read.
8. ModelInfo holds an ELNetConfig; architecture keywords build it and read through it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from napari_elnet.common.errors import ElnetWarning, ModelFileError
from napari_elnet.models.model_file import (
    ModelInfo,
    build_model,
    load_model,
    save_model,
    with_updates,
)
from napari_elnet.models.model_schema import content_sha256
from napari_elnet.nn.elnet import ELNetConfig


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    info = ModelInfo(task="acl", plane="axial", k=1)
    return save_model(tmp_path_factory.mktemp("m") / "m.pt", build_model(info), info)


def _rewrite(source: Path, target: Path, rehash: bool = True, **changes: object) -> Path:
    payload = torch.load(source, weights_only=True)
    payload.update(changes)
    state = payload["state_dict"]
    tensors = isinstance(state, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    )
    if rehash and isinstance(payload["metadata"], str) and tensors:
        payload["sha256"] = content_sha256(payload["metadata"], state)
    torch.save(payload, target)
    return target


def _metadata(saved: Path, **changes: object) -> str:
    data = json.loads(torch.load(saved, weights_only=True)["metadata"]) | changes
    return json.dumps(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("k", "4"),
        ("k", 0),
        ("task", 7),
        ("task", "a b"),
        ("plane", "oblique"),
        ("blur", 100000),
        ("dropout", 1.5),
        ("eps", -1.0),
        ("threshold", float("nan")),
        ("norm", ["layer"]),
        ("demo", "yes"),
        ("landmarks", {"percentiles": [50, 10], "standard": [0, 1]}),
        ("metrics", {"auc": "high"}),
        ("history", [1, 2]),
    ],
)
def test_schema_breach_names_file_and_field(
    saved: Path, tmp_path: Path, field: str, value: object
) -> None:
    path = _rewrite(saved, tmp_path / "bad.pt", metadata=_metadata(saved, **{field: value}))
    with pytest.raises(ModelFileError, match=rf"bad\.pt: metadata\.{field}: "):
        load_model(path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        (42, "expected JSON text"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ("{not json", "not valid JSON"),
        ("{}", "metadata.task: required"),
    ],
)
def test_metadata_that_is_not_an_object(
    saved: Path, tmp_path: Path, metadata: object, message: str
) -> None:
    path = _rewrite(saved, tmp_path / "bad.pt", rehash=False, metadata=metadata)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ([1, 2], "state_dict: expected a dict"),
        ({1: torch.zeros(1)}, "state_dict: key 1 is not text"),
        ({"stem.0.weight": 3}, r"state_dict\['stem.0.weight'\]: expected a tensor"),
        ({"x": torch.zeros(1)}, "state_dict: weights do not fit"),
    ],
)
def test_state_dict_that_is_not_tensors_by_name(
    saved: Path, tmp_path: Path, state: object, message: str
) -> None:
    path = _rewrite(saved, tmp_path / "bad.pt", state_dict=state)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_nan_weights_are_refused(saved: Path, tmp_path: Path) -> None:
    state = torch.load(saved, weights_only=True)["state_dict"]
    state = {
        name: torch.full_like(t, float("nan")) if t.is_floating_point() else t
        for name, t in state.items()
    }
    path = _rewrite(saved, tmp_path / "nan.pt", state_dict=state)
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        load_model(path)


def test_flipped_weight_or_metadata_fails_the_checksum(saved: Path, tmp_path: Path) -> None:
    state = torch.load(saved, weights_only=True)["state_dict"]
    state["classifier.bias"] = state["classifier.bias"] + 1e-3
    path = _rewrite(saved, tmp_path / "flip.pt", rehash=False, state_dict=state)
    with pytest.raises(ModelFileError, match=r"flip\.pt: sha256: .*corrupt"):
        load_model(path)
    path = _rewrite(
        saved, tmp_path / "meta.pt", rehash=False, metadata=_metadata(saved, threshold=0.7)
    )
    with pytest.raises(ModelFileError, match=r"meta\.pt: sha256"):
        load_model(path)


def test_format_1_loads_with_a_warning(saved: Path, tmp_path: Path) -> None:
    payload = torch.load(saved, weights_only=True)
    del payload["sha256"]
    payload["format_version"] = 1
    torch.save(payload, tmp_path / "old.pt")
    with pytest.warns(ElnetWarning, match="corruption cannot be detected"):
        loaded = load_model(tmp_path / "old.pt")
    assert loaded.info.k == 1


def test_special_files_are_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="named pipe"):
        load_model(fifo)
    link = tmp_path / "zero.pt"
    link.symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="character device"):
        load_model(link)


def test_model_info_holds_an_elnet_config() -> None:
    info = ModelInfo(task="acl", plane="axial", k=2, norm="contrast")
    assert info.config == ELNetConfig(k=2, norm="contrast")
    assert (info.k, info.norm, info.blur) == (2, "contrast", 5)
    assert ModelInfo(task="acl", plane="axial", config=ELNetConfig(k=2, norm="contrast")) == info
    changed = with_updates(info, k=3, summary="s")
    assert changed.config == ELNetConfig(k=3, norm="contrast")
    assert changed.summary == "s"
    assert "config" not in json.loads(info.to_json())
    with pytest.raises(TypeError, match="unexpected keyword"):
        ModelInfo(task="acl", plane="axial", width=3)
