"""The ``Pipeline`` base class: text in, plain Python results out, shaped exactly as transformers' pipelines.

Each task is one small class with three steps:

* ``preprocess(items, params)`` — a batch of raw inputs -> tokenized tensors (plus whatever postprocess needs);
* ``forward(batch, params)`` — the model, under ``torch.inference_mode``;
* ``postprocess(batch, outputs, params)`` -> one result per input (lists/dicts with transformers' keys).

The base class does the rest: merging the keyword arguments given to ``pipeline(...)`` with those of the call,
batching (``batch_size``), and the three input forms: one input -> one result, a list -> a list, any other
iterable (a generator, a dataset) -> a lazy iterator with a tqdm progress bar.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch

from ..errors import UnexpectedArgumentError
from ..generation.config import DEFAULTS as GENERATION_FIELDS
from ..generation.config import UNSUPPORTED as UNSUPPORTED_GENERATION_FIELDS

# Inputs longer than this many items get a progress bar (when stderr is a terminal); shorter ones stay quiet.
PROGRESS_MIN_ITEMS = 64
# Encoder pipelines sort this many batches' worth of inputs by length at a time: enough for batches of nearly
# equal lengths, few enough that a stream's first results come soon.
SORT_WINDOW = 64


class Pipeline:
    """Shared driver: parameters, batching, single/list/stream inputs. Subclasses define the three steps."""

    task: ClassVar[str] = ""
    auto_class: ClassVar[str] = "AutoModel"
    # Call parameters this task accepts, with their defaults (None = "decide from the model").
    defaults: ClassVar[dict[str, Any]] = {}
    default_batch_size: ClassVar[int] = 1  # transformers' pipelines run one input at a time unless asked

    def __init__(
        self, model, tokenizer, device=None, batch_size: int | None = None, task: str | None = None, **params
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        if device is not None:
            self.model.to(as_torch_device(device))
        self.device = self.model.device
        self.batch_size = batch_size or self.default_batch_size
        self.task = task or type(self).task
        self._params = self.check_params(params)

    # -- parameters ---------------------------------------------------------------------------------------------
    def accepted_params(self) -> set[str]:
        return set(self.defaults)

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Refuse unknown keyword arguments (a typo would otherwise be silently ignored)."""
        unknown = sorted(set(params) - self.accepted_params())
        if unknown:
            raise UnexpectedArgumentError(
                f"the {self.task} pipeline got unexpected argument(s) {', '.join(unknown)}; "
                f"it accepts: {', '.join(sorted(self.accepted_params())) or 'none'}"
            )
        return params

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Hook: turn the merged parameters into what the steps use (e.g. target words into ids)."""
        return params

    # -- driving ------------------------------------------------------------------------------------------------
    def is_single(self, inputs: Any) -> bool:
        return isinstance(inputs, (str, dict))

    def __call__(self, inputs, batch_size: int | None = None, progress: bool | None = None, **params):
        merged = {**self.defaults, **self._params, **self.check_params(params)}
        merged = self.resolve_params(merged)
        batch_size = batch_size or self.batch_size
        if self.is_single(inputs):
            return self.run_batch([inputs], merged)[0]
        if isinstance(inputs, (list, tuple)):
            return list(self.stream(inputs, batch_size, merged, progress, total=len(inputs)))
        if isinstance(inputs, Iterable):
            total = len(inputs) if hasattr(inputs, "__len__") else None
            return self.stream(inputs, batch_size, merged, progress, total)
        raise TypeError(
            f"the {self.task} pipeline takes a str, a list of str or an iterable of them; got {type(inputs).__name__}"
        )

    def stream(self, inputs: Iterable, batch_size: int, params: dict, progress, total) -> Iterator:
        """Results one by one, running the model ``batch_size`` inputs at a time."""
        bar = progress_bar(total, progress, desc=self.task)
        items = iter(inputs)
        try:
            while chunk := list(itertools.islice(items, batch_size)):
                results = self.run_batch(chunk, params)
                # Counted before they are handed out: a consumer that stops asking after the last result
                # (zip with the inputs) would otherwise leave the bar short of its total.
                if bar is not None:
                    bar.update(len(chunk))
                yield from results
        finally:
            if bar is not None:
                bar.close()

    def run_batch(self, items: list, params: dict) -> list:
        if len(items) > 1 and not self.can_pad():
            # No pad token (GPT-2): a padded batch is impossible, so run the items one at a time.
            return [result for item in items for result in self.run_batch([item], params)]
        batch = self.preprocess(items, params)
        with torch.inference_mode():
            outputs = self.forward(batch, params)
        return self.postprocess(batch, outputs, params)

    def can_pad(self) -> bool:
        return self.tokenizer.pad_token is not None

    def group_size(self, batch_size: int | None = None) -> int:
        """How many consecutive inputs ``stream`` computes together. A result depends, to float rounding, on
        the inputs padded beside it, so a job resumed at input ``k`` reproduces the results of an
        uninterrupted run bit for bit only if it starts again at the beginning of ``k``'s group."""
        return batch_size or self.batch_size

    # -- the three steps ----------------------------------------------------------------------------------------
    def preprocess(self, items: list, params: dict) -> dict:
        return {"model_inputs": self.encode(items)}

    def forward(self, batch: dict, params: dict):
        return self.model(**batch["model_inputs"])

    def postprocess(self, batch: dict, outputs, params: dict) -> list:
        raise NotImplementedError

    def encode(self, texts: list, **kwargs) -> dict[str, torch.Tensor]:
        """Tokenize a batch to padded tensors on the model's device (truncated to the model's length)."""
        kwargs.setdefault("truncation", True)
        enc = self.tokenizer(texts, padding=True, return_tensors="pt", **kwargs)
        return enc.to(self.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__})"


