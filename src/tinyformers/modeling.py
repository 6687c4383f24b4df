"""``PreTrainedModel``: build a model from a config, load checkpoint weights into it, save it back.

Each model family keeps its own module tree (short names, fused projections) and declares a table of
``Rename`` rules from its parameter names to the Hugging Face checkpoint names. Loading maps checkpoint names to
ours; saving maps them back, so ``transformers`` reads what we write and we read what it writes.

Loading builds the model on the ``meta`` device (no memory, no random init) and assigns the memory-mapped
checkpoint tensors straight into it, so nothing is allocated twice. Only the weights a checkpoint lacks (a new
task head) are created and initialised, and the user is told which ones.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .configuration import PretrainedConfig
from .formats.checkpoint import load_state_dict, save_state_dict
from .formats.gguf import GGUFBlocks, load_gguf_checkpoint
from .hub import pin_revision, resolve_dir, resolve_gguf
from .hub import upload as hub_upload

logger = logging.getLogger("tinyformers")


# The initialisers that modules call while they are built (``reset_parameters``).
_INITIALISERS = (
    "normal_",
    "uniform_",
    "constant_",
    "ones_",
    "zeros_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "trunc_normal_",
)


def _unchanged(tensor, *args, **kwargs):
    return tensor


@contextlib.contextmanager
def empty_build():
    """Build modules on ``meta`` with their initialisers switched off (as transformers' ``no_init_weights``).

    On ``meta`` an initialiser has nothing to fill, but torch runs ``normal_`` there through its reference
    implementations, whose first use imports ``torch._dynamo``: more than a second of a cold start
    (benchmarks/README.md). The switch is process-wide for the length of the build, as transformers' is.
    """
    saved = {name: getattr(nn.init, name) for name in _INITIALISERS}
    try:
        for name in saved:
            setattr(nn.init, name, _unchanged)
        with torch.device("meta"):
            yield
    finally:
        for name, initialiser in saved.items():
            setattr(nn.init, name, initialiser)


@dataclass(frozen=True)
class Rename:
    """One of our parameter names and the checkpoint name(s) it comes from.

    ``{n}`` in a name matches a layer number and ``{p}`` either ``weight`` or ``bias``. When ``hf`` lists several names, their tensors are concatenated
    along dim 0 into our one (fused projections); ``split`` gives the row counts to cut it back apart when
    saving (default: equal parts). ``transpose`` is for checkpoints that store a matrix as [in, out].
    """

    ours: str
    hf: str | tuple[str, ...]
    split: Callable[[PretrainedConfig], list[int]] | None = None
    transpose: bool = False

    @property
    def hf_names(self) -> tuple[str, ...]:
        return (self.hf,) if isinstance(self.hf, str) else self.hf


def _pattern(template: str) -> re.Pattern:
    escaped = re.escape(template).replace(r"\{n\}", r"(?P<n>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(escaped + "$")


def _fill(template: str, m: re.Match) -> str:
    return template.format(**m.groupdict())


class WeightMap:
    """Two-way renaming between our state dict and a Hugging Face checkpoint's, following ``Rename`` rules."""

    def __init__(self, rules: list[Rename]):
        self.rules = rules
        self._by_hf = [(rule, _pattern(rule.hf_names[0])) for rule in rules]
        self._by_ours = [(rule, _pattern(rule.ours)) for rule in rules]

    @staticmethod
    def _split_prefix(key: str, pattern: re.Pattern) -> tuple[str, re.Match | None]:
        """Match ``pattern`` against the end of ``key``, allowing a leading ``prefix.`` (e.g. ``bert.``)."""
        m = pattern.match(key)
        if m:
            return "", m
        head, _, tail = key.partition(".")
        m = pattern.match(tail) if tail else None
        return (head + ".", m) if m else ("", None)

    def to_ours(self, hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        used: set[str] = set()
        for key in hf_state:
            for rule, pattern in self._by_hf:
                prefix, m = self._split_prefix(key, pattern)
                if m is None:
                    continue
                names = [prefix + _fill(name, m) for name in rule.hf_names]
                if any(name not in hf_state for name in names):
                    continue  # a partial fused group: leave it to be reported as unexpected
                tensors = [hf_state[name].t() if rule.transpose else hf_state[name] for name in names]
                out[prefix + _fill(rule.ours, m)] = tensors[0] if len(tensors) == 1 else torch.cat(tensors)
                used.update(names)
                break
        # Names no rule claimed pass through unchanged (head layers named alike in both trees).
        out.update((key, tensor) for key, tensor in hf_state.items() if key not in used)
        return out

    def hf_names(self, key: str) -> tuple[Rename | None, list[str]]:
        """The rule for our parameter ``key`` (None if no rule claims it) and the checkpoint name(s) it maps to."""
        for rule, pattern in self._by_ours:
            prefix, m = self._split_prefix(key, pattern)
            if m is not None:
                return rule, [prefix + _fill(name, m) for name in rule.hf_names]
        return None, [key]

    def to_hf(self, state: dict[str, torch.Tensor], config: PretrainedConfig) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for key, tensor in state.items():
            rule, names = self.hf_names(key)
            if rule is None:
                out[key] = tensor
                continue
            sizes = rule.split(config) if rule.split else [tensor.shape[0] // len(names)] * len(names)
            for name, part in zip(names, tensor.split(sizes) if len(names) > 1 else [tensor], strict=True):
                out[name] = (part.t() if rule.transpose else part).contiguous()
        return out


def _legacy_name(key: str) -> str:
    """Old (TF-converted) checkpoints call LayerNorm parameters gamma/beta; transformers renames them too."""
    if "LayerNorm" in key or "layer_norm" in key:
        if key.endswith(".gamma"):
            return key[: -len("gamma")] + "weight"
        if key.endswith(".beta"):
            return key[: -len("beta")] + "bias"
    return key


DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def resolve_dtype(dtype: Any, config: PretrainedConfig) -> torch.dtype | None:
    """``None`` keeps float32; "auto" takes the config's dtype; strings and torch dtypes are used as given."""
    if dtype is None:
        return torch.float32
    if dtype == "auto":
        dtype = config.dtype or "float32"
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in DTYPES:
            raise ValueError(f"dtype '{dtype}' is not supported; use one of {', '.join(DTYPES)} or 'auto'")
        return DTYPES[name]
    if isinstance(dtype, torch.dtype):
        return dtype
    raise TypeError(f"dtype must be a torch.dtype, a string such as 'float32', or 'auto', not {dtype!r}")


class PreTrainedModel(nn.Module):
    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    weight_map: ClassVar[WeightMap] = WeightMap([])
    # Checkpoint keys dropped silently (buffers that old checkpoints saved, e.g. BERT's position_ids).
    ignore_on_load: ClassVar[tuple[str, ...]] = ()
    # Our parameter name -> the parameter it shares storage with when config.tie_word_embeddings is set.
    tied_weights: ClassVar[dict[str, str]] = {}

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.config = config

    # ---- things every model has -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        params = {
            id(p): p for name, p in self.named_parameters() if not (exclude_embeddings and "embed" in name)
        }
        return sum(p.numel() for p in params.values())

    def _init_weights(self, module: nn.Module) -> None:
        """The initialisation transformers uses for BERT-like models: N(0, initializer_range), zero bias."""
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def tie_weights(self) -> None:
        if not getattr(self.config, "tie_word_embeddings", True):
            return
        for target, source in self.tied_weights.items():
            module_name, _, attr = target.rpartition(".")
            try:
                setattr(self.get_submodule(module_name), attr, self.get_parameter(source))
            except AttributeError:
                continue  # this class has no such head

    def _init_buffers(self) -> None:
        """Recompute non-persistent buffers (left on ``meta`` by a meta-device build)."""
        for module in self.modules():
            meta = [name for name, b in module.named_buffers(recurse=False) if b.is_meta]
            if meta:
                for name in meta:
                    # torch.empty rather than to_empty(): that runs empty_like's reference implementation, whose
                    # first use imports sympy and torch.fx (half a second of a cold start).
                    buffer = module._buffers[name]
                    module._buffers[name] = torch.empty(buffer.shape, dtype=buffer.dtype)
                if not hasattr(module, "init_buffers"):
                    raise RuntimeError(f"{type(module).__name__} has computed buffers but no init_buffers()")
                module.init_buffers()

    # ---- construction -----------------------------------------------------------------------------------------
    @classmethod
    def _check_config(cls, config: PretrainedConfig) -> None:
        if not isinstance(config, cls.config_class):
            raise TypeError(
                f"{cls.__name__} needs a {cls.config_class.__name__}, got {type(config).__name__}; "
                "use the Auto class matching the config's model_type"
            )

    @classmethod
    def from_config(cls, config: PretrainedConfig, dtype: Any = None, torch_dtype: Any = None):
        """A new model with randomly initialised weights (seed with ``torch.manual_seed`` for reproducibility)."""
        cls._check_config(config)
        with empty_build():
            model = cls(config)
        model.to_empty(device="cpu")
        model.apply(model._init_weights)
        model._init_buffers()
        model.tie_weights()
        model.to(resolve_dtype(dtype or torch_dtype, config))
        return model.eval()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *model_args: Any,
        config: PretrainedConfig | None = None,
        revision: str | None = None,
        gguf_file: str | None = None,
        dtype: Any = None,
        torch_dtype: Any = None,
        ignore_mismatched_sizes: bool = False,
        compile: bool | None = None,
        quantize: str | None = None,
        output_loading_info: bool = False,
        **config_kwargs: Any,
    ):
        """Load a model from a folder (or a hub id at ``revision``) holding ``config.json`` and its weights, or
        a GGUF file (``from_pretrained(folder, gguf_file="x.gguf")`` or ``from_pretrained("x.gguf")``;
        dequantised).

        Extra keyword arguments override config values, as in ``transformers`` (e.g. ``num_labels=3``).
        Models that generate (Llama, GPT-2, T5) take two speed options: ``quantize="int8"`` (weight-only int8
        matrices) and ``compile=True`` (a ``torch.compile``d decoding step; default on when the environment sets
        ``TINYFORMERS_COMPILE=1``); BERT models take ``quantize="int8"``. A GGUF file's Llama also takes
        ``quantize="gguf"``: its quantised matrices stay as the file's blocks in memory (see
        ``models/gguf_quantized.py``), fastest with ``compile=True``.
        ``output_loading_info=True`` returns ``(model, model.loading_info)`` as transformers does: the checkpoint
        names of the weights that were missing (newly initialised), unexpected (unused) or mismatched.
        """
        if model_args:
            raise TypeError(
                f"from_pretrained takes one positional argument, the model path; got {len(model_args) + 1}"
            )
        if config is not None:  # loading adjusts it (overrides, source, T5's head tying): not the caller's
            config = copy.deepcopy(config)
        revision = pin_revision(name_or_path, revision, gguf_file)  # config and weights from one commit
        gguf_path = resolve_gguf(name_or_path, gguf_file, revision)
        if quantize == "gguf" and gguf_path is None:
            raise ValueError(
                f"quantize='gguf' keeps the quantised blocks of a GGUF file, and {name_or_path} is not one; "
                "pass a .gguf file (or gguf_file=), or use quantize='int8'"
            )
        if gguf_path is not None:
            config_dict, state, _ = load_gguf_checkpoint(gguf_path, keep_blocks=quantize == "gguf")
            if config is None:
                config = cls.config_class.from_dict(config_dict, **config_kwargs)
        else:
            if config is None:
                config = cls.config_class.from_pretrained(name_or_path, revision=revision, **config_kwargs)
            directory = resolve_dir(name_or_path, revision=revision)
            state = load_state_dict(directory)
        for key, value in config_kwargs.items():
            setattr(config, key, value)
        config._name_or_path = str(name_or_path)
        config._commit_hash = revision  # a hub id's pinned commit: its other files are read from the same one
        cls._check_config(config)
        model = cls._from_state_dict(
            config, state, str(name_or_path), dtype or torch_dtype, ignore_mismatched_sizes
        )
        if gguf_path is None:
            model.load_generation_config(directory)
        model = model.speed_options(compile, quantize)
        return (model, model.loading_info) if output_loading_info else model

    def keep_gguf_blocks(
        self, state: dict[str, torch.Tensor], blocks: dict[str, GGUFBlocks], hf_state
    ) -> None:
        """``quantize="gguf"``: models that generate keep the quantised matrices as blocks (``SpeedOptions``)."""
        raise TypeError(f"quantize='gguf' applies to decoder models; {type(self).__name__} is not one")

    def speed_options(self, compile: bool | None, quantize: str | None) -> PreTrainedModel:
        """``from_pretrained``'s ``compile=`` and ``quantize=``: models that generate apply them
        (``SpeedOptions``), others refuse."""
        if compile or quantize:
            raise TypeError(
                f"compile= and quantize= apply to decoder models; {type(self).__name__} is not one"
            )
        return self

    def load_generation_config(self, directory: Path) -> None:
        """Models that generate read ``generation_config.json`` here (see ``GenerationMixin``); others need nothing."""

    @classmethod
    def adapt_config_to_checkpoint(cls, config: PretrainedConfig, hf_state: dict[str, torch.Tensor]) -> None:
        """Hook: settle config values that the checkpoint itself decides (T5: whether its head is tied)."""

    @classmethod
    def _match_checkpoint(
        cls,
        config: PretrainedConfig,
        hf_state: dict[str, torch.Tensor],
        source: str,
        ignore_mismatched_sizes: bool = False,
    ) -> tuple[PreTrainedModel, dict[str, torch.Tensor], dict[str, list[str]]]:
        """The model built on ``meta``, the checkpoint tensors renamed to its parameters, and the loading info
        (``missing_keys``, ``unexpected_keys``, ``mismatched_keys``, ``error_msgs``, checkpoint names as
        transformers reports them). Nothing is loaded or allocated: this is also how a checkpoint is checked
        for the weights a task head needs."""
        cls.adapt_config_to_checkpoint(config, hf_state)
        with empty_build():
            model = cls(config)
        ignore = [re.compile(p) for p in cls.ignore_on_load]
        hf_state = {_legacy_name(k): v for k, v in hf_state.items() if not any(p.search(k) for p in ignore)}
        state = model._match_prefix(cls.weight_map.to_ours(hf_state))
        expected = model.state_dict()
        unexpected = [k for k in state if k not in expected]
        mismatched = [k for k in state if k in expected and state[k].shape != expected[k].shape]
        if mismatched and not ignore_mismatched_sizes:
            k = mismatched[0]
            raise ValueError(
                f"weight {model._checkpoint_names(k, hf_state)} in {source} has shape {list(state[k].shape)} but "
                f"the model built from its config expects {list(expected[k].shape)} ({len(mismatched)} mismatched "
                "in all); the config does not match the weights — fix config.json, or pass "
                "ignore_mismatched_sizes=True to re-initialise them"
            )
        for k in unexpected + mismatched:
            state.pop(k)
        # Parameters only: buffers a checkpoint lacks are computed (``_init_buffers``), never random.
        parameters = {name for name, _ in model.named_parameters(remove_duplicate=False)}
        tied = set(model.tied_weights) if getattr(config, "tie_word_embeddings", True) else set()
        missing = [
            k for k in expected if k in parameters and k not in state and k not in tied | set(mismatched)
        ]
        info = {
            "missing_keys": [name for k in missing for name in model._hf_keys(k, hf_state)],
            "unexpected_keys": [name for k in unexpected for name in model._hf_keys(k, hf_state)],
            "mismatched_keys": [name for k in mismatched for name in model._hf_keys(k, hf_state)],
            "error_msgs": [],
        }
        return model, state, info

    @classmethod
    def untrained_weights(cls, config: PretrainedConfig, hf_state: dict[str, torch.Tensor]) -> list[str]:
        """The checkpoint names of the weights that loading ``hf_state`` into this class would initialise at
        random (a task head the checkpoint lacks, or one of the wrong shape), found without loading anything."""
        _, _, info = cls._match_checkpoint(copy.deepcopy(config), hf_state, "", ignore_mismatched_sizes=True)
        return info["missing_keys"] + info["mismatched_keys"]

    @classmethod
    def _from_state_dict(
        cls,
        config: PretrainedConfig,
        hf_state: dict[str, torch.Tensor],
        source: str,
        dtype: Any = None,
        ignore_mismatched_sizes: bool = False,
    ):
        # GGUF blocks (quantize="gguf") go through the renaming and shape checks as placeholders of their shape.
        blocks = {k: v for k, v in hf_state.items() if isinstance(v, GGUFBlocks)}
        if blocks:
            hf_state = {k: v.placeholder() if k in blocks else v for k, v in hf_state.items()}
        model, state, info = cls._match_checkpoint(config, hf_state, source, ignore_mismatched_sizes)
        if blocks:
            model.keep_gguf_blocks(state, blocks, hf_state)
        model.load_state_dict(state, strict=False, assign=True)
        model.tie_weights()
        model._materialise_missing()
        model._init_buffers()
        model.to(resolve_dtype(dtype, config))
        model.loading_info = info
        newly_initialised = info["missing_keys"] + info["mismatched_keys"]
        if newly_initialised:
            # transformers' words, so that what people search for when they see it still finds the answer
            logger.warning(
                "Some weights of %s were not initialized from the model checkpoint at %s and are newly "
                "initialized: %s. You should probably TRAIN this model on a down-stream task to be able to use "
                "it for predictions and inference.",
                cls.__name__,
                source,
                newly_initialised,
            )
        if info["unexpected_keys"]:
            logger.warning(
                "Some weights of the checkpoint at %s were not used by %s: %s",
                source,
                cls.__name__,
                info["unexpected_keys"],
            )
        return model.eval()

    def _match_prefix(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add or strip ``base_model_prefix.`` so a bare base-model checkpoint loads into a head model and back."""
        prefix = self.base_model_prefix + "."
        expected = set(self.state_dict())
        out = {}
        for key, tensor in state.items():
            if key not in expected:
                if prefix + key in expected:
                    key = prefix + key
                elif key.startswith(prefix) and key[len(prefix) :] in expected:
                    key = key[len(prefix) :]
            out[key] = tensor
        return out

    def _hf_keys(self, key: str, hf_state: dict[str, torch.Tensor]) -> list[str]:
        """Our parameter ``key`` as the checkpoint names it (``Rename`` tables in reverse, then the prefix
        ``_match_prefix`` added or stripped): the names found in ``hf_state`` if there are any, else the names
        this model's own checkpoint would use."""
        prefix = self.base_model_prefix + "."
        for variant in (key, key.removeprefix(prefix), prefix + key):
            _, names = self.weight_map.hf_names(variant)
            if all(name in hf_state for name in names):
                return names
        return self.weight_map.hf_names(key)[1]

    def _checkpoint_names(self, key: str, hf_state: dict[str, torch.Tensor]) -> str:
        """``_hf_keys`` quoted for a message, e.g. 'embeddings.word_embeddings.weight'; fused ones joined by +."""
        return " + ".join(f"'{name}'" for name in self._hf_keys(key, hf_state))

    def _materialise_missing(self) -> list[str]:
        """Create and initialise every parameter still on ``meta`` (not in the checkpoint); return their names."""
        missing = []
        for module_name, module in self.named_modules():
            params = dict(module.named_parameters(recurse=False))
            if not any(p.is_meta for p in params.values()):
                continue
            missing += [f"{module_name}.{n}".lstrip(".") for n, p in params.items() if p.is_meta]
            loaded = {n: p for n, p in params.items() if not p.is_meta}
            for (
                n,
                p,
            ) in params.items():  # init writes in place: give it fresh tensors, then restore loaded ones
                setattr(
                    module, n, nn.Parameter(torch.empty_like(p, device="cpu"), requires_grad=p.requires_grad)
                )
            self._init_weights(module)
            for n, p in loaded.items():
                setattr(module, n, p)
        return missing

    # ---- saving -------------------------------------------------------------------------------------------------
    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        revision: str = "main",
        token: str | None = None,
        **card: Any,
    ) -> dict[str, Any]:
        """Upload config, weights and a model card (when the repo has none) to ``repo_id`` on ``$HF_ENDPOINT``
        in one commit, creating the repo if needed. ``card``: license, base_model, tags, datasets, metrics."""
        card.setdefault("base_model", getattr(self.config, "_name_or_path", None))
        return hub_upload.push_to_hub(
            self.save_pretrained, repo_id, config={**self.config.to_dict(), "architectures": [type(self).__name__]},
            commit_message=commit_message, private=private, revision=revision, token=token, **card,
        )  # fmt: skip

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        max_shard_size: int | str = "5GB",
    ) -> None:
        """Write config.json and the weights under Hugging Face names, so ``transformers`` loads them."""
        if getattr(self, "quantization", None):
            raise ValueError(
                f"save_pretrained: this model's matrices were quantised to {self.quantization} in memory "
                "(quantize=), which no checkpoint format here holds; save the model loaded without quantize= "
                "and quantise again after loading"
            )
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"save_pretrained: '{directory}' is a file; pass a directory path")
        directory.mkdir(parents=True, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        self.config.dtype = str(self.dtype).removeprefix("torch.")
        self.config.save_pretrained(directory)
        state = self.state_dict()
        if getattr(self.config, "tie_word_embeddings", True):
            for target in self.tied_weights:
                state.pop(target, None)  # a tied copy is re-created from its source on load
        hf_state = self.weight_map.to_hf(state, self.config)
        save_state_dict(
            hf_state, directory, safe_serialization=safe_serialization, max_shard_size=max_shard_size
        )
        if hasattr(self, "generation_config") and self.generation_config is not None:
            self.generation_config.save_pretrained(directory)
