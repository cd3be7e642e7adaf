"""Reading label tables: header-less ``case,label`` rows (MRNet) and ``case,<task>...`` tables."""

from __future__ import annotations

import csv
from pathlib import Path

from napari_elnet.common.errors import ConfigurationError


def _read_rows(path: Path) -> list[list[str]]:
    """Non-empty CSV rows, stripped; raises ConfigurationError naming the file when unreadable."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [[cell.strip() for cell in row] for row in csv.reader(handle)]
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read label file ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigurationError(f"{path}: not a CSV text file ({exc})") from exc
    return [row for row in rows if any(row)]


def parse_label(value: str, path: Path, line: int, column: str = "label") -> int:
    """A 0/1 label from a CSV cell (``1``, ``0``, ``1.0``); ConfigurationError naming file and line."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if number not in (0.0, 1.0):
        raise ConfigurationError(f"{path}: line {line}: {column} must be 0 or 1, got {value!r}")
    return int(number)


def read_case_labels(path: Path) -> dict[str, int]:
    """MRNet's header-less ``case,label`` rows -> {zero-padded case id: label}."""
    labels: dict[str, int] = {}
    for line, row in enumerate(_read_rows(path), start=1):
        if len(row) < 2 or not row[0].isdigit():
            raise ConfigurationError(
                f"{path}: line {line}: expected 'case,label' with a numeric case, got {row!r}"
            )
        case = row[0].zfill(4)
        if case in labels:
            raise ConfigurationError(f"{path}: line {line}: case {case} is listed twice")
        labels[case] = parse_label(row[1], path, line)
    if not labels:
        raise ConfigurationError(f"{path}: no label rows")
    return labels


def read_label_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A table with a header row whose first column is ``case`` -> (task columns, row dicts)."""
    rows = _read_rows(path)
    if not rows:
        raise ConfigurationError(f"{path}: empty label file")
    header = rows[0]
    if not header or header[0].lower() != "case" or len(header) < 2:
        raise ConfigurationError(
            f"{path}: the header must be 'case,<task>,...', got {','.join(header)!r}"
        )
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ConfigurationError(
                f"{path}: line {line}: {len(row)} fields, the header has {len(header)}"
            )
        records.append(dict(zip(header, row, strict=True)))
    return header[1:], records
