"""The error every reader in ``formats`` raises for a file it cannot read (kept apart from the readers so that
a light one, such as the sentencepiece ``.model`` reader, does not import torch with a heavy one)."""


class CorruptWeightsError(ValueError):
    """A weights file is truncated, malformed, or not the format its name says."""
