"""What the pipeline commands (run, embed, classify, generate) share: texts from the command line, a file or
standard input in; results as tables or JSON, or as JSON lines written while the job runs (see ``jobs``)."""

from __future__ import annotations

import itertools
import json
import os
import sys

from .checkpoints import refuse_untrained
from .common import CommandError, positive_int
from .jobs import (
    INPUT_FORMATS,
    INPUT_HELP,
    LineWriter,
    check_output,
    finished,
    read_records,
    signals_as_interrupts,
    stopped_exit,
)
from .output import print_json, table


def add_pipeline_options(parser, model_help: str) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to process (or use --input)")
    parser.add_argument("--model", help=model_help)
    parser.add_argument(
        "--batch-size", type=positive_int, default=8, help="texts per forward pass (default 8)"
    )
    parser.add_argument("--input", metavar="FILE", help=INPUT_HELP)
    parser.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        help="read --input as this, whatever its name (default: by name)",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help='write the results here as JSON lines, each the input record plus "result", in input order '
        "and as they come: a stopped job keeps what it finished (default: stdout)",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--resume", action="store_true", help="keep the results already in --output and do only the rest"
    )
    existing.add_argument("--force", action="store_true", help="replace an existing --output")


class Sized:
    """An iterable with a length but no list type: the pipeline streams it lazily and knows the total."""

    def __init__(self, items: list):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def check_arguments(args) -> None:
    if args.input and args.texts:
        raise CommandError("give texts on the command line or --input FILE, not both")
    if not args.input and not args.texts:
        raise CommandError("nothing to do: give one or more texts, or --input FILE (- for standard input)")
    if args.output and not args.input:
        raise CommandError("--output needs --input (a JSON lines or text file, or - for standard input)")
    for flag in ("resume", "force"):
        if getattr(args, flag) and not args.output:
            raise CommandError(f"--{flag} needs --output (the file to continue or replace)")


def run_texts(task: str, args, params: dict) -> dict | None:
    """Run ``task`` on the command-line texts, returning ``{"task", "model", "results"}`` for the command to
    print (``show``); or on the --input file, writing JSON lines as they come and returning None."""
    check_arguments(args)
    if args.input:
        run_job(task, args, params)
        return None
    refuse_untrained(task, args.model)
    from ..pipelines import pipeline

    pipe = pipeline(task, model=args.model, batch_size=args.batch_size, **params)
    # An iterable, not a list: one result per text (a list of one text gets transformers' unwrapped result)
    results = list(pipe(Sized(list(args.texts)), progress=False))
    pairs = zip(args.texts, results, strict=True)
    return {
        "task": pipe.task,
        "model": model_name(pipe, args),
        "results": [{"text": t, "result": r} for t, r in pairs],
    }


def model_name(pipe, args) -> str:
    return str(getattr(pipe.model.config, "_name_or_path", args.model))


def run_job(task: str, args, params: dict) -> None:
    """The --input job: check everything that can be checked before the model loads, then stream."""
    records = read_records(args.input, args.input_format)
    refuse_untrained(task, args.model)
    done, size = 0, 0
    if args.output:
        check_output(args.output, args.input, args.resume, args.force)
        if args.resume:
            done, size = finished(args.output, records, args.input)
    summary = {"task": task, "model": args.model, "input": args.input, "output": args.output}
    if done < len(records):
        from ..pipelines import pipeline

        pipe = pipeline(task, model=args.model, batch_size=args.batch_size, **params)
        summary.update(task=pipe.task, model=model_name(pipe, args))
        written = stream_results(pipe, records, done, size, args)
    else:
        written = 0
    if not args.output:
        return  # the JSON lines on stdout are the output
    summary.update(count=done + written, written=written)
    if args.json:
        print_json(summary)
    else:
        already = f" ({done:,} were there already)" if done else ""
        print(f"wrote {written:,} results to {args.output}{already}")


def stream_results(pipe, records: list[dict], done: int, size: int, args) -> int:
    """Run the pipeline on ``records[done:]``, each result written (to --output after its first ``size`` bytes,
    or to stdout) a batch at a time; the number written. A stopped job exits 130 (Ctrl-C) or 143 (SIGTERM)
    with one line saying what it kept."""
    todo = records[done:]
    if args.output:
        resuming = args.resume and os.path.exists(args.output)
        stream = open(args.output, "r+b" if resuming else "wb")  # noqa: SIM115 (closed below)
        stream.truncate(size)
        stream.seek(size)
    else:
        stream = sys.stdout.buffer
    writer = LineWriter(stream, args.batch_size)
    try:
        with signals_as_interrupts():
            # From the start of the group that holds the first missing result, so that every result is computed
            # beside the same inputs as in an uninterrupted run, and comes out bit for bit the same.
            start = done - done % pipe.group_size()
            results = pipe(Sized([r["text"] for r in records[start:]]), progress=True)
            for record, result in zip(todo, itertools.islice(results, done - start, None)):
                writer.add({**record, "result": result})
            writer.flush()
    except KeyboardInterrupt as stop:
        kept = done + writer.written
        where = f"'{args.output}' holds" if args.output else "printed"
        resume = "; run the same command with --resume to finish" if args.output else ""
        raise stopped_exit(stop, f"{where} the first {kept:,} of {len(records):,} results{resume}") from None
    finally:
        if stream is not sys.stdout.buffer:
            stream.close()
    return writer.written


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
