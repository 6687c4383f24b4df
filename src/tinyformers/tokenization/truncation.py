"""Truncation windows: which tokens of a sequence (or pair) fit in ``max_length``, and the overflowing windows.

The arithmetic is tokenizers' (``truncate_encodings``, ``Encoding.truncate``, ``Encoding.merge``), so that
``return_overflowing_tokens=True`` with a ``stride`` gives the same windows, in the same order, with the same
type ids as the Rust library.
"""

from __future__ import annotations

from .encoding import Encoding
from .processors import RobertaProcessing


def _longest_first_lengths(first_length: int, second_length: int, max_length: int) -> tuple[int, int]:
    """tokenizers' ``longest_first`` split of ``max_length`` between a pair: the shorter sequence stays whole
    if cutting the longer one is enough, otherwise each keeps half (the second one the odd token)."""
    short = min(first_length, second_length)
    short_kept = short
    long_kept = short if short > max_length else max(short, max_length - short)
    if short_kept + long_kept > max_length:
        short_kept = max_length // 2
        long_kept = short_kept + max_length % 2
    if first_length > second_length:
        return long_kept, short_kept
    return short_kept, long_kept


def _kept_lengths(
    first_length: int, second_length: int | None, max_length: int, strategy: str
) -> tuple[int, int | None]:
    """How many tokens of each sequence fit in ``max_length`` (special tokens already left out), as tokenizers'
    ``truncate_encodings`` decides; a sequence whose kept length is at least its own length is not truncated."""
    if max_length == 0:  # tokenizers then moves every token of both sequences to the overflow
        return 0, None if second_length is None else 0
    total = first_length + (second_length or 0)
    if total <= max_length:
        return first_length, second_length
    if strategy == "longest_first":
        if second_length is None:
            return max_length, None
        return _longest_first_lengths(first_length, second_length, max_length)
    if strategy == "only_second" and second_length is None:
        raise ValueError("truncation='only_second' needs a text pair; use truncation=True for a single text")
    to_remove = total - max_length
    target, other = ("first", "second") if strategy == "only_first" else ("second", "first")
    target_length = first_length if target == "first" else second_length
    if target_length <= to_remove:
        raise ValueError(
            f"truncation='{strategy}' cannot fit the pair in {max_length} tokens (max_length without special "
            f"tokens): the {target} sequence has only {target_length} tokens but {to_remove} must go, because the "
            f"{other} one is too long; use truncation='longest_first' or a larger max_length"
        )
    if target == "first":
        return first_length - to_remove, second_length
    return first_length, second_length - to_remove


def _window_ranges(length: int, kept: int, stride: int, side: str, sequence: str) -> list[tuple[int, int]]:
    """The ``(start, stop)`` token ranges of a sequence's windows, as tokenizers' ``Encoding.truncate`` cuts them.

    The first range is what truncation keeps; the others are the overflow, each ``kept`` tokens long (the last
    one may be shorter) and sharing ``stride`` tokens with the previous one. Truncating from the left starts at
    the end of the sequence and moves backwards.
    """
    if kept >= length:
        return [(0, length)]
    if kept == 0:  # nothing fits: an empty window, then the whole sequence as the overflow
        return [(0, 0), (0, length)]
    if stride >= kept:
        raise ValueError(
            f"stride={stride} must be smaller than the {kept} tokens of the {sequence} sequence that fit in each "
            "window (beside the special tokens and any other sequence); use a smaller stride or a larger max_length"
        )
    step = kept - stride
    ranges = []
    if side == "right":
        for start in range(0, length, step):
            ranges.append((start, min(start + kept, length)))
            if start + kept >= length:
                break
    else:
        for stop in range(length, 0, -step):
            ranges.append((max(stop - kept, 0), stop))
            if stop <= kept:
                break
    return ranges


def _window_pairs(first_count: int, second_count: int) -> list[tuple[int, int]]:
    """Which windows of the first and second sequence make up each encoding, in the order tokenizers lists them
    (``Encoding.merge``): the kept pair, then each overflow window of the first sequence with every window of the
    second, then the kept first window with each overflow window of the second."""
    pairs = [(0, 0)]
    pairs += [(i, j) for i in range(1, first_count) for j in range(second_count)]
    pairs += [(0, j) for j in range(1, second_count)]
    return pairs


def _window(encoding: Encoding, start: int, stop: int) -> Encoding:
    """A new Encoding of tokens ``start:stop`` (a copy: post-processors change offsets in place)."""
    return Encoding(*(getattr(encoding, name)[start:stop] for name in Encoding.__slots__))


def post_processor_types_overflow(processor) -> bool:
    """Whether tokenizers' post-processor sets the type ids of overflow windows: only ``RobertaProcessing`` does.

    The others (``TemplateProcessing`` among them) apply the template's type ids to the kept window alone, so an
    overflow window keeps the type id its sequence was encoded with (0 for the first, 1 for the second), even
    where the template says otherwise (T5's pair template types both sequences 0).
    """
    processors = getattr(processor, "processors", [processor])
    return any(isinstance(p, RobertaProcessing) for p in processors)


def truncate(
    backend,
    encoding: Encoding,
    pair: Encoding | None,
    max_length: int,
    strategy: str,
    stride: int,
    side: str,
    add_special_tokens: bool,
    with_overflow: bool,
) -> list[Encoding]:
    """The truncated encoding of one text (or pair) with its special tokens, then the overflowing windows if
    ``with_overflow``; ``backend`` is the pipeline (``tokenizer.Tokenizer``) that adds the special tokens."""
    n_added = backend.num_special_tokens_to_add(pair is not None) if add_special_tokens else 0
    if max_length < n_added:
        raise ValueError(
            f"max_length={max_length} leaves no room: {n_added} special tokens are added; use a larger max_length"
        )
    first_kept, second_kept = _kept_lengths(
        len(encoding), None if pair is None else len(pair), max_length - n_added, strategy
    )
    first_ranges = _window_ranges(len(encoding), first_kept, stride, side, "first")
    second_ranges = [None] if pair is None else _window_ranges(len(pair), second_kept, stride, side, "second")
    pairs = _window_pairs(len(first_ranges), len(second_ranges)) if with_overflow else [(0, 0)]
    return [
        _post_process_window(
            backend,
            _window(encoding, *first_ranges[i]),
            None if pair is None else _window(pair, *second_ranges[j]),
            {sequence for sequence, window in enumerate((i, j)) if window > 0},
            add_special_tokens,
        )
        for i, j in pairs
    ]


def _post_process_window(
    backend, first: Encoding, second: Encoding | None, overflowing: set[int], add_special_tokens: bool
) -> Encoding:
    """Special tokens around one window of each sequence, as tokenizers does; ``overflowing`` holds the
    sequence ids (0 first, 1 second) whose window is not the one truncation keeps."""
    result = backend.post_process(first, second, add_special_tokens)
    if overflowing and not post_processor_types_overflow(backend.post_processor):
        # An overflow window keeps the type id it was encoded with, which is its sequence id (see the helper).
        result.type_ids = [
            sequence if sequence in overflowing else type_id
            for sequence, type_id in zip(result.sequence_ids, result.type_ids)
        ]
    return result
