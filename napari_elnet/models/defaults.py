"""The default models shipped inside the package (demonstration weights; see docs/model-card.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from napari_elnet.models.model_file import LoadedModel, load_model
from napari_elnet.models.tasks import TASK_TABLE

DEFAULT_MODEL_FILES: tuple[str, ...] = tuple(task.model_file for task in TASK_TABLE)
"""File names of the shipped models under ``default_models/``, in task order."""


def default_model_paths() -> list[Path]:
    """Paths of the shipped default models that are present, in task order."""
    folder = Path(str(resources.files("napari_elnet.models") / "default_models"))
    return [folder / name for name in DEFAULT_MODEL_FILES if (folder / name).is_file()]


def load_default_models() -> list[LoadedModel]:
    """Load every shipped default model (an empty list when none ship with this build)."""
    return [load_model(path) for path in default_model_paths()]
