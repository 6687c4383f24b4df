"""Datasets in, batches out: which datasets the Trainer takes, which columns it keeps, and in what order the
examples come (shuffled by a seeded permutation per epoch, grouped by length, and split across processes).

The order is a pure function of (seed, epoch, rank, world size): resuming a run skips the batches already seen
without loading them, and 2 processes with batch B see exactly the examples 1 process with batch 2B sees.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

# Columns a head's forward may take besides its own parameters (our heads pass **kwargs to their backbone).
MODEL_INPUTS = {
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "inputs_embeds",
    "decoder_input_ids",
    "decoder_attention_mask",
}
LABEL_COLUMNS = ("labels", "label", "label_ids")


def check_dataset(dataset: Any, name: str) -> Any:
    """A list of dicts, a map-style torch Dataset or a ``datasets.Dataset``; anything empty or unindexable fails."""
    if dataset is None:
        return None
    if isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"{name} must be a list of dicts, a map-style torch Dataset or a datasets.Dataset, "
            f"not {type(dataset).__name__} (iterable datasets have no length to plan epochs with)"
        )
    if not hasattr(dataset, "__len__"):
        raise TypeError(f"{name} ({type(dataset).__name__}) has no __len__; give it one or use a list")
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty; give it at least one example")
    first = dataset[0]
    if not isinstance(first, Mapping):
        raise TypeError(
            f"{name}[0] is a {type(first).__name__}; examples must be dicts of column -> value "
            "(e.g. {'input_ids': [...], 'label': 1})"
        )
    return dataset


def columns_of(dataset: Any) -> list[str]:
    names = getattr(dataset, "column_names", None)  # datasets.Dataset knows without reading a row
    return list(names) if names is not None else list(dataset[0])


def model_columns(model: torch.nn.Module, label_names: Sequence[str] | None) -> set[str]:
    """The columns worth passing on: the forward's named parameters, the usual inputs, and the labels."""
    params = inspect.signature(model.forward).parameters
    named = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named | MODEL_INPUTS | set(LABEL_COLUMNS) | set(label_names or ()) | {"special_tokens_mask"}


def check_columns(dataset: Any, name: str, needs_labels: bool) -> None:
    """The first example must have model inputs (and, for training, a label unless the collator makes them)."""
    columns = columns_of(dataset)
    if not any(c in columns for c in ("input_ids", "inputs_embeds")):
        raise ValueError(
            f"{name} has columns {columns} but no 'input_ids'; tokenize the text first "
            "(e.g. [dict(tokenizer(row['text']), label=row['label']) for row in rows])"
        )
    if needs_labels and not any(c in columns for c in LABEL_COLUMNS):
        raise ValueError(
            f"{name} has columns {columns} but no 'label'/'labels' column; add the labels, or use a collator "
            "that makes them (DataCollatorForLanguageModeling)"
        )


class KeepColumns:
    """Wraps a collator: drops the columns the model does not take (text, ids, lengths...) before collating."""

    def __init__(self, collator: Callable, keep: set[str]):
        self.collator, self.keep = collator, keep

    def __call__(self, features: list[Mapping]) -> dict:
        return self.collator([{k: v for k, v in f.items() if k in self.keep} for f in features])


def example_lengths(dataset: Any, column: str) -> list[int]:
    if column in columns_of(dataset):
        return [int(dataset[i][column]) for i in range(len(dataset))]
    return [len(dataset[i]["input_ids"]) for i in range(len(dataset))]


def length_grouped_order(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[int]:
    """transformers' ``get_length_grouped_indices``: shuffle, cut into mega-batches of 50 batches (or a quarter
    of the data), sort each by length (longest first), and put the longest example in the first batch."""
    mega = max(1, min(len(lengths) // (batch_size * 4), 50)) * batch_size
    indices = torch.randperm(len(lengths), generator=generator).tolist()
    groups = [
        sorted(indices[i : i + mega], key=lambda j: lengths[j], reverse=True)
        for i in range(0, len(indices), mega)
    ]
    longest = max(range(len(groups)), key=lambda g: lengths[groups[g][0]])
    groups[0][0], groups[longest][0] = groups[longest][0], groups[0][0]
    return [i for group in groups for i in group]


def epoch_order(
    size: int, strategy: str, seed: int, epoch: int, lengths: list[int] | None, batch_size: int
) -> list[int]:
    """Every example index once, in this epoch's order (before splitting across processes)."""
    if strategy == "sequential":
        return list(range(size))
    generator = torch.Generator().manual_seed(seed + epoch)
    if strategy == "group_by_length":
        return length_grouped_order(lengths, batch_size, generator)
    return torch.randperm(size, generator=generator).tolist()


def shard(order: list[int], rank: int, world_size: int, drop_last: bool, what: str) -> list[int]:
    """This process's share: every ``world_size``-th index from ``rank``, so that consecutive global batches of
    ``world_size * B`` examples are split into per-process batches of ``B``."""
    if world_size == 1:
        return order
    extra = len(order) % world_size
    if extra and not drop_last:
        raise ValueError(
            f"{what} has {len(order)} examples, which do not split evenly over {world_size} processes; "
            f"drop {extra} example(s), or pass dataloader_drop_last=True"
        )
    return order[rank : len(order) - extra : world_size]


def batches(indices: list[int], batch_size: int, drop_last: bool) -> list[list[int]]:
    out = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if drop_last and out and len(out[-1]) < batch_size:
        out.pop()
    return out


def loader(dataset: Any, batch_list: list[list[int]], collator: Callable, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_sampler=batch_list, collate_fn=collator, num_workers=num_workers)
