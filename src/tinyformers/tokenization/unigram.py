"""Unigram (sentencepiece's default model) and sentencepiece's BPE.

Unigram gives every piece a log-probability score; a word is cut into the pieces whose scores add up to the
most. Viterbi finds that cut left to right: ``best[end]`` is the best score of any cut of ``word[:end]``, and each
piece ``word[start:end]`` in the vocabulary offers ``best[start] + score``. A character no piece starts with
becomes the unknown piece, scored ``min_score - 10`` so that it is only used when nothing else fits; runs of
unknown characters are fused into one unknown token, as both sentencepiece and tokenizers do.

sentencepiece's BPE is not GPT-2's: there is no merges list, the *score* of the merged piece decides which
adjacent pair merges next (ties go to the leftmost pair).
"""

from __future__ import annotations

from .models import CachedModel
from .stages import MODELS, TokenizerFileError, register

UNK_PENALTY = 10.0
_PREFIX_ONLY = (None, 0.0)  # trie value of a string that is only the beginning of longer pieces


def _byte_piece(byte: int) -> str:
    return f"<0x{byte:02X}>"


class _PieceModel(CachedModel):
    """What Unigram and sentencepiece-BPE share: a scored vocabulary, the unknown piece, byte fallback, a cache.

    ``matchable`` restricts which ids the text may match (sentencepiece keeps control/byte pieces out); by
    default every piece matches, as in tokenizers.
    """

    def __init__(
        self,
        vocab: list[tuple[str, float]],
        unk_id: int | None = None,
        byte_fallback: bool = False,
        matchable: list[int] | None = None,
    ):
        self.vocab = [(str(piece), float(score)) for piece, score in vocab]
        self.token_ids = {piece: index for index, (piece, _) in enumerate(self.vocab)}
        self.unk_id = unk_id
        self.byte_fallback = byte_fallback
        self.matchable = range(len(self.vocab)) if matchable is None else matchable
        self._start_cache()

    def token_to_id(self, token: str) -> int | None:
        return self.token_ids.get(token)

    def id_to_token(self, index: int) -> str | None:
        return self.vocab[index][0] if 0 <= index < len(self.vocab) else None

    def get_vocab(self) -> dict[str, int]:
        return self.token_ids

    def get_vocab_size(self) -> int:
        return len(self.vocab)

    def _tokenize(self, word: str) -> tuple[tuple[int, str, int, int], ...]:
        return self._to_tokens(self.segment(word)) if word else ()

    def segment(self, word: str) -> list[tuple[str, int | None]]:
        """The word cut into ``(piece, id)``; ``id`` is None for (fused) unknown text."""
        raise NotImplementedError

    def _to_tokens(self, pieces: list[tuple[str, int | None]]) -> tuple[tuple[int, str, int, int], ...]:
        tokens = []
        start = 0
        for piece, index in pieces:
            end = start + len(piece)
            if index is not None:
                tokens.append((index, piece, start, end))
            else:
                byte_ids = None
                if self.byte_fallback:
                    byte_ids = [self.token_ids.get(_byte_piece(b)) for b in piece.encode("utf-8")]
                if byte_ids and None not in byte_ids:
                    tokens.extend((i, self.vocab[i][0], start, end) for i in byte_ids)
                elif self.unk_id is None:
                    raise TokenizerFileError(
                        f"{self.type_name}: {piece!r} is not in the vocabulary and the model has no unk_id; "
                        "set 'unk_id' in tokenizer.json"
                    )
                else:
                    tokens.append(
                        (self.unk_id, piece, start, end)
                    )  # the token shows the text, like tokenizers
            start = end
        return tuple(tokens)


