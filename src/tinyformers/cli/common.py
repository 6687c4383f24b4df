"""What every command shares: its error class, the one-line argparse errors, and how a command is declared."""

from __future__ import annotations

import argparse


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
