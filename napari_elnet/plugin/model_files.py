"""Opening a model file from a widget: the file's problem becomes a napari error, not a crash."""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napari_elnet.models.model_file import LoadedModel


def load_or_report(path: str | PathLike) -> LoadedModel | None:
    """The model in ``path``, or None after showing why it cannot be used."""
    from napari.utils.notifications import show_error

    from napari_elnet.common.errors import ElnetError
    from napari_elnet.models.model_file import load_model

    try:
        return load_model(path)
    except ElnetError as exc:
        show_error(str(exc))
        return None
