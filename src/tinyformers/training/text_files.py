"""Training data from files people already have: CSV/TSV with a header, JSON lines, a JSON list, or plain text
(one example per line). Every problem names the file and the line."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".txt": "text"}


def _lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: not UTF-8 text ({e.reason}); save the file as UTF-8"
        ) from None


def read_records(path: str | os.PathLike) -> list[dict]:
    """The file's examples as dicts (plain text gives ``{"text": line}``, blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"training data '{path}' not found; pass a .csv, .tsv, .jsonl, .json or .txt file"
        )
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"{path}: unknown data format '{path.suffix}'; use .csv, .tsv, .jsonl, .json or .txt"
        )
    lines = _lines(path)
    if kind == "text":
        records = [{"text": line} for line in lines if line.strip()]
    elif kind in ("csv", "tsv"):
        rows = csv.DictReader(lines, delimiter="," if kind == "csv" else "\t")
        records = []
        for row in rows:
            if None in row:
                raise ValueError(
                    f"{path}, line {rows.line_num}: more fields than the header's {len(rows.fieldnames)}; "
                    "quote fields that contain the delimiter"
                )
            records.append(row)
    elif kind == "jsonl":
        records = [_json(line, path, number) for number, line in enumerate(lines, 1) if line.strip()]
    else:
        records = _json("\n".join(lines), path, None)
        if not isinstance(records, list):
            raise ValueError(
                f"{path}: a .json data file must hold a list of objects; use .jsonl for one per line"
            )
    if not records:
        raise ValueError(f"{path} holds no examples; give it at least one")
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise ValueError(
                f"{path}, example {number}: expected an object with named fields, got {record!r:.60}"
            )
    return records


def _json(text: str, path: Path, line: int | None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        where = f"line {line}" if line is not None else f"line {e.lineno}"
        raise ValueError(f"{path}, {where}: not valid JSON ({e.msg}); fix the file") from None
