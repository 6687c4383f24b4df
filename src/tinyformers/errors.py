"""Exceptions that mean the caller asked for something wrong, not that tinyformers is broken.

They keep the built-in type transformers raises in the same place (so ``except KeyError`` code written for it
still works), and live in this module without dependencies so that the command line can tell them from bugs
without importing torch.
"""

from __future__ import annotations


class UnknownTaskError(KeyError):
    """``pipeline()`` was given a task name it does not know (a KeyError as in transformers, whose message prints
    without the quotes KeyError adds)."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnexpectedArgumentError(TypeError):
    """A pipeline was given a keyword argument it does not take (a typo would otherwise be silently ignored)."""
