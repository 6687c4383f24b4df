"""``PretrainedConfig``: a model's hyper-parameters, read from and written to ``config.json``.

A model family declares its fields as annotated class attributes with defaults::

    class BertConfig(PretrainedConfig):
        model_type = "bert"
        hidden_size: int = 768

Keys a checkpoint carries that no field declares (``gradient_checkpointing``, ``transformers_version``, ...) are
kept as attributes and written back unchanged, so a load/save round trip loses nothing.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from .hub import resolve_dir, resolve_gguf
from .utils import atomic_write_text, read_json

CONFIG_NAME = "config.json"
# Written into config.json as the "transformers_version" key: the format version our files follow.
FORMAT_VERSION = "5.24.0"


def read_config_dict(
    name_or_path: str | os.PathLike, revision: str | None = None, gguf_file: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """(where it came from, the config dict) for a model folder's config.json, or a GGUF file's metadata."""
    gguf_path = resolve_gguf(name_or_path, gguf_file, revision)
    if gguf_path is not None:
        from .formats.gguf import gguf_config  # lazily: the GGUF reader imports torch, a config needs none

        return gguf_path, gguf_config(gguf_path)
    directory = resolve_dir(name_or_path, revision=revision)
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no {CONFIG_NAME} in '{directory}': a model folder needs one (save a config with "
            "config.save_pretrained(folder) or copy the model's config.json there; for a GGUF file pass gguf_file=)"
        )
    return path, read_json(path)


class PretrainedConfig:
    model_type: ClassVar[str] = ""

    # Fields every model shares (the ones transformers keeps on its base config).
    architectures: list[str] | None = None
    output_hidden_states: bool = False
    output_attentions: bool = False
    return_dict: bool = True
    dtype: str | None = None
    tie_word_embeddings: bool = True
    is_encoder_decoder: bool = False
    is_decoder: bool = False
    problem_type: str | None = None
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    decoder_start_token_id: int | None = None

    def __init__(self, **kwargs: Any):
        # torch_dtype is the old name of dtype; keep reading it, write only the new one.
        if "torch_dtype" in kwargs:
            kwargs.setdefault("dtype", kwargs.pop("torch_dtype"))
        kwargs.pop("model_type", None)
        num_labels = kwargs.pop("num_labels", None)
        id2label = kwargs.pop("id2label", None)
        kwargs.pop("label2id", None)  # always derived from id2label so the two never disagree
        if id2label is not None:
            id2label = {int(k): v for k, v in id2label.items()}
            if num_labels is not None and num_labels != len(id2label):
                id2label = None  # an explicit num_labels wins over the checkpoint's label names
        if id2label is None:
            id2label = {i: f"LABEL_{i}" for i in range(2 if num_labels is None else num_labels)}
        self.id2label = id2label
        for name in self.declared_fields():
            value = kwargs.pop(name) if name in kwargs else copy.deepcopy(getattr(type(self), name))
            setattr(self, name, value)
        for name, value in kwargs.items():  # unknown keys are kept, not dropped
            setattr(self, name, value)
        self.validate()

    # ---- fields -------------------------------------------------------------------------------------------------
    @classmethod
    def declared_fields(cls) -> list[str]:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name, annotation in vars(klass).get("__annotations__", {}).items():
                if "ClassVar" not in str(annotation) and name not in names:
                    names.append(name)
        return names

    def validate(self) -> None:
        """Subclasses check their own invariants here and raise ``ValueError`` naming the bad field."""

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if n != len(self.id2label):
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in self.id2label.items()}

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    # ---- (de)serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in vars(self).items() if not k.startswith("_")}
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = self.label2id
        out["model_type"] = self.model_type
        out["transformers_version"] = FORMAT_VERSION
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"save_pretrained: '{directory}' is a file; pass a directory path")
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / CONFIG_NAME, self.to_json_string())

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> PretrainedConfig:
        return cls(**{**config_dict, **kwargs})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> PretrainedConfig:
        return cls.from_dict(read_json(path))

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        revision: str | None = None,
        gguf_file: str | None = None,
        **kwargs: Any,
    ) -> PretrainedConfig:
        """Read ``config.json`` from a folder or hub id (or a GGUF file's metadata); ``kwargs`` override it."""
        path, config_dict = read_config_dict(name_or_path, revision, gguf_file)
        file_type = config_dict.get("model_type")
        if cls.model_type and file_type and file_type != cls.model_type:
            raise ValueError(
                f"{path} has model_type '{file_type}' but {cls.__name__} is for '{cls.model_type}'; "
                "use AutoConfig.from_pretrained to pick the right class"
            )
        config = cls.from_dict(config_dict, **kwargs)
        config._name_or_path = str(name_or_path)
        return config

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"
