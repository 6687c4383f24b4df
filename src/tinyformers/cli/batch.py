"""What the pipeline commands (run, embed, classify, generate) share: texts from the command line or a JSON
lines file in, results as tables, JSON or a JSON lines file (written whole or not at all) out."""

from __future__ import annotations

import json

from ..utils import atomic_writer
from .checkpoints import refuse_untrained
from .common import CommandError
from .output import print_json, table


def add_pipeline_options(parser, model_help: str) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to process (or use --input)")
    parser.add_argument("--model", help=model_help)
    parser.add_argument("--batch-size", type=int, default=8, help="texts per forward pass (default 8)")
    parser.add_argument("--input", metavar="FILE", help='JSON lines file with a "text" field per line')
    parser.add_argument("--output", metavar="FILE", help="write JSON lines here (default: stdout)")


class Sized:
    """An iterable with a length but no list type: the pipeline streams it lazily and knows the total."""

    def __init__(self, items: list):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def read_jsonl(path: str) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CommandError(
                    f"{path} line {number} is not JSON ({e.msg}); write one object per line"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise CommandError(
                    f'{path} line {number} has no "text" string; write {{"text": "..."}} per line'
                )
            records.append(record)
    return records


def write_jsonl(path: str, records) -> int:
    """Write JSON lines through a temp file beside ``path``: a failed job leaves no half file."""
    count = 0
    with atomic_writer(path) as f:
        for record in records:
            f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            count += 1
    return count


def run_texts(task: str, args, params: dict) -> dict | None:
    """Run ``task`` on the command-line texts, returning ``{"task", "model", "results"}`` for the command to
    print (``show``); or on the --input file, printing what it wrote (or the JSON lines) and returning None."""
    from ..pipelines import pipeline

    if args.input and args.texts:
        raise CommandError("give texts on the command line or --input FILE, not both")
    if not args.input and not args.texts:
        raise CommandError("nothing to do: give one or more texts, or --input FILE.jsonl")
    if args.output and not args.input:
        raise CommandError('--output needs --input (a JSON lines file with a "text" field per line)')
    records = read_jsonl(args.input) if args.input else None
    refuse_untrained(task, args.model)
    pipe = pipeline(task, model=args.model, batch_size=args.batch_size, **params)
    model = str(getattr(pipe.model.config, "_name_or_path", args.model))
    if records is None:
        # An iterable, not a list: one result per text (a list of one text gets transformers' unwrapped result)
        results = list(pipe(Sized(list(args.texts)), progress=False))
        pairs = zip(args.texts, results, strict=True)
        return {"task": pipe.task, "model": model, "results": [{"text": t, "result": r} for t, r in pairs]}
    results = pipe(Sized([r["text"] for r in records]), progress=True)
    out = ({**record, "result": result} for record, result in zip(records, results))
    if args.output:
        count = write_jsonl(args.output, out)
        data = {"task": pipe.task, "model": model, "input": args.input, "output": args.output, "count": count}
        if args.json:
            print_json(data)
        else:
            print(f"wrote {count} results to {args.output}")
        return None
    lines = [json.dumps(record, ensure_ascii=False) for record in out]  # JSON lines, with or without --json
    print("\n".join(lines))
    return None


def show(data: dict | None, args, human=None) -> None:
    """``run_texts``' results as JSON with --json, else as ``human(data)`` shows them (default: tables)."""
    if data is not None and args.json:
        print_json(data)
    elif data is not None:
        (human or print_results)(data)


def describe(result) -> str:
    """A pipeline result as plain text: tables for lists of records, sizes for vectors, text for generations."""
    if isinstance(result, dict):
        result = [result]
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        if list(result[0]) == ["generated_text"] and isinstance(result[0]["generated_text"], str):
            return "\n---\n".join(r["generated_text"] for r in result)
        return table(result)
    if (
        isinstance(result, list)
        and result
        and all(isinstance(r, list) and r and isinstance(r[0], dict) for r in result)
    ):
        return "\n\n".join(table(r) for r in result)  # fill-mask with several masks
    if isinstance(result, list) and result and isinstance(result[0], float):
        return f"vector of {len(result)} floats: [{', '.join(f'{v:.4f}' for v in result[:4])}, ...]"
    if isinstance(result, list) and result and isinstance(result[0], list) and isinstance(result[0][0], list):
        return (
            f"features: [{len(result)}, {len(result[0])}, {len(result[0][0])}] (batch, tokens, hidden size)"
        )
    return json.dumps(result, ensure_ascii=False)


def print_results(data: dict) -> None:
    for i, item in enumerate(data["results"]):
        print(("\n" if i else "") + f"> {item['text']}")
        print(describe(item["result"]))