class EncoderPipeline(Pipeline):
    """A pipeline whose result for an input depends on that input alone (an encoder and a head), so inputs may
    run in any order: given a list (or any input with a length) and ``batch_size > 1``, ``SORT_WINDOW``
    batches' worth of inputs are tokenised at once and run in batches of inputs of similar token length
    (longest first), and the results come back in input order.
    Sorted batches hold rows of nearly one length, so almost no padding is computed (sentence-transformers'
    ``encode`` sorts too, by characters; token counts are exact). Subclasses define ``tokenize``.
    """

    def tokenize(self, items: list, params: dict) -> dict[str, list]:
        """Token ids of ``items``, unpadded (lists of ids per key); truncated to what the model takes."""
        raise NotImplementedError

    def preprocess(self, items, params):
        return {"model_inputs": self.collate(self.tokenize(items, params))}

    def collate(self, encodings: dict[str, list]) -> dict[str, torch.Tensor]:
        # Rows of one length need no padding, so no pad token: one text through GPT-2, which has none.
        ragged = len({len(ids) for ids in encodings["input_ids"]}) > 1
        return self.tokenizer.pad(encodings, padding=ragged, return_tensors="pt").to(self.device)

    def stream(self, inputs: Iterable, batch_size: int, params: dict, progress, total) -> Iterator:
        if batch_size == 1 or not self.can_pad() or total is None:
            # One row has no padding to save; a generator of unknown length streams each batch as it comes
            # (its inputs may arrive one by one, and its consumer may wait on each result).
            yield from super().stream(inputs, batch_size, params, progress, total)
            return
        bar = progress_bar(total, progress, desc=self.task)
        items = iter(inputs)
        try:
            while window := list(itertools.islice(items, batch_size * SORT_WINDOW)):
                yield from self.run_sorted(window, batch_size, params, bar)
        finally:
            if bar is not None:
                bar.close()

    def group_size(self, batch_size: int | None = None) -> int:
        batch_size = batch_size or self.batch_size
        return batch_size * SORT_WINDOW if batch_size > 1 and self.can_pad() else 1

    def run_sorted(self, items: list, batch_size: int, params: dict, bar=None) -> list:
        """Results of ``items`` in their order, computed in batches of inputs of similar token length."""
        return self.run_encoded(self.tokenize(items, params), batch_size, params, bar)

    def run_encoded(self, encodings: dict[str, list], batch_size: int, params: dict, bar=None) -> list:
        """``run_sorted`` on inputs tokenised beforehand."""
        lengths = [len(ids) for ids in encodings["input_ids"]]
        # Longest first, so that the largest batch (the memory peak) comes at once.
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        results = [None] * len(lengths)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = {"model_inputs": self.collate({k: [v[i] for i in chosen] for k, v in encodings.items()})}
            with torch.inference_mode():
                outputs = self.forward(batch, params)
            for i, result in zip(chosen, self.postprocess(batch, outputs, params), strict=True):
                results[i] = result
            if bar is not None:
                bar.update(len(chosen))
        return results


def progress_bar(total: int | None, progress: bool | None, desc: str):
    """A tqdm bar when asked (progress=True), or automatically for long or unsized inputs on a terminal."""
    if progress is False or (progress is None and total is not None and total < PROGRESS_MIN_ITEMS):
        return None
    from tqdm.auto import tqdm

    # disable=None: silent when stderr is not a terminal (logs, CI, pipes) unless explicitly asked for.
    return tqdm(total=total, desc=desc, unit="item", disable=None if progress is None else False)


def as_torch_device(device) -> torch.device:
    """transformers' device spellings: -1 = CPU, 0.. = that CUDA device, or a str / torch.device."""
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device("cuda", device)
    return torch.device(device)


def rows(mask: torch.Tensor) -> list[torch.Tensor]:
    """The positions of each row's real (non-padding) tokens."""
    return [row.nonzero().squeeze(-1) for row in mask.bool()]


# What generate() takes besides the pipeline's own options: GenerationConfig fields, the transformers options it
# refuses by name (with its own message), and its other keyword arguments.
GENERATE_OPTIONS = (
    set(GENERATION_FIELDS)
    | UNSUPPORTED_GENERATION_FIELDS
    | {"generation_config", "streamer", "decoder_input_ids"}
)


class GeneratingPipeline(Pipeline):
    """A pipeline whose model generates: keyword arguments it does not list itself go to ``generate``."""

    def accepted_params(self) -> set[str]:
        return set(self.defaults) | GENERATE_OPTIONS

    def generate(self, model_inputs: dict, generate_kwargs: dict) -> torch.Tensor:
        """The generated sequences (prompt included), whatever form ``generate`` returns them in."""
        out = self.model.generate(**model_inputs, **generate_kwargs)
        return out.sequences if hasattr(out, "sequences") else out
