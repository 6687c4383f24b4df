"""sentencepiece's precompiled charsmap: a normalization table (NFKC plus sentencepiece's own rules) stored as a
darts-clone double-array trie over UTF-8 bytes plus a blob of NUL-terminated replacement strings."""

from __future__ import annotations

import struct

from .stages import TokenizerFileError


def _unit_offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


class Charsmap:
    """A precompiled charsmap: ``lookup`` walks the trie over UTF-8 bytes exactly as darts-clone does.

    The trie shares common endings (it is a graph of ~44k units holding ~200k rules), so it is never expanded
    into a dict. Loading instead visits each node once to find ``triggers``: the characters that can take part
    in a rule (one-character rules, and any later character of a longer rule). A text without any of them,
    the usual case, skips normalization altogether.
    """

    _loaded: dict[bytes, Charsmap] = {}  # one table per distinct blob: T5 checkpoints share theirs

    def __init__(self, blob: bytes):
        if len(blob) < 4:
            raise TokenizerFileError("precompiled charsmap is too short to hold its trie size")
        (trie_size,) = struct.unpack_from("<I", blob)
        if trie_size % 4 or 4 + trie_size > len(blob):
            raise TokenizerFileError("precompiled charsmap is truncated: its trie is larger than the blob")
        self.units = struct.unpack_from(f"<{trie_size // 4}I", blob, 4)
        self.strings = blob[4 + trie_size :]
        self._replacements: dict[int, str] = {}
        self.triggers = self._find_triggers()

    @classmethod
    def load(cls, blob: bytes) -> Charsmap:
        found = cls._loaded.get(blob)
        if found is None:
            found = cls._loaded[blob] = cls(blob)
        return found

    def lookup(self, key: bytes) -> list[tuple[int, int]]:
        """darts-clone ``commonPrefixSearch``: ``(length, value)`` of every rule that is a prefix of ``key``."""
        units = self.units
        position = _unit_offset(units[0])
        found = []
        for length, byte in enumerate(key, 1):
            position ^= byte
            if position >= len(units) or units[position] & 0x800000FF != byte:
                break
            unit = units[position]
            position ^= _unit_offset(unit)
            if unit & 0x100:  # has a leaf: the bytes read so far are a rule
                found.append((length, units[position] & 0x7FFFFFFF))
        return found

    def replacement(self, value: int) -> str:
        text = self._replacements.get(value)
        if text is None:
            end = self.strings.find(b"\0", value)
            text = self._replacements[value] = self.strings[value : end if end >= 0 else None].decode(
                "utf-8", "replace"
            )
        return text

    def _find_triggers(self) -> frozenset[str]:
        """Walk the trie one character at a time (each node once; numpy tries all 255 bytes of a level)."""
        import numpy as np

        units = np.asarray(self.units, dtype=np.int64)
        labels = np.arange(1, 256, dtype=np.int64)  # label 0 is where a node keeps its value, not a child

        def children(bases):
            """(row, byte, child position, child base) of every edge out of the nodes ``bases``."""
            positions = np.asarray(bases, dtype=np.int64)[:, None] ^ labels[None, :]
            inside = positions < len(units)
            unit = units[np.where(inside, positions, 0)]
            rows, columns = np.nonzero(inside & ((unit & 0x800000FF) == labels[None, :]))
            child = positions[rows, columns]
            child_unit = units[child]
            child_base = child ^ ((child_unit >> 10) << ((child_unit & (1 << 9)) >> 6))
            return rows.tolist(), (columns + 1).tolist(), child_unit.tolist(), child_base.tolist()

        root = _unit_offset(self.units[0])
        triggers: set[str] = set()
        seen = {root}
        level = [root]  # nodes reached at a character boundary
        while level:
            # Partial characters: (node at the boundary, bytes so far, node after them)
            partial = [(origin, b"", origin) for origin in level]
            next_level = []
            while partial:
                rows, bytes_, child_units, child_bases = children([node for _, _, node in partial])
                still = []
                for row, byte, child_unit, child_base in zip(rows, bytes_, child_units, child_bases):
                    origin, so_far, _ = partial[row]
                    so_far += bytes([byte])
                    try:
                        char = so_far.decode("utf-8")
                    except UnicodeDecodeError:
                        if len(so_far) < 4:
                            still.append((origin, so_far, child_base))
                        continue
                    if origin != root or child_unit & 0x100:
                        triggers.add(char)
                    if child_base not in seen:
                        seen.add(child_base)
                        next_level.append(child_base)
                partial = still
            level = next_level
        return frozenset(triggers)

    def longest_match(self, text: str, start: int) -> tuple[int, str] | None:
        """sentencepiece: the longest rule at ``text[start:]`` as ``(characters used, replacement)``."""
        key = text[start : start + 32].encode("utf-8")
        found = self.lookup(key)
        if not found:
            return None
        length, value = found[-1]
        return len(key[:length].decode("utf-8")), self.replacement(value)

    def shortest_match(self, text: str) -> str | None:
        """tokenizers: the replacement of the *shortest* rule that is a prefix of ``text`` (its first result)."""
        found = self.lookup(text.encode("utf-8"))
        return self.replacement(found[0][1]) if found else None
