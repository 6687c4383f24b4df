"""The ``tinyformers`` command: ``main`` builds one argparse parser from the command modules in ``COMMANDS``.

Adding a command (or a group of commands, such as ``hub``): write a module in this package with

* ``add_parser(subparsers)`` — add the command with ``common.add_command(subparsers, name, summary, examples)``
  (one line of help, examples, and the ``--json`` flag), declare its options, and point it at its handler
  with ``parser.set_defaults(handler=...)``; a group adds its own subparsers, one handler per subcommand;
* the handler(s), ``handler(args) -> int | None``: print the result (``output.print_data`` for a dict, shown as
  a table or as JSON with ``--json``) and return the exit code (``None`` means 0);

then add the module to ``COMMANDS`` in ``main.py`` — one line. A mistake of the user (a bad file, a bad
argument) is an exception of one of ``main.USER_ERRORS`` (``common.CommandError`` for the CLI's own): it prints
as one line with exit code 2. Any other exception is a bug and keeps its traceback.
"""

from .main import COMMANDS, USER_ERRORS, build_parser, main

__all__ = ["COMMANDS", "USER_ERRORS", "build_parser", "main"]
