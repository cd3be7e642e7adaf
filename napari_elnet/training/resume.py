"""Resume state of a training run: the ``<model file>.resume.pt`` sidecar.

Written atomically after every epoch next to the best-checkpoint file; it holds the weights and Adam
state of the *last* finished epoch, the training generator's state, the per-epoch history and the
best result so far, as plain tensors and containers read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from napari_elnet.common.atomic import write_atomic
from napari_elnet.common.errors import ModelFileError

FORMAT = "napari-elnet-resume"
FORMAT_VERSION = 1
SUFFIX = ".resume.pt"


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.pt`` -> ``model.pt.resume.pt``."""
    path = Path(model_path)
    return path.with_name(path.name + SUFFIX)


@dataclass(frozen=True, eq=False)
class ResumeState:
    """Everything needed to continue training after ``epoch`` finished epochs.

    Attributes:
        epoch: Number of finished epochs.
        model: State dict of the model after that epoch.
        optimizer: Adam state dict.
        rng: State of the training ``torch.Generator`` (order, augmentation, dropout).
        history: Per-epoch records so far.
        best: ``epoch``, ``roc_auc``, ``loss`` and ``metrics`` of the best epoch so far.
        landmarks: The run's intensity landmarks (``Landmarks.to_dict()``).
        config: The run's configuration (``dataclasses.asdict(TrainConfig)``).
    """

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: torch.Tensor
    history: list[dict[str, float]]
    best: dict[str, Any]
    landmarks: dict[str, list[float]]
    config: dict[str, Any] = field(default_factory=dict)


def save_resume(path: Path, state: ResumeState) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, then rename)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "epoch": state.epoch,
        "model": {k: v.detach().cpu().clone() for k, v in state.model.items()},
        "optimizer": state.optimizer,
        "rng": state.rng.clone(),
        "history": state.history,
        "best": state.best,
        "landmarks": state.landmarks,
        "config": state.config,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_atomic(path, buffer.getvalue())


def load_resume(path: Path) -> ResumeState:
    """Read a resume sidecar without executing code (``weights_only=True``).

    Raises:
        ModelFileError: missing, unreadable, or not a napari-elnet resume file of this version.
    """
    try:
        payload = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read resume file ({exc.strerror or exc})") from exc
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelFileError(f"{path}: not a readable resume file ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a napari-elnet resume file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: resume format version {payload.get('format_version')!r} is not supported"
        )
    try:
        return ResumeState(
            epoch=int(payload["epoch"]),
            model=payload["model"],
            optimizer=payload["optimizer"],
            rng=payload["rng"],
            history=list(payload["history"]),
            best=dict(payload["best"]),
            landmarks=payload["landmarks"],
            config=dict(payload.get("config", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: incomplete resume file ({exc})") from exc
