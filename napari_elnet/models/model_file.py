"""Model files: ELNet weights plus everything needed to use them, loaded without executing code.

A file is a ``torch.save`` of plain containers: ``{"format", "format_version", "metadata" (a JSON
string), "state_dict"}``. It is read with ``torch.load(weights_only=True)``, which refuses anything but
tensors and primitive containers, so a model file cannot run code when it is opened.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from napari_elnet.common.errors import ConfigurationError, ModelFileError
from napari_elnet.common.series import PLANES, Plane
from napari_elnet.nn.elnet import ELNet
from napari_elnet.nn.norm_kinds import NormKind
from napari_elnet.transforms.intensity import Landmarks

FORMAT = "napari-elnet-model"
FORMAT_VERSION = 1
TASKS: tuple[str, ...] = ("acl", "meniscus", "abnormal")
"""The MRNet tasks; models for other labels are allowed and keep their own task name."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about its model.

    Attributes:
        task: Label the model predicts (``acl``, ``meniscus``, ``abnormal`` or a user's own).
        plane: Plane of the series it reads.
        k, norm, blur, dropout, eps: ELNet architecture.
        landmarks: Intensity landmarks fit on its training set, or None (per-volume fallback).
        threshold: Probability at and above which the decision is positive.
        summary: One-line description shown to users (from the model card).
        demo: True for demonstration weights that must not be used clinically.
        provenance: How it was trained (data, split, seed, epochs, lr, date, software version).
        metrics: Validation metrics of the saved checkpoint (accuracy, sensitivity, ...).
        history: Per-epoch training records.
    """

    task: str
    plane: Plane
    k: int = 4
    norm: NormKind = "layer"
    blur: int = 5
    dropout: float = 0.2
    eps: float = 1e-5
    landmarks: Landmarks | None = None
    threshold: float = 0.5
    summary: str = ""
    demo: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.task or not self.task.replace("_", "").isalnum():
            raise ConfigurationError(f"task must be a word (letters, digits, _), got {self.task!r}")
        if self.plane not in PLANES:
            raise ConfigurationError(f"plane must be one of {PLANES}, got {self.plane!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigurationError(f"threshold must be in (0, 1), got {self.threshold}")

    def to_json(self) -> str:
        """JSON text of all fields."""
        data = asdict(self)
        data["landmarks"] = self.landmarks.to_dict() if self.landmarks else None
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        """Inverse of :meth:`to_json`; unknown keys are ignored (files from newer minor versions)."""
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        data = {key: value for key, value in data.items() if key in known}
        if data.get("landmarks") is not None:
            data["landmarks"] = Landmarks.from_dict(data["landmarks"])
        return cls(**data)


def build_model(info: ModelInfo, seed: int = 0) -> ELNet:
    """A freshly initialized ELNet with the architecture ``info`` describes."""
    return ELNet(
        k=info.k, norm=info.norm, blur=info.blur, dropout=info.dropout, eps=info.eps, seed=seed
    )


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to run, with its metadata and where it came from."""

    model: ELNet
    info: ModelInfo
    path: Path | None = None
    sha256: str = ""

    @property
    def identity(self) -> str:
        """Short stable name: ``task/plane file@sha256-prefix``."""
        name = self.path.name if self.path else "in-memory"
        return f"{self.info.task}/{self.info.plane} {name}@{self.sha256[:12] or 'unsaved'}"


def save_model(path: str | os.PathLike, model: ELNet, info: ModelInfo) -> Path:
    """Write ``model`` and ``info`` to ``path`` atomically (temporary file, then rename).

    The architecture in ``info`` must match the model's.
    """
    cfg = model.config
    wanted = (info.k, info.norm, info.blur, info.dropout, info.eps)
    actual = (cfg.k, cfg.norm, cfg.blur, cfg.dropout, cfg.eps)
    if wanted != actual:
        raise ConfigurationError(f"model info architecture {wanted} != model's {actual}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": info.to_json(),
        "state_dict": state,
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a model is not secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Read a model file (on the CPU) without executing any code from it.

    Raises:
        ModelFileError: the file is missing, unreadable, not a napari-elnet model, of an unknown
            format version, or its weights do not fit its declared architecture.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model file ({exc.strerror or exc})") from exc
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: not a readable model file ({first_line})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a napari-elnet model file (no '{FORMAT}' marker)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {version!r} is not supported (expected {FORMAT_VERSION})"
        )
    try:
        info = ModelInfo.from_json(payload["metadata"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid model metadata ({exc})") from exc
    model = build_model(info)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ModelFileError(
            f"{path}: weights do not fit k={info.k} {info.norm} ELNet ({reason})"
        ) from exc
    model.eval()
    return LoadedModel(model, info, path, hashlib.sha256(raw).hexdigest())


def with_updates(info: ModelInfo, **changes: Any) -> ModelInfo:
    """A copy of ``info`` with some fields changed (validated again)."""
    return replace(info, **changes)
