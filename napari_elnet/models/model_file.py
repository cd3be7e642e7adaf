"""Model files: ELNet weights plus everything needed to use them, loaded without executing code.

A file is a ``torch.save`` of plain containers: ``{"format", "format_version", "metadata" (a JSON
string), "state_dict", "sha256"}`` (plus an optional ``"applicability"`` description, validated by
``napari_elnet.inference.applicability``). It is read with ``torch.load(weights_only=True)``, which
refuses anything but tensors and primitive containers, so a model file cannot run code when it is
opened. Then it is validated as data (``model_schema``): the metadata against its schema, every weight
for type, shape and finiteness, and the SHA-256 of metadata and weights stored at save against the one
recomputed at load. Format 1 files (no SHA-256) still load, with a warning that corruption cannot be
detected. Every failure is a :class:`ModelFileError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from napari_elnet.common.atomic import write_atomic
from napari_elnet.common.errors import ConfigurationError, ElnetWarning, ModelFileError
from napari_elnet.common.series import PLANES, Plane
from napari_elnet.io.files import read_regular_file
from napari_elnet.models import model_schema
from napari_elnet.nn.elnet import ELNet, ELNetConfig
from napari_elnet.nn.norm_kinds import NormKind
from napari_elnet.transforms.intensity import Landmarks

FORMAT = "napari-elnet-model"
FORMAT_VERSION = 2
"""2: adds ``sha256`` (metadata and weights); 1: no checksum (still read, with a warning)."""
READABLE_VERSIONS = (1, 2)
MAX_FILE_BYTES = 256 * 2**20
"""Largest model file read (a k = 32 ELNet is ~54 MB)."""
_ARCHITECTURE = tuple(f.name for f in dataclasses.fields(ELNetConfig))


@dataclass(frozen=True, init=False)
class ModelInfo:
    """What a model file says about its model.

    Construct with ``config=ELNetConfig(...)``; the architecture keywords ``k``, ``norm``, ``blur``,
    ``dropout`` and ``eps`` are accepted as a shorthand that builds (or changes) that config, and are
    readable as properties. They are stored once, in ``config``.

    Attributes:
        task: Label the model predicts (``acl``, ``meniscus``, ``abnormal`` or a user's own).
        plane: Plane of the series it reads.
        config: ELNet architecture.
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
    config: ELNetConfig
    landmarks: Landmarks | None
    threshold: float
    summary: str
    demo: bool
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)

    def __init__(
        self,
        task: str,
        plane: Plane,
        config: ELNetConfig | None = None,
        landmarks: Landmarks | None = None,
        threshold: float = 0.5,
        summary: str = "",
        demo: bool = False,
        provenance: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        history: list[dict[str, float]] | None = None,
        **architecture: Any,
    ) -> None:
        unknown = sorted(set(architecture) - set(_ARCHITECTURE))
        if unknown:
            raise TypeError(f"ModelInfo got unexpected keyword argument(s) {unknown}")
        base = config if config is not None else ELNetConfig()
        values = {
            "task": task,
            "plane": plane,
            "config": dataclasses.replace(base, **architecture) if architecture else base,
            "landmarks": landmarks,
            "threshold": threshold,
            "summary": summary,
            "demo": demo,
            "provenance": {} if provenance is None else provenance,
            "metrics": {} if metrics is None else metrics,
            "history": [] if history is None else history,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    @property
    def k(self) -> int:
        """Width multiplier of the architecture."""
        return self.config.k

    @property
    def norm(self) -> NormKind:
        """Multi-slice normalization kind."""
        return self.config.norm

    @property
    def blur(self) -> int:
        """BlurPool filter size."""
        return self.config.blur

    @property
    def dropout(self) -> float:
        """Dropout probability before the classifier."""
        return self.config.dropout

    @property
    def eps(self) -> float:
        """Normalization epsilon."""
        return self.config.eps

    def __post_init__(self) -> None:
        if not self.task or not self.task.replace("_", "").isalnum():
            raise ConfigurationError(f"task must be a word (letters, digits, _), got {self.task!r}")
        if self.plane not in PLANES:
            raise ConfigurationError(f"plane must be one of {PLANES}, got {self.plane!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigurationError(f"threshold must be in (0, 1), got {self.threshold}")
        for name in _ARCHITECTURE:  # the ranges load_model checks: never save what cannot load
            problem = model_schema.FIELDS[name][0](getattr(self.config, name))
            if problem is not None:
                raise ConfigurationError(f"{name}: {problem}")

    def to_json(self) -> str:
        """JSON text of all fields (the architecture flat: ``k``, ``norm``, ... as in format 1)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data.update(dataclasses.asdict(data.pop("config")))
        data["landmarks"] = self.landmarks.to_dict() if self.landmarks else None
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: object) -> ModelInfo:
        """Inverse of :meth:`to_json`, validated against ``model_schema.FIELDS`` (unknown keys ignored).

        Raises:
            model_schema.SchemaError: the text breaks the schema (the message names the field).
        """
        data = model_schema.checked_metadata(model_schema.parse_metadata(text))
        config = ELNetConfig(**{name: data.pop(name) for name in _ARCHITECTURE})
        if data.get("landmarks") is not None:
            try:
                data["landmarks"] = Landmarks.from_dict(data["landmarks"])
            except ConfigurationError as error:
                raise model_schema.SchemaError(f"metadata.landmarks: {error}") from None
        return cls(config=config, **data)


def build_model(info: ModelInfo, seed: int = 0) -> ELNet:
    """A freshly initialized ELNet with the architecture ``info`` describes."""
    cfg = info.config
    return ELNet(k=cfg.k, norm=cfg.norm, blur=cfg.blur, dropout=cfg.dropout, eps=cfg.eps, seed=seed)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to run, with its metadata and where it came from."""

    model: ELNet
    info: ModelInfo
    path: Path | None = None
    sha256: str = ""
    applicability: dict[str, Any] | None = None
    """Description of the training inputs (plain tensors + JSON), read and validated by
    ``napari_elnet.inference.applicability.description_of``; None in files without one."""

    @property
    def identity(self) -> str:
        """Short stable name: ``task/plane file@sha256-prefix``."""
        name = self.path.name if self.path else "in-memory"
        return f"{self.info.task}/{self.info.plane} {name}@{self.sha256[:12] or 'unsaved'}"


def save_model(
    path: str | os.PathLike,
    model: ELNet,
    info: ModelInfo,
    applicability: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` and ``info`` to ``path`` atomically (temporary file, then rename).

    The architecture in ``info`` must match the model's. ``applicability``: the description of
    the training inputs (``TrainingDescription.to_payload()``), stored under its own key.
    """
    if info.config != model.config:
        raise ConfigurationError(f"model info architecture {info.config} != model's {model.config}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    metadata = info.to_json()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": metadata,
        "state_dict": state,
        "sha256": model_schema.content_sha256(metadata, state),
    }
    if applicability is not None:
        payload["applicability"] = dict(applicability)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_atomic(path, buffer.getvalue())


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Read a model file (on the CPU) without executing any code from it, validated as data.

    Raises:
        ModelFileError: the file is missing, not a regular file, larger than ``MAX_FILE_BYTES``,
            unreadable, not a napari-elnet model, of an unknown format version, its metadata breaks
            the schema, its weights are not finite or do not fit its declared architecture, or its
            SHA-256 does not match (corrupt). The message names the file and the field.
    """
    path = Path(path)
    try:
        raw = read_regular_file(path, max_bytes=MAX_FILE_BYTES)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model file ({exc.strerror or exc})") from exc
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        reason = unreadable_reason(raw, exc)
        raise ModelFileError(f"{path}: not a readable model file ({reason})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a napari-elnet model file (no '{FORMAT}' marker)")
    version = payload.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{path}: model format version {str(version)[:40]} is not supported "
            f"(expected one of {READABLE_VERSIONS})"
        )
    try:
        info = ModelInfo.from_json(payload.get("metadata"))
        state = model_schema.check_state_dict(payload.get("state_dict"))
        _check_sha256(payload, state, version)
    except (model_schema.SchemaError, ConfigurationError) as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if version == 1:
        warnings.warn(
            f"{path}: model format 1 has no SHA-256 of its weights: corruption cannot be detected "
            "(save it again to add one)",
            ElnetWarning,
            stacklevel=2,
        )
    model = build_model(info)
    try:
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0][:300]
        raise ModelFileError(
            f"{path}: state_dict: weights do not fit k={info.k} {info.norm} ELNet ({reason})"
        ) from exc
    model.eval()
    applicability = payload.get("applicability")
    if applicability is not None and not isinstance(applicability, dict):
        raise ModelFileError(f"{path}: invalid applicability description (not a mapping)")
    return LoadedModel(model, info, path, hashlib.sha256(raw).hexdigest(), applicability)


TORCH_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x80")
"""How a ``torch.save`` file starts: a ZIP archive (an empty one too), or a legacy pickle."""


def unreadable_reason(raw: bytes, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused the bytes ``raw``, in the user's terms.

    torch's own messages describe its internals, and for a file holding code (a pickled function)
    they suggest loading it again with ``weights_only=False``, which would run that code: that
    advice is never passed on.
    """
    if not raw.startswith(TORCH_MAGIC):
        return "not a PyTorch file"
    text = str(exc).strip()
    if "weights only load failed" in text.lower():
        details = [line.strip() for line in text.splitlines() if "unsupported" in line.lower()]
        detail = f": {details[0][:200]}" if details else ""
        return (
            "it holds Python objects other than tensors and plain containers, refused because "
            f"loading them could run code{detail}"
        )
    first = text.splitlines()[0].split(". ")[0][:200] if text else type(exc).__name__
    return f"damaged or truncated: {first}"  # torch's first sentence, without its speculation


def _check_sha256(payload: dict[str, Any], state: dict[str, torch.Tensor], version: int) -> None:
    """Compare the stored SHA-256 with the one recomputed from metadata and weights (format 2)."""
    if version < 2:
        return
    stored = payload.get("sha256")
    if not isinstance(stored, str) or len(stored) != 64:
        raise model_schema.SchemaError("sha256: missing or not a SHA-256 hex digest")
    actual = model_schema.content_sha256(payload["metadata"], state)
    if actual != stored:
        raise model_schema.SchemaError(
            f"sha256: stored {stored[:12]}... but metadata and weights hash to {actual[:12]}... "
            "(the file is corrupt)"
        )


def with_updates(info: ModelInfo, **changes: Any) -> ModelInfo:
    """A copy of ``info`` with some fields changed (validated again); architecture keywords
    (``k``, ``norm``, ...) change its ``config``."""
    return dataclasses.replace(info, **changes)
