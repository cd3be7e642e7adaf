"""The schema of a model file's contents: metadata fields with their types and ranges, weight checks,
and the SHA-256 that ties metadata and weights together.

Every check raises :class:`SchemaError` naming the field (``metadata.k``, ``state_dict['stem.0.weight']``)
and what was wrong; :func:`napari_elnet.models.model_file.load_model` adds the file name.

Metadata fields (JSON, one object):

============  ================================================  =====================
field         type and range                                    default when absent
============  ================================================  =====================
task          word (letters, digits, ``_``), 1-64 characters    required
plane         ``axial``, ``coronal`` or ``sagittal``            required
k             integer 1-32                                      4
norm          ``layer`` or ``contrast``                         ``layer``
blur          integer 1-5 (a larger filter does not fit the     5
              feature maps of a 256 x 256 input)
dropout       number in [0, 1)                                  0.2
eps           number in (0, 0.1]                                1e-5
threshold     number in (0, 1)                                  0.5
landmarks     null or {percentiles, standard}: 2-64 finite      null
              numbers each (see ``Landmarks``)
summary       text up to 10,000 characters                      ""
demo          true or false                                     false
provenance    object                                            {}
metrics       object of numbers (NaN allowed: an undefined AUC)  {}
history       list of objects                                   []
============  ================================================  =====================

Unknown fields are ignored (files from newer minor versions). The metadata text is at most
``MAX_METADATA_CHARS`` and nested at most ``MAX_JSON_DEPTH`` deep.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from napari_elnet.common.errors import ConfigurationError
from napari_elnet.common.series import PLANES
from napari_elnet.nn.norm_kinds import NORM_KINDS

MAX_METADATA_CHARS = 4 * 2**20
MAX_JSON_DEPTH = 32
MAX_K = 32
MAX_BLUR = 5


class SchemaError(ValueError):
    """A model file's content breaks the schema; the message names the field."""


def _depth(text: str) -> int:
    """Deepest nesting of JSON brackets in ``text`` (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_metadata(text: object) -> dict[str, Any]:
    """The metadata object from its JSON text, with size and nesting bounded.

    Raises:
        SchemaError: not text, too long, too deep, not JSON, or not an object.
    """
    if not isinstance(text, str):
        raise SchemaError(f"metadata: expected JSON text, got {type(text).__name__}")
    if len(text) > MAX_METADATA_CHARS:
        raise SchemaError(f"metadata: {len(text)} characters, more than {MAX_METADATA_CHARS}")
    if _depth(text) > MAX_JSON_DEPTH:
        raise SchemaError(f"metadata: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SchemaError(f"metadata: not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise SchemaError(f"metadata: expected a JSON object, got {type(data).__name__}")
    return data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"expected an integer, got {type(value).__name__} {_short(value)}"
        return None if low <= value <= high else f"must be in {low}..{high}, got {value}"

    return check


def _real(low: float, high: float, low_open: bool, high_open: bool) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not _number(value):
            return f"expected a number, got {type(value).__name__} {_short(value)}"
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if math.isfinite(value) and above and below:
            return None
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"must be in {left}{low:g}, {high:g}{right}, got {value!r}"

    return check


def _choice(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return (
            None
            if isinstance(value, str) and value in options
            else (f"must be one of {options}, got {_short(value)}")
        )

    return check


def _task(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected text, got {type(value).__name__} {_short(value)}"
    if not 1 <= len(value) <= 64 or not value.replace("_", "").isalnum() or not value.isascii():
        return f"must be a word of 1-64 letters, digits or _, got {_short(value)}"
    return None


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected text, got {type(value).__name__}"
    return None if len(value) <= 10_000 else f"longer than 10000 characters ({len(value)})"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {_short(value)}"


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"expected an object, got {type(value).__name__}"


def _metrics(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"expected an object, got {type(value).__name__}"
    for key, item in value.items():
        if not _number(item):
            return f"{key!r}: expected a number, got {type(item).__name__} {_short(item)}"
    return None


def _history(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected a list, got {type(value).__name__}"
    bad = next((i for i, item in enumerate(value) if not isinstance(item, dict)), None)
    return None if bad is None else f"entry {bad}: expected an object"


def _landmarks(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"percentiles", "standard"}:
        return "expected null or an object with exactly 'percentiles' and 'standard'"
    for key in ("percentiles", "standard"):
        items = value[key]
        if not isinstance(items, list) or not 2 <= len(items) <= 64:
            return f"{key}: expected a list of 2-64 numbers"
        if not all(_number(v) and math.isfinite(v) for v in items):
            return f"{key}: expected finite numbers"
    return None


#: field -> (check returning an error or None, default when absent; ``...`` = required)
FIELDS: dict[str, tuple[Callable[[Any], str | None], Any]] = {
    "task": (_task, ...),
    "plane": (_choice(PLANES), ...),
    "k": (_integer(1, MAX_K), 4),
    "norm": (_choice(NORM_KINDS), "layer"),
    "blur": (_integer(1, MAX_BLUR), 5),
    "dropout": (_real(0.0, 1.0, False, True), 0.2),
    "eps": (_real(0.0, 0.1, True, False), 1e-5),
    "threshold": (_real(0.0, 1.0, True, True), 0.5),
    "landmarks": (_landmarks, None),
    "summary": (_text, ""),
    "demo": (_boolean, False),
    "provenance": (_object, {}),
    "metrics": (_metrics, {}),
    "history": (_history, []),
}


def checked_metadata(data: Mapping[str, Any]) -> dict[str, Any]:
    """The known metadata fields, each checked against :data:`FIELDS`, defaults filled in.

    Raises:
        SchemaError: a required field is missing or a field breaks its rule (named as ``metadata.X``).
    """
    out: dict[str, Any] = {}
    for name, (check, default) in FIELDS.items():
        if name not in data:
            if default is ...:
                raise SchemaError(f"metadata.{name}: required field is missing")
            out[name] = default
            continue
        problem = check(data[name])
        if problem is not None:
            raise SchemaError(f"metadata.{name}: {problem}")
        out[name] = data[name]
    return out


def check_state_dict(state: object) -> dict[str, torch.Tensor]:
    """A dict of name -> tensor whose floating-point values are all finite.

    Raises:
        SchemaError: not a dict, a key that is not text, a value that is not a tensor, or a
            non-finite weight (named as ``state_dict['name']``).
    """
    if not isinstance(state, dict):
        raise SchemaError(f"state_dict: expected a dict of tensors, got {type(state).__name__}")
    for name, tensor in state.items():
        if not isinstance(name, str):
            raise SchemaError(f"state_dict: key {_short(name)} is not text")
        if not isinstance(tensor, torch.Tensor):
            raise SchemaError(
                f"state_dict[{name!r}]: expected a tensor, got {type(tensor).__name__}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise SchemaError(f"state_dict[{name!r}]: holds NaN or infinite weights")
    return state


def content_sha256(metadata: str, state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the metadata text and every tensor (name, dtype, shape, bytes) in name order.

    It is stored in the file at save and recomputed at load: a flipped byte anywhere in the metadata
    or the weights changes it.
    """
    digest = hashlib.sha256(metadata.encode("utf-8"))
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"\n{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def configuration_problem(error: ConfigurationError) -> SchemaError:
    """A SchemaError for a ConfigurationError raised while building the model info (landmarks)."""
    return SchemaError(f"metadata: {error}")


def _short(value: Any) -> str:
    """repr of a value, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
