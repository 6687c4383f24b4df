"""What every command shares: its error class, the one-line argparse errors, how a command is declared, and the
types of its numeric flags."""

from __future__ import annotations

import argparse
import math


class CommandError(ValueError):
    """A mistake in how a command was called (a missing input, a bad --param)."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (and exit code 2) like every other tinyformers error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_command(subparsers, name: str, summary: str, examples: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand with a one-line summary, examples in its --help, and the --json flag."""
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=f"{summary}\n\nexamples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    # SUPPRESS: `tinyformers --json info X` and `tinyformers info X --json` both work; neither undoes the other.
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of tables"
    )
    return parser


def file_sizes(paths, base) -> dict[str, int]:
    """{path relative to ``base``: size in bytes} for the files among ``paths``, sorted."""
    return {str(p.relative_to(base)): p.stat().st_size for p in sorted(paths) if p.is_file()}


def add_quantize_option(parser) -> None:
    """``--quantize int8`` for the encoder commands (embed, classify)."""
    parser.add_argument(
        "--quantize",
        choices=("int8",),
        help="int8 encoder layers: faster on CPU, results close to but not equal to float32's",
    )


def quantize_param(args) -> dict:
    return {"quantize": args.quantize} if args.quantize else {}


# -- numeric flags ---------------------------------------------------------------------------------------------
# Every numeric flag is declared with one of these as its argparse ``type``, so that a value out of range stops
# the command at once with ``argument --FLAG: must be ..., got 'VALUE'`` (exit code 2) instead of being used:
# a --batch-size of 0 once processed nothing and reported success.


class Number:
    """An argparse type: an int or a float within bounds (``None``: unbounded; ``*_open``: the bound itself is
    excluded), refused with the allowed range in words."""

    def __init__(self, kind: type, low=None, high=None, low_open: bool = False, high_open: bool = False):
        self.kind, self.low, self.high, self.low_open, self.high_open = kind, low, high, low_open, high_open

    def describe(self) -> str:
        noun = "a whole number" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            if self.kind is int:
                return f"{noun} from {self.low} to {self.high}"
            return f"{noun} in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {self.low}"
        if self.high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {self.high}"
        return noun

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not self.within(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value

    def within(self, value) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __repr__(self) -> str:  # argparse names the type in some messages
        return self.describe()


positive_int = Number(int, low=1)
non_negative_int = Number(int, low=0)
positive_float = Number(float, low=0, low_open=True)
non_negative_float = Number(float, low=0)
probability = Number(float, low=0, high=1, low_open=True)  # top-p: (0, 1]
fraction = Number(float, low=0, high=1)  # a share: [0, 1]
port = Number(int, low=1, high=65535)
random_seed = Number(int, low=0, high=2**32 - 1)  # what numpy, torch and transformers' set_seed all accept
