"""``GenerationConfig``: how ``generate`` decodes, read from and written to ``generation_config.json``.

Every field starts unset (``None``). ``generate`` merges, highest priority first: its keyword arguments, the
``generation_config`` argument, the model's ``generation_config`` (its folder's ``generation_config.json``, else
the token ids of ``config.json``), and finally ``DEFAULTS``. Only set fields are written to a file, so a saved
file says exactly what differs from the defaults, as transformers' files do.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

from ..utils import atomic_write_json, read_json

GENERATION_CONFIG_NAME = "generation_config.json"
FORMAT_VERSION = "5.24.0"  # the transformers version whose file format we write

DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "min_new_tokens": None,
    "do_sample": False,
    "num_beams": 1,
    "num_return_sequences": 1,
    "early_stopping": False,
    "length_penalty": 1.0,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "stop_strings": None,
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "decoder_start_token_id": None,
    "use_cache": True,
    "output_scores": False,
    "output_logits": False,
    "return_dict_in_generate": False,
}
TOKEN_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
# transformers' generation options this package does not implement: asking for one is an error naming it, so a
# request is never silently ignored. A value equal to transformers' default (None, False, 0, 1, empty) is fine.
UNSUPPORTED = frozenset(
    "output_hidden_states output_attentions eta_cutoff top_h diversity_penalty num_beam_groups penalty_alpha "
    "guidance_scale sequence_bias suppress_tokens begin_suppress_tokens encoder_repetition_penalty "
    "encoder_no_repeat_ngram_size exponential_decay_length_penalty renormalize_logits remove_invalid_values "
    "constraints force_words_ids max_time prompt_lookup_num_tokens assistant_model watermarking_config "
    "cache_implementation prefix_allowed_tokens_fn logits_processor stopping_criteria low_memory dola_layers "
    "token_healing assistant_early_exit negative_prompt_ids use_model_defaults".split()
)


class GenerationConfig:
    def __init__(self, **kwargs: Any):
        for name in DEFAULTS:
            setattr(self, name, kwargs.pop(name, None))
        # Keys we do not use (top_h, suppress_tokens, ...) are kept so a load/save round trip loses nothing.
        self._extra = {
            k: v for k, v in kwargs.items() if k not in ("transformers_version", "_from_model_config")
        }

    # ---- merging --------------------------------------------------------------------------------------------------
    def set_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in DEFAULTS if getattr(self, name) is not None}

    def update(self, **kwargs: Any) -> GenerationConfig:
        """Set fields in place; an unknown name is a ``TypeError`` naming it (a typo would otherwise be ignored)."""
        for name, value in kwargs.items():
            if name in UNSUPPORTED:
                check_supported(name, value)
                continue
            if name not in DEFAULTS:
                raise TypeError(
                    f"generate() got an unexpected keyword argument '{name}'; "
                    f"generation options are: {', '.join(sorted(DEFAULTS))}"
                )
            setattr(self, name, value)
        return self

    def check_supported(self) -> None:
        """An error if this config asks for an option that is not implemented (see ``UNSUPPORTED``)."""
        for name, value in self._extra.items():
            if name in UNSUPPORTED:
                check_supported(name, value)

    def warn_unsupported(self) -> None:
        """A warning (once per config) for options a checkpoint's own generation_config.json sets that are not
        implemented: the user did not ask for them, so no error, but transformers would apply them."""
        if getattr(self, "_warned", False):
            return
        asked = {k: v for k, v in self._extra.items() if k in UNSUPPORTED and not is_default(v)}
        if asked:
            self._warned = True
            options = ", ".join(f"{k}={v!r}" for k, v in asked.items())
            warnings.warn(
                f"this model's generation_config.json sets {options}, which generate() does not implement and "
                "ignores; outputs may differ from transformers'",
                stacklevel=4,
            )

    def merged_over(self, base: GenerationConfig | None) -> GenerationConfig:
        """A copy of ``base`` with this config's set fields on top."""
        out = copy.deepcopy(base) if base is not None else GenerationConfig()
        out._extra = {**out._extra, **self._extra}
        return out.update(**self.set_fields())

    def with_defaults(self) -> GenerationConfig:
        out = copy.deepcopy(self)
        for name, value in DEFAULTS.items():
            if getattr(out, name) is None:
                setattr(out, name, value)
        return out

    def validate(self) -> None:
        """Checks on a config with defaults filled in; each error names the field and a valid value."""
        if self.max_new_tokens is not None and self.max_new_tokens < 0:
            raise ValueError(
                f"max_new_tokens must be >= 0, got {self.max_new_tokens}; pass e.g. max_new_tokens=50"
            )
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.num_return_sequences < 1:
            raise ValueError(f"num_return_sequences must be >= 1, got {self.num_return_sequences}")
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            raise ValueError(
                f"num_return_sequences ({self.num_return_sequences}) cannot exceed num_beams ({self.num_beams}) "
                "in beam search; raise num_beams or lower num_return_sequences"
            )
        if self.do_sample and not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0 when sampling, got {self.temperature}; use do_sample=False for greedy"
            )
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p}")
        if not 0 < self.typical_p <= 1:
            raise ValueError(f"typical_p must be in (0, 1], got {self.typical_p}")
        if not 0 <= self.epsilon_cutoff < 1:
            raise ValueError(f"epsilon_cutoff must be in [0, 1), got {self.epsilon_cutoff}")
        if self.bad_words_ids is not None and not (
            isinstance(self.bad_words_ids, list)
            and self.bad_words_ids
            and all(
                isinstance(w, list) and w and all(isinstance(i, int) and i >= 0 for i in w)
                for w in self.bad_words_ids
            )
        ):
            raise ValueError(
                f"bad_words_ids must be a non-empty list of non-empty lists of token ids, got {self.bad_words_ids}; "
                "e.g. tokenizer(['bad word'], add_special_tokens=False).input_ids"
            )
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0 (1.0 = off), got {self.repetition_penalty}")

    # ---- files -------------------------------------------------------------------------------------------------
    @classmethod
    def from_model_config(cls, config: Any) -> GenerationConfig:
        """The special token ids of a model's ``config.json`` (what transformers derives without a file)."""
        return cls(**{k: getattr(config, k) for k in TOKEN_FIELDS if getattr(config, k, None) is not None})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> GenerationConfig:
        path = Path(directory) / GENERATION_CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {GENERATION_CONFIG_NAME} in '{directory}'")
        data = read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object; fix or delete the file")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {**self._extra, **self.set_fields(), "transformers_version": FORMAT_VERSION}

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / GENERATION_CONFIG_NAME, dict(sorted(self.to_dict().items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenerationConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"GenerationConfig({', '.join(f'{k}={v!r}' for k, v in self.set_fields().items())})"


def is_default(value: Any) -> bool:
    """Whether an option's value is transformers' "nothing asked for" (None, False, 0, 1, empty)."""
    if isinstance(value, bool):
        return value is False
    if isinstance(value, (int, float)):
        return value in (0, 1)
    return value is None or (isinstance(value, (list, tuple, dict)) and not value)


def check_supported(name: str, value: Any) -> None:
    if is_default(value):
        return
    raise ValueError(
        f"generate() does not support {name}={value!r} (a transformers option not implemented here); "
        f"remove it. Supported options: {', '.join(sorted(DEFAULTS))}"
    )
