"""Strings that remember where each of their characters came from.

Offsets are character offsets into the *original* text, exactly as ``tokenizers`` reports them for a Python
string. To get them right through normalization, a ``NormalizedString`` remembers, for every normalized
character, the span of original characters it came from (``None`` while the mapping is the identity, which is
the common case and costs nothing). A ``PreTokenizedString`` holds the pieces ("words") pre-tokenization cuts.
"""

from __future__ import annotations

import unicodedata

from .stages import TokenizerFileError


class CharMap(dict):
    """``str.translate`` table filled on demand from a per-character function.

    The function returns what one character becomes ('' deletes it). Characters that do not become exactly one
    character are remembered in ``resizing``: only texts containing one of them need their alignments rebuilt.
    """

    def __init__(self, function):
        super().__init__()
        self.function = function
        self.resizing: set[str] = set()

    def __missing__(self, codepoint: int) -> str:
        char = chr(codepoint)
        out = self.function(char)
        if len(out) != 1:
            self.resizing.add(char)
        self[codepoint] = out
        return out


class NormalizedString:
    """The normalized text of one piece of the input, with the original span of every character.

    ``spans`` is ``None`` while the alignment is simple arithmetic: the first ``lead`` characters were put in
    front of the text and stand for its first original character (a "▁" or space prefix, as tokenizers aligns
    them), and every later character ``i`` comes from original character ``offset + i - lead``. Otherwise
    ``spans`` lists one ``(start, end)`` original span per normalized character.
    """

    __slots__ = ("text", "offset", "spans", "lead")

    def __init__(self, text: str, offset: int = 0, spans: list[tuple[int, int]] | None = None, lead: int = 0):
        self.text = text
        self.offset = offset
        self.spans = spans
        self.lead = lead

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:
        return f"NormalizedString({self.text!r}, offset={self.offset})"

    @property
    def is_identity(self) -> bool:
        """Character ``i`` comes from original character ``offset + i``: offsets are plain additions."""
        return self.spans is None and not self.lead

    def all_spans(self) -> list[tuple[int, int]]:
        if self.spans is not None:
            return self.spans
        offset, lead = self.offset, min(self.lead, len(self.text))
        return [(offset, offset + 1)] * lead + [
            (offset + i, offset + i + 1) for i in range(len(self.text) - lead)
        ]

    def prepend(self, prefix: str) -> None:
        """Put ``prefix`` in front; like tokenizers, its characters stand for the first character (its span)."""
        if not self.text:
            return
        if self.spans is None:
            self.text, self.lead = prefix + self.text, self.lead + len(prefix)
        else:
            self.set_aligned(prefix + self.text, self.spans[:1] * len(prefix) + self.spans)

    def set_aligned(self, text: str, spans: list[tuple[int, int]]) -> None:
        """Replace the text and give every character its span explicitly."""
        self.text, self.spans, self.lead = text, spans, 0

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original character span of normalized characters ``start:end``."""
        if self.spans is None:
            lead = self.lead
            if not lead:
                return self.offset + start, self.offset + end
            first = self.offset + max(start - lead, 0)
            return first, (self.offset + max(end - lead, 1) if end > start else first)
        if start >= end:  # an empty piece sits where the next character starts
            if start < len(self.spans):
                return self.spans[start][0], self.spans[start][0]
            position = self.spans[-1][1] if self.spans else self.offset
            return position, position
        return self.spans[start][0], self.spans[end - 1][1]

    def slice(self, start: int, end: int) -> NormalizedString:
        if self.spans is not None:
            return NormalizedString(self.text[start:end], self.offset, self.spans[start:end])
        lead = self.lead
        if start >= lead:
            return NormalizedString(self.text[start:end], self.offset + start - lead)
        return NormalizedString(self.text[start:end], self.offset, None, lead - start)

    # -- transformations (all in place) --------------------------------------------------------------------------

    def map_chars(self, table: CharMap) -> None:
        """Replace every character by ``table``'s string for it; each new character keeps the old one's span."""
        text = self.text
        new_text = text.translate(table)
        if table.resizing.isdisjoint(text):
            self.text = new_text
            return
        spans = self.all_spans()
        new_spans: list[tuple[int, int]] = []
        for char, span in zip(text, spans):
            out = table[ord(char)]
            if len(out) == 1:
                new_spans.append(span)
            elif out:
                new_spans.extend([span] * len(out))
        self.set_aligned(new_text, new_spans)

    def replace_ranges(self, edits: list[tuple[int, int, str]]) -> None:
        """Replace normalized ranges ``start:end`` (sorted, disjoint) by new strings.

        A same-length replacement keeps the spans character by character. Otherwise the new characters all take
        the span covering the replaced range (an insertion takes the span of the character before it).
        """
        if not edits:
            return
        spans = self.all_spans()
        text = self.text
        pieces: list[str] = []
        new_spans: list[tuple[int, int]] = []
        position = 0
        for start, end, new in edits:
            pieces.append(text[position:start])
            new_spans.extend(spans[position:start])
            pieces.append(new)
            if end - start == len(new):
                new_spans.extend(spans[start:end])
            elif new:
                if end > start:
                    covering = (spans[start][0], spans[end - 1][1])
                elif start > 0:
                    covering = spans[start - 1]
                elif spans:
                    covering = (spans[0][0], spans[0][0])
                else:
                    covering = (self.offset, self.offset)
                new_spans.extend([covering] * len(new))
            position = end
        pieces.append(text[position:])
        new_spans.extend(spans[position:])
        self.set_aligned("".join(pieces), new_spans)

    def normalize_unicode(self, form: str) -> None:
        """NFC/NFKC (which may merge characters), aligned exactly as tokenizers aligns them.

        The text is decomposed character by character, marks are put in canonical order and characters are
        composed again, keeping for every character how many original ones it stands for (see
        ``_unicode_stream``). Original characters are then handed out in order: a composed character takes
        the first of its originals (``e`` + U+0301 -> ``é`` gets the span of ``e``), an extra character of
        an expansion (NFKC ``ﬁ`` -> ``f`` ``i``) the span of the character before it.
        """
        text = self.text
        if unicodedata.is_normalized(form, text):
            return
        stream = _unicode_stream(text, form)
        spans = self.all_spans()
        new_spans: list[tuple[int, int]] = []
        position = 0
        for _, change in stream:
            if change > 0:  # an added character
                new_spans.append(spans[position - 1] if position else (spans[0][0], spans[0][0]))
            else:  # it takes the next original character, and -change more are absorbed into it
                new_spans.append(spans[position])
                position += 1 - change
        self.set_aligned("".join(char for char, _ in stream), new_spans)


def _unicode_stream(text: str, form: str) -> list[tuple[str, int]]:
    """``text`` in Unicode form ``form`` as ``(character, change)``: ``change`` is 1 for a character added by a
    decomposition, ``-n`` for one that absorbed ``n`` following characters by composition, else 0 (the
    change stream of tokenizers' ``unicode_normalization_alignments``)."""
    decompose = "NFKD" if form in ("NFKC", "NFKD") else "NFD"
    stream: list[tuple[str, int]] = []
    for char in text:
        parts = unicodedata.normalize(decompose, char)
        stream.append((parts[0], 0))
        stream.extend((part, 1) for part in parts[1:])
    # Canonical order: each run of marks sorted (stably) by combining class, changes moving with them.
    start = 0
    while start < len(stream):
        if unicodedata.combining(stream[start][0]) == 0:
            start += 1
            continue
        end = start
        while end < len(stream) and unicodedata.combining(stream[end][0]):
            end += 1
        stream[start:end] = sorted(stream[start:end], key=lambda item: unicodedata.combining(item[0]))
        start = end
    if form in ("NFD", "NFKD"):
        return stream
    composed: list[tuple[str, int]] = []
    starter = None  # index in ``composed`` of the last character of combining class 0
    for char, change in stream:
        ccc = unicodedata.combining(char)
        if starter is not None:
            # Blocked when a character in between has class 0 or a class not lower than this one.
            between = composed[-1][0] if len(composed) - 1 > starter else None
            if between is None or 0 < unicodedata.combining(between) < ccc:
                pair = unicodedata.normalize("NFC", composed[starter][0] + char)
                if len(pair) == 1:
                    composed[starter] = (pair, composed[starter][1] + change - 1)
                    continue
        composed.append((char, change))
        if ccc == 0:
            starter = len(composed) - 1
    return composed


def split_by_matches(
    piece: NormalizedString, matches: list[tuple[int, int]], behavior: str, invert: bool = False
) -> list[NormalizedString]:
    """Split ``piece`` around ``matches`` (sorted ``(start, end)``) the way tokenizers' ``split`` does."""
    length = len(piece.text)
    marked: list[tuple[int, int, bool]] = []  # (start, end, is_match) covering the whole text
    previous = 0
    for start, end in matches:
        if start > previous:
            marked.append((previous, start, invert))
        marked.append((start, end, not invert))
        previous = end
    if previous < length:
        marked.append((previous, length, invert))

    if behavior == "Removed":
        kept = [(s, e) for s, e, is_match in marked if not is_match]
    elif behavior == "Isolated":
        kept = [(s, e) for s, e, _ in marked]
    elif behavior == "Contiguous":
        kept = []
        previous_match = None
        for s, e, is_match in marked:
            if kept and is_match == previous_match:
                kept[-1] = (kept[-1][0], e)
            else:
                kept.append((s, e))
            previous_match = is_match
    elif behavior == "MergedWithPrevious":
        kept = []
        previous_match = False
        for s, e, is_match in marked:
            if is_match and not previous_match and kept:
                kept[-1] = (kept[-1][0], e)
            else:
                kept.append((s, e))
            previous_match = is_match
    elif behavior == "MergedWithNext":
        kept = []
        previous_match = False
        for s, e, is_match in reversed(marked):
            if is_match and not previous_match and kept:
                kept[-1] = (s, kept[-1][1])
            else:
                kept.append((s, e))
            previous_match = is_match
        kept.reverse()
    else:
        raise TokenizerFileError(
            f"unknown split behavior {behavior!r}; expected one of Removed, Isolated, Contiguous, "
            "MergedWithPrevious, MergedWithNext"
        )
    return [piece.slice(s, e) for s, e in kept if e > s]


class PreTokenizedString:
    """The pieces ("words") of one input after added-token extraction and pre-tokenization.

    ``tokens[i]`` is already set for added tokens (they skip the pre-tokenizer and the model), ``None`` otherwise.
    """

    __slots__ = ("pieces", "tokens")

    def __init__(self, pieces: list[NormalizedString], tokens: list[list[tuple] | None] | None = None):
        self.pieces = pieces
        self.tokens = tokens if tokens is not None else [None] * len(pieces)

    def split(self, function) -> None:
        """Replace every not-yet-tokenized piece by ``function(piece)`` (a list of pieces)."""
        pieces: list[NormalizedString] = []
        tokens: list[list[tuple] | None] = []
        for piece, done in zip(self.pieces, self.tokens):
            if done is not None:
                pieces.append(piece)
                tokens.append(done)
                continue
            new = function(piece)
            pieces.extend(new)
            tokens.extend([None] * len(new))
        self.pieces, self.tokens = pieces, tokens
