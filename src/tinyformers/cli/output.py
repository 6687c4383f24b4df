"""Plain-text output: aligned tables and key/value listings (no colour: the output goes to logs and pipes as
often as to terminals), or JSON with --json."""

from __future__ import annotations

import json


def cell(value, width: int = 70) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = ", ".join(value)
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 3] + "..."


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of dicts as a plain aligned table; numbers right-aligned."""
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    cells = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), (int, float)) for row in rows) for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_data(data: dict, as_json: bool) -> None:
    """A dict as JSON, or as one line per key (nested dicts and lists of records as indented tables)."""
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            print(
                "\n".join(
                    "  " + line
                    for line in table([{"name": k, "value": v} for k, v in value.items()]).splitlines()[2:]
                )
            )
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"{key}:")
            print("\n".join("  " + line for line in table(value).splitlines()))
        else:
            print(f"{key:<16} {cell(value, width=100) if value is not None else '-'}")
