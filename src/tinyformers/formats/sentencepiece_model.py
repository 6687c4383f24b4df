"""Read a sentencepiece ``*.model`` file (a ``ModelProto`` protobuf) without the protobuf library.

A protobuf message is a flat list of ``(field number, wire type, value)`` records. The four wire types we meet
are: 0 varint, 1 fixed 8 bytes, 2 length-delimited (strings, bytes, nested messages), 5 fixed 4 bytes (floats).
Nested messages are parsed by calling the same reader on their bytes. Field numbers and defaults below are those
of sentencepiece's ``sentencepiece_model.proto``; fields we do not know are skipped, as protobuf does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorruptWeightsError

# SentencePiece.Type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
# TrainerSpec.ModelType
UNIGRAM, BPE, WORD, CHAR = 1, 2, 3, 4


class ProtoError(ValueError):
    """Bytes that are not a valid protobuf message (caught and reported with the file name)."""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProtoError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 10 bytes")


def read_fields(data: bytes):
    """Yield ``(field_number, value)`` of one message: ints for varints, bytes for length-delimited fields,
    raw 4/8-byte strings for fixed-size fields."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            size, position = _varint(data, position)
            value = data[position : position + size]
            position += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value = data[position : position + size]
            position += size
        else:  # 3/4 are deprecated groups, 6/7 do not exist
            raise ProtoError(f"unsupported wire type {wire}")
        if position > end:
            raise ProtoError("message ends inside a field")
        yield number, value


def _int32(value: int) -> int:
    """A varint holding a negative int32 is its 64-bit two's complement (pad_id -1 is ten bytes)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _float(value: bytes) -> float:
    return struct.unpack("<f", value)[0]


def _text(value: bytes) -> str:
    return value.decode("utf-8")


def _bool(value: int) -> bool:
    return bool(value)


@dataclass
class Piece:
    piece: str = ""
    score: float = 0.0
    type: int = NORMAL


@dataclass
class TrainerSpec:
    model_type: int = UNIGRAM
    vocab_size: int = 8000
    byte_fallback: bool = False
    split_digits: bool = False
    split_by_whitespace: bool = True
    treat_whitespace_as_suffix: bool = False
    allow_whitespace_only_pieces: bool = False
    max_sentencepiece_length: int = 16
    control_symbols: list[str] = field(default_factory=list)
    user_defined_symbols: list[str] = field(default_factory=list)
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    unk_piece: str = "<unk>"
    bos_piece: str = "<s>"
    eos_piece: str = "</s>"
    pad_piece: str = "<pad>"
    unk_surface: str = " \u2047 "


@dataclass
class NormalizerSpec:
    name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


@dataclass
class SentencePieceModel:
    pieces: list[Piece] = field(default_factory=list)
    trainer_spec: TrainerSpec = field(default_factory=TrainerSpec)
    normalizer_spec: NormalizerSpec = field(default_factory=NormalizerSpec)
    denormalizer_spec: NormalizerSpec | None = None


# field number -> (attribute, converter, repeated)
_PIECE_FIELDS = {1: ("piece", _text, False), 2: ("score", _float, False), 3: ("type", int, False)}
_TRAINER_FIELDS = {
    3: ("model_type", int, False),
    4: ("vocab_size", _int32, False),
    35: ("byte_fallback", _bool, False),
    25: ("split_digits", _bool, False),
    22: ("split_by_whitespace", _bool, False),
    24: ("treat_whitespace_as_suffix", _bool, False),
    26: ("allow_whitespace_only_pieces", _bool, False),
    20: ("max_sentencepiece_length", _int32, False),
    30: ("control_symbols", _text, True),
    31: ("user_defined_symbols", _text, True),
    40: ("unk_id", _int32, False),
    41: ("bos_id", _int32, False),
    42: ("eos_id", _int32, False),
    43: ("pad_id", _int32, False),
    45: ("unk_piece", _text, False),
    46: ("bos_piece", _text, False),
    47: ("eos_piece", _text, False),
    48: ("pad_piece", _text, False),
    44: ("unk_surface", _text, False),
}
_NORMALIZER_FIELDS = {
    1: ("name", _text, False),
    2: ("precompiled_charsmap", bytes, False),
    3: ("add_dummy_prefix", _bool, False),
    4: ("remove_extra_whitespaces", _bool, False),
    5: ("escape_whitespaces", _bool, False),
}


def _message(cls, data: bytes, table: dict):
    """Fill a dataclass from one message; a value of the wrong wire type is an error, as in protobuf."""
    message = cls()
    for number, value in read_fields(data):
        known = table.get(number)
        if known is None:
            continue
        name, convert, repeated = known
        wants_int = convert in (int, _int32, _bool)
        if wants_int != isinstance(value, int) or (convert is _float and len(value) != 4):
            raise ProtoError(f"field {name} has the wrong wire type")
        value = convert(value)
        if repeated:
            getattr(message, name).append(value)
        else:
            setattr(message, name, value)
    return message


def parse_model_proto(data: bytes) -> SentencePieceModel:
    """Parse the bytes of a ``ModelProto``; raises ``ProtoError`` (a ValueError) on malformed input."""
    model = SentencePieceModel()
    for number, value in read_fields(data):
        if number in (1, 2, 3, 5) and not isinstance(value, bytes):
            raise ProtoError("a ModelProto section is not length-delimited")
        if number == 1:
            model.pieces.append(_message(Piece, value, _PIECE_FIELDS))
        elif number == 2:
            model.trainer_spec = _message(TrainerSpec, value, _TRAINER_FIELDS)
        elif number == 3:
            model.normalizer_spec = _message(NormalizerSpec, value, _NORMALIZER_FIELDS)
        elif number == 5:
            model.denormalizer_spec = _message(NormalizerSpec, value, _NORMALIZER_FIELDS)
    return model


def load_model_file(path: str | Path) -> SentencePieceModel:
    """Read a sentencepiece ``.model`` file; a truncated or foreign file raises ``CorruptWeightsError``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"sentencepiece model file {path} does not exist") from None
    fix = "download it again or point to the model's spiece.model / tokenizer.model"
    try:
        model = parse_model_proto(data)
    except (ProtoError, UnicodeDecodeError, struct.error) as error:
        raise CorruptWeightsError(
            f"{path} is not a valid sentencepiece model ({error}): the file is truncated or is not a "
            f"ModelProto; {fix}"
        ) from None
    # Random bytes can parse as a message by luck, but never as one whose pieces all have a non-empty text.
    if not model.pieces or any(not p.piece or not 1 <= p.type <= 6 for p in model.pieces):
        raise CorruptWeightsError(
            f"{path} is not a valid sentencepiece model (no vocabulary pieces found): the file is "
            f"truncated or is not a ModelProto; {fix}"
        )
    return model