@register(MODELS, "Unigram")
class Unigram(_PieceModel):
    """``min_score`` overrides the lowest score (sentencepiece takes it over normal pieces only; by default the
    minimum is over the whole vocabulary, as in tokenizers) and ``scores`` the scores of some pieces."""

    def __init__(
        self,
        *args,
        min_score: float | None = None,
        scores: dict[int, float] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        unk_id = self.unk_id
        if unk_id is not None and not 0 <= unk_id < len(self.vocab):
            raise TokenizerFileError(
                f"Unigram: unk_id {unk_id} is outside the vocabulary of {len(self.vocab)} pieces"
            )
        scores = scores or {}
        ids = self.matchable
        # A dict trie: every piece maps to (id, score), every proper prefix of a piece to _PREFIX_ONLY, so
        # the Viterbi inner loop stops as soon as the text leaves all pieces.
        trie: dict[str, tuple] = {}
        for index in ids:
            piece = self.vocab[index][0]
            for end in range(1, len(piece)):
                trie.setdefault(piece[:end], _PREFIX_ONLY)
        for index in ids:
            trie[self.vocab[index][0]] = (index, scores.get(index, self.vocab[index][1]))
        self._trie = trie
        if min_score is None:
            min_score = min((score for _, score in self.vocab), default=0.0)
        self.unk_score = min_score - UNK_PENALTY

    @classmethod
    def from_dict(cls, spec: dict) -> Unigram:
        vocab = spec.get("vocab")
        if not isinstance(vocab, list) or not all(
            isinstance(v, (list, tuple)) and len(v) == 2 for v in vocab
        ):
            raise TokenizerFileError(
                "tokenizer.json: a Unigram model needs 'vocab' as a list of [piece, score] pairs"
            )
        return cls(vocab, spec.get("unk_id"), bool(spec.get("byte_fallback", False)))

    def to_dict(self) -> dict:
        return {
            "type": "Unigram",
            "unk_id": self.unk_id,
            "vocab": [[piece, score] for piece, score in self.vocab],
            "byte_fallback": self.byte_fallback,
        }

    def segment(self, word: str) -> list[tuple[str, int | None]]:
        trie, unk_score, unk_id = self._trie, self.unk_score, self.unk_id
        n = len(word)
        best = [0.0] + [None] * n  # best score of a cut of word[:end]
        back = [0] * (n + 1)  # where the last piece of that cut starts
        piece_id: list[int | None] = [None] * (n + 1)
        for start in range(n):
            here = best[start]
            single_char = False
            end = start + 1
            while end <= n:
                node = trie.get(word[start:end])
                if node is None:
                    break
                index, score = node
                if index is not None:
                    score += here
                    # Strictly greater: on a tie the cut found first (shorter earlier pieces) stays.
                    if best[end] is None or score > best[end]:
                        best[end], back[end], piece_id[end] = score, start, index
                    if end == start + 1:
                        single_char = True
                end += 1
            if not single_char:  # no piece is this one character: it may be read as unknown
                score = here + unk_score
                if best[start + 1] is None or score > best[start + 1]:
                    best[start + 1], back[start + 1], piece_id[start + 1] = score, start, unk_id
        pieces: list[tuple[str, int | None]] = []
        end = n
        while end > 0:
            start, index = back[end], piece_id[end]
            if index == unk_id and pieces and pieces[-1][1] is None:
                pieces[-1] = (word[start:end] + pieces[-1][0], None)  # fuse runs of unknown characters
            else:
                pieces.append((word[start:end], None if index == unk_id else index))
            end = start
        pieces.reverse()
        return pieces


class SentencePieceBPE(_PieceModel):
    """sentencepiece's BPE (``model_type: BPE`` in a .model file): merge the adjacent pair whose joined piece
    has the highest score, leftmost first, until no joined pair is a piece. Unused pieces are split back into
    the pair they were merged from. Not a tokenizer.json model (tokenizers writes such models as merges)."""

    type_name = "SentencePieceBPE"

    def __init__(self, *args, unused: list[int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._pieces = {self.vocab[i][0]: (i, self.vocab[i][1]) for i in self.matchable}
        self._unused = set(unused or ())

    def to_dict(self) -> dict:
        raise TokenizerFileError(
            "a sentencepiece BPE model cannot be written as tokenizer.json yet; keep the .model file"
        )

    def segment(self, word: str) -> list[tuple[str, int | None]]:
        pieces = self._pieces
        symbols = list(word)
        merged_from: dict[str, tuple[str, str]] = {}
        while len(symbols) > 1:
            best_score, best_at = None, -1
            for i in range(len(symbols) - 1):
                found = pieces.get(symbols[i] + symbols[i + 1])
                if found is not None and (best_score is None or found[1] > best_score):
                    best_score, best_at = found[1], i
            if best_at < 0:
                break
            left, right = symbols[best_at], symbols[best_at + 1]
            merged_from[left + right] = (left, right)
            symbols[best_at : best_at + 2] = [left + right]
        out: list[tuple[str, int | None]] = []
        for symbol in symbols:
            self._resegment(symbol, merged_from, out)
        # Fuse runs of unknown characters into one unknown token, as sentencepiece does.
        fused: list[tuple[str, int | None]] = []
        for piece, index in out:
            if index is None and fused and fused[-1][1] is None:
                fused[-1] = (fused[-1][0] + piece, None)
            else:
                fused.append((piece, index))
        return fused

    def _resegment(self, symbol: str, merged_from: dict, out: list) -> None:
        found = self._pieces.get(symbol)
        index = None if found is None else found[0]
        if index is not None and index in self._unused and symbol in merged_from:
            left, right = merged_from[symbol]
            self._resegment(left, merged_from, out)
            self._resegment(right, merged_from, out)
            return
        out.append((symbol, None if index is None or index == self.unk_id else index))
