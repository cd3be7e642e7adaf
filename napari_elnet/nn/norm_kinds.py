"""The two multi-slice normalizations of ELNet, by name (importable without torch)."""

from __future__ import annotations

from typing import Literal

NormKind = Literal["layer", "contrast"]
"""``layer``: statistics per slice; ``contrast``: per slice and channel."""
NORM_KINDS: tuple[NormKind, ...] = ("layer", "contrast")
