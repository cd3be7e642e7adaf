"""Model files: round trip, atomic write, refusal of corrupt, foreign and code-carrying files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from napari_elnet.common.errors import ConfigurationError, ModelFileError
from napari_elnet.models.model_file import ModelInfo, build_model, load_model, save_model
from napari_elnet.models.model_schema import content_sha256
from napari_elnet.nn.elnet import ELNet
from napari_elnet.transforms.intensity import Landmarks


def _info(**changes) -> ModelInfo:
    base = {
        "task": "acl",
        "plane": "axial",
        "k": 2,
        "norm": "contrast",
        "landmarks": Landmarks((1.0, 50.0, 99.0), (0.0, 0.4, 1.0)),
        "summary": "test model",
        "provenance": {"seed": 3, "epochs": 2},
        "metrics": {"roc_auc": 0.75},
        "history": [{"epoch": 1, "loss": 0.6}],
    }
    return ModelInfo(**(base | changes))


def test_roundtrip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    info = _info()
    model = build_model(info, seed=5)
    path = save_model(tmp_path / "m.pt", model, info)
    loaded = load_model(path)
    assert loaded.info == info
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert loaded.model.training is False
    assert len(loaded.sha256) == 64
    assert loaded.identity.startswith("acl/axial m.pt@")


def test_k4_file_is_under_one_megabyte(tmp_path: Path) -> None:
    info = _info(k=4, norm="layer")
    path = save_model(tmp_path / "m.pt", build_model(info), info)
    assert path.stat().st_size < 1_000_000


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    info = _info()
    save_model(tmp_path / "m.pt", build_model(info), info)
    save_model(tmp_path / "m.pt", build_model(info, seed=1), info)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_architecture_mismatch_is_refused_on_save(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="architecture"):
        save_model(tmp_path / "m.pt", ELNet(k=4), _info(k=2))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"missing\.pt: cannot read"):
        load_model(tmp_path / "missing.pt")


def test_corrupt_file(tmp_path: Path) -> None:
    info = _info()
    path = save_model(tmp_path / "m.pt", build_model(info), info)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        ModelFileError, match=r"m\.pt: not a readable model file \(damaged or trunc"
    ):
        load_model(path)


@pytest.mark.parametrize("content", [b"hello\n", b"\0" * 64, b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_a_file_of_another_kind_is_named_as_such(tmp_path: Path, content: bytes) -> None:
    """Not torch's internals (``KeyError: '101'`` for a text file) but what the file is not."""
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as raised:
        load_model(path)
    assert str(raised.value) == f"{path}: not a readable model file (not a PyTorch file)"


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    torch.save(ELNet(k=2).state_dict(), path)
    with pytest.raises(ModelFileError, match="not a napari-elnet model file"):
        load_model(path)


def test_unknown_format_version(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save({"format": "napari-elnet-model", "format_version": 99, "metadata": "{}"}, path)
    with pytest.raises(ModelFileError, match="version 99 is not supported"):
        load_model(path)


def test_weights_that_do_not_fit_the_declared_architecture(tmp_path: Path) -> None:
    info = _info(k=2)
    path = save_model(tmp_path / "m.pt", build_model(info), info)
    payload = torch.load(path, weights_only=True)
    payload["metadata"] = _info(k=4).to_json()
    payload["sha256"] = content_sha256(payload["metadata"], payload["state_dict"])
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="weights do not fit k=4"):
        load_model(path)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/napari-elnet-pwned"),))


def test_loading_never_executes_code(tmp_path: Path) -> None:
    marker = Path("/tmp/napari-elnet-pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump({"format": "napari-elnet-model", "payload": _Exploit()}, handle, protocol=2)
    with pytest.raises(ModelFileError, match=r"evil\.pt: not a readable model file") as raised:
        load_model(path)
    assert not marker.exists()
    message = str(raised.value)
    assert "could run code" in message
    assert "weights_only" not in message  # torch's advice to load it again without the guard


def test_a_torch_file_holding_code_is_refused_without_torch_advice(tmp_path: Path) -> None:
    marker = Path("/tmp/napari-elnet-pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    torch.save({"format": "napari-elnet-model", "payload": _Exploit()}, path)
    with pytest.raises(ModelFileError) as raised:
        load_model(path)
    assert not marker.exists()
    message = str(raised.value)
    assert message.startswith(f"{path}: not a readable model file (it holds Python objects")
    assert "GLOBAL" in message and "weights_only" not in message


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"k": 33}, "k: must be in 1..32"), ({"blur": 6}, "blur: must be in 1..5")],
)
def test_an_architecture_load_model_refuses_cannot_be_described(
    changes: dict, message: str
) -> None:
    """k=33 was accepted, trained and saved, and then the file could never be loaded."""
    with pytest.raises(ConfigurationError, match=message):
        _info(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"plane": "oblique"}, "plane must be"),
        ({"threshold": 1.5}, "threshold"),
        ({"task": "a b"}, "task"),
    ],
)
def test_invalid_info_is_rejected(changes: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _info(**changes)
