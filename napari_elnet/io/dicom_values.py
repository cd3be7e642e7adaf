"""Typed values from a pydicom Dataset, parsed from the raw bytes when pydicom has not converted them yet.

Loading a folder reads a handful of numbers from every header; pydicom's general value conversion is
the larger part of that cost, so decimal and integer strings (DS, IS) and ASCII codes (UI, CS) are
parsed here directly. Anything else, or an element pydicom already converted, goes through pydicom.

Every value is read through :func:`raw_value`, the one guarded reader: a damaged header (a wrong
length, an unknown VR, a character set that cannot decode, a sequence that is not one) gives "absent"
instead of pydicom's exception, so one flipped bit never escapes as a crash.
"""

from __future__ import annotations

import math
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import Tag

_ASCII_VRS = frozenset({None, "DS", "IS", "UI", "CS"})
_PADDING = " \0"


def _tag(keyword: str) -> int:
    """The tag of a keyword."""
    return int(Tag(keyword))


def raw_value(ds: Dataset, keyword: str) -> Any:
    """The value of an element: raw bytes for a DS/IS/UI/CS element pydicom has not converted yet,
    else pydicom's converted value; None when absent or when reading it fails in any way.

    pydicom raises many types on damaged headers (BytesLengthException, OSError, NotImplementedError
    for an unknown VR, IndexError/LookupError in character set decoding, ...): all mean "unreadable".
    """
    try:
        tag = _tag(keyword)
        if tag not in ds:
            return None
        element = ds.get_item(tag)
        value = element.value
        if isinstance(value, bytes) and element.VR in _ASCII_VRS:
            return value
        return ds[tag].value
    except Exception:  # see the docstring: any failure is an unreadable value
        return None


def sequence_items(ds: Dataset | None, keyword: str) -> list[Dataset]:
    """The items of a sequence element (only real Dataset items); empty when absent or unreadable."""
    if ds is None:
        return []
    value = raw_value(ds, keyword)
    try:
        return [item for item in value if isinstance(item, Dataset)] if value is not None else []
    except TypeError:  # a damaged VR made it a non-sequence value
        return []


def _parts(ds: Dataset, keyword: str) -> list[Any] | None:
    """The values of an element as a list (raw ASCII split at backslashes), or None when absent."""
    value = raw_value(ds, keyword)
    if isinstance(value, bytes):
        return value.decode("latin-1").split("\\")
    if value is None:
        return None
    if isinstance(value, str | bytes):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def numbers(ds: Dataset, keyword: str) -> tuple[float, ...] | None:
    """All values of a numeric element as finite floats, or None when absent, empty or unparseable."""
    parts = _parts(ds, keyword)
    if not parts:
        return None
    try:
        values = tuple(float(str(part).strip(_PADDING)) for part in parts)
    except (ValueError, TypeError, OverflowError):
        return None
    return values if all(math.isfinite(v) for v in values) else None


def number(ds: Dataset, keyword: str) -> float | None:
    """The first value of a numeric element, or None."""
    values = numbers(ds, keyword)
    return values[0] if values else None


def integer(ds: Dataset, keyword: str) -> int | None:
    """The first value of a numeric element as an int, or None."""
    value = number(ds, keyword)
    return int(value) if value is not None and value.is_integer() else None


def codes(ds: Dataset, keyword: str) -> tuple[str, ...]:
    """The values of a code or UID element as stripped strings (empty when absent)."""
    parts = _parts(ds, keyword)
    return tuple(str(part).strip(_PADDING) for part in parts) if parts else ()


def text(ds: Dataset, keyword: str) -> str:
    """A descriptive element (LO, PN, DA, ...) as text through pydicom's character sets; "" if absent."""
    value = raw_value(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, bytes):  # a UI/CS value not converted yet
        return value.decode("latin-1").strip(_PADDING)
    try:
        return str(value)
    except Exception:  # character set decoding of a damaged value
        return ""
