"""Which model each task uses: model files the user picked win over the shipped defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch stays out of the widgets' import
    from napari_elnet.models.model_file import LoadedModel


@dataclass
class ModelChoice:
    """The defaults and the user's picks, one model per task.

    Attributes:
        defaults: The shipped models (may arrive after the user has picked files).
        picked: Model files the user chose, by task.
    """

    defaults: list[LoadedModel] = field(default_factory=list)
    picked: dict[str, LoadedModel] = field(default_factory=dict)

    def models(self) -> list[LoadedModel]:
        """Defaults whose task the user has not overridden, then the user's picks."""
        kept = [m for m in self.defaults if m.info.task not in self.picked]
        return [*kept, *self.picked.values()]

    def pick(self, loaded: LoadedModel) -> None:
        """Use ``loaded`` for its task from now on."""
        self.picked[loaded.info.task] = loaded

    def forget_picks(self) -> None:
        """Back to the defaults only."""
        self.picked.clear()
