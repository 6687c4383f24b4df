"""LoRA: low-rank adapters on chosen linear layers, trained while the base model stays frozen.

A targeted layer computes ``W x + B A dropout(x) * alpha / r`` (``alpha / sqrt(r)`` with rsLoRA), where ``A`` is
[r, in] and ``B`` [out, r]; ``B`` starts at zero, so a fresh adapter changes nothing. Adapters are saved as the
``peft`` library saves them (``adapter_config.json`` + ``adapter_model.safetensors``, tensors named
``base_model.model.<checkpoint module name>.lora_A.weight``), so ``peft`` loads ours onto a transformers model
and we load theirs.

Layers are chosen by their names *in the checkpoint* (``q_proj``, ``query``, ``q``...), as in ``peft``. Our models
fuse some projections (Llama's q/k/v are one matrix), so one of our layers may hold several checkpoint
layers: each adapter then updates only its own rows of the fused output. The model's ``weight_map`` (the same
renaming that ``save_pretrained`` uses) says which rows those are.

GPT-2 keeps its matrices [in, out] (``Conv1D``, peft's ``fan_in_fan_out``): the adapters are the same [r, in] and
[out, r] matrices; only merging transposes the update.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..formats.safetensors import load_file, save_file
from ..models.gpt2 import Conv1D
from ..utils import atomic_write_json, read_json

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
SAVED_PREFIX = "base_model.model."  # what peft puts before every module name in a saved adapter

# peft's defaults when target_modules is not given (its TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
DEFAULT_TARGETS = {
    "llama": ["q_proj", "v_proj"],
    "bert": ["query", "value"],
    "t5": ["q", "v"],
    "gpt2": ["c_attn"],
}
# Heads that a classification adapter trains in full, as peft does for these task types.
OUTPUT_HEADS = ("lm_head", "classifier", "score")
TASK_MODULES_TO_SAVE = {"SEQ_CLS": ["classifier", "score"], "TOKEN_CLS": ["classifier", "score"]}


@dataclass
class LoraConfig:
    """The adapter's settings, with ``peft.LoraConfig``'s names and defaults for what is implemented here."""

    r: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.0
    target_modules: list[str] | str | None = None
    modules_to_save: list[str] | None = None
    use_rslora: bool = False
    bias: str = "none"
    fan_in_fan_out: bool = False
    init_lora_weights: bool = True
    task_type: str | None = None
    base_model_name_or_path: str | None = None
    inference_mode: bool = False
    peft_type: str = field(default="LORA", init=False)

    def __post_init__(self) -> None:
        if self.r <= 0:
            raise ValueError(f"LoraConfig: r must be a positive rank, got {self.r}")
        if self.bias != "none":
            raise ValueError(f"LoraConfig: bias='{self.bias}' is not supported; use bias='none'")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"LoraConfig: lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if isinstance(self.target_modules, (set, tuple)):
            self.target_modules = sorted(self.target_modules)

    @property
    def scaling(self) -> float:
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    # Options peft writes that change nothing for the adapters built here; any other value is refused on load.
    _INERT = {
        "alpha_pattern": {},
        "rank_pattern": {},
        "use_dora": False,
        "layers_to_transform": None,
        "layers_pattern": None,
        "exclude_modules": None,
        "lora_bias": False,
        "layer_replication": None,
        "target_parameters": None,
        "trainable_token_indices": None,
        "use_qalora": False,
        "alora_invocation_tokens": None,
    }

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> LoraConfig:
        path = Path(directory) / ADAPTER_CONFIG
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: '{directory}' is not a LoRA adapter folder")
        data = read_json(path)
        if data.get("peft_type", "LORA") != "LORA":
            raise ValueError(
                f"{path}: peft_type '{data['peft_type']}' is not supported; only LORA adapters load"
            )
        for key, inert in cls._INERT.items():
            if data.get(key, inert) not in (inert, None, {}, False):
                raise ValueError(f"{path}: {key}={data[key]!r} is not supported by this LoRA implementation")
        known = {f for f in cls.__dataclass_fields__ if f != "peft_type"}
        config = cls(**{k: v for k, v in data.items() if k in known})
        if isinstance(config.init_lora_weights, str):
            config.init_lora_weights = True
        return config

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(self._INERT)
        out["peft_type"] = "LORA"
        return out


@dataclass(frozen=True)
class Part:
    """One checkpoint layer inside one of our layers: its name and the rows of our output it produces."""

    name: str
    start: int
    stop: int


LINEAR_LAYERS = (nn.Linear, Conv1D)  # nn.Linear holds its weight [out, in], Conv1D [in, out]


class LoraLinear(nn.Module):
    """A frozen linear layer plus one low-rank update per checkpoint layer it holds."""

    def __init__(self, base: nn.Linear | Conv1D, parts: list[Part], config: LoraConfig):
        super().__init__()
        self.base = base
        self.parts = sorted(parts, key=lambda p: p.start)
        self.scaling = config.scaling
        self.dropout = config.lora_dropout
        device, dtype = base.weight.device, base.weight.dtype
        self.lora_A = nn.ParameterList(
            nn.Parameter(torch.empty(config.r, base.in_features, device=device, dtype=dtype)) for _ in parts
        )
        self.lora_B = nn.ParameterList(
            nn.Parameter(torch.zeros(p.stop - p.start, config.r, device=device, dtype=dtype))
            for p in self.parts
        )
        for a, b in zip(self.lora_A, self.lora_B, strict=True):
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # peft's (and nn.Linear's) initialisation of A
            if not config.init_lora_weights:
                nn.init.kaiming_uniform_(b, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        h = F.dropout(x, self.dropout, self.training) if self.dropout else x
        pieces, cursor = [], 0
        for part, a, b in zip(self.parts, self.lora_A, self.lora_B, strict=True):
            if part.start > cursor:
                pieces.append(y.new_zeros(*y.shape[:-1], part.start - cursor))
            pieces.append(F.linear(F.linear(h, a), b) * self.scaling)
            cursor = part.stop
        if cursor < y.shape[-1]:
            pieces.append(y.new_zeros(*y.shape[:-1], y.shape[-1] - cursor))
        return y + (pieces[0] if len(pieces) == 1 else torch.cat(pieces, -1))

    @torch.no_grad()
    def merged(self) -> nn.Linear | Conv1D:
        """The base layer with every update added into its weight."""
        for part, a, b in zip(self.parts, self.lora_A, self.lora_B, strict=True):
            update = (b @ a) * self.scaling
            if isinstance(self.base, Conv1D):
                self.base.weight[:, part.start : part.stop] += update.T
            else:
                self.base.weight[part.start : part.stop] += update
        return self.base


def checkpoint_layers(model: nn.Module) -> dict[str, list[Part]]:
    """Our linear layers by module path, each with the checkpoint layers it holds and their rows.

    The rows come from renaming a stand-in weight whose rows are numbered: wherever ``save_pretrained`` would
    cut a fused matrix, the numbers show where."""
    weight_map = getattr(model, "weight_map", None)
    if weight_map is None:
        raise TypeError(f"LoRA needs a tinyformers model (PreTrainedModel), got {type(model).__name__}")
    out: dict[str, list[Part]] = {}
    for path, module in model.named_modules():
        if not isinstance(module, LINEAR_LAYERS):
            continue
        rows = torch.arange(module.out_features, dtype=torch.float32)[:, None]
        if isinstance(module, Conv1D):
            rows = rows.T  # numbered columns, as its [in, out] weight has its outputs
        for key, numbered in weight_map.to_hf({f"{path}.weight": rows}, model.config).items():
            numbers = numbered.flatten().long()
            part = Part(key.removesuffix(".weight"), int(numbers[0]), int(numbers[-1]) + 1)
            out.setdefault(path, []).append(part)
    return out


def _matches(name: str, targets: list[str] | str) -> bool:
    """peft's rule: a regular expression matches the whole name; a list entry matches the last dotted parts;
    "all-linear" is every linear layer but the output heads."""
    if targets == "all-linear":
        return name.rsplit(".", 1)[-1] not in OUTPUT_HEADS
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


class LoraModel(nn.Module):
    """A model with LoRA adapters: calls, ``generate`` and attributes go to the wrapped model; saving writes the
    adapter only (as ``peft.PeftModel`` does); ``merge_and_unload()`` gives back a plain model."""

    def __init__(self, model: nn.Module, config: LoraConfig):
        super().__init__()
        self.model = model
        self.lora_config = config
        model_type = getattr(model.config, "model_type", None)
        targets = config.target_modules or DEFAULT_TARGETS.get(model_type)
        if not targets:
            raise ValueError(
                f"LoraConfig: no target_modules given and no default for model type '{model_type}'; "
                "name the layers to adapt, e.g. target_modules=['q_proj', 'v_proj']"
            )
        config.target_modules = targets
        if config.modules_to_save is None and config.task_type in TASK_MODULES_TO_SAVE:
            config.modules_to_save = TASK_MODULES_TO_SAVE[config.task_type]
        self._wrap(targets)
        for p in model.parameters():
            p.requires_grad_(False)
        for p in self.adapter_parameters().values():
            p.requires_grad_(True)

    def _wrap(self, targets: list[str] | str) -> None:
        wrapped = 0
        for path, parts in checkpoint_layers(self.model).items():
            chosen = [p for p in parts if _matches(p.name, targets)]
            if not chosen:
                continue
            parent_path, _, child = path.rpartition(".")
            parent = self.model.get_submodule(parent_path)
            base = getattr(parent, child)
            # peft sets fan_in_fan_out for [in, out] layers itself (with a warning); saved, it says the layout
            self.lora_config.fan_in_fan_out = isinstance(base, Conv1D)
            setattr(parent, child, LoraLinear(base, chosen, self.lora_config))
            wrapped += 1
        if not wrapped:
            known = sorted(
                {p.name.rsplit(".", 1)[-1] for ps in checkpoint_layers(self.model).values() for p in ps}
            )
            raise ValueError(
                f"LoraConfig: target_modules {targets!r} match no linear layer of this "
                f"{type(self.model).__name__}; its layers are named: {', '.join(known)}"
            )

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def generate(self, *args, **kwargs):
        return self.model.generate(*args, **kwargs)

    def saved_modules(self) -> dict[str, nn.Module]:
        """Whole modules trained and saved with the adapter (``modules_to_save``: e.g. a classifier head)."""
        names = self.lora_config.modules_to_save or []
        return {
            path: module
            for path, module in self.model.named_modules()
            if path and any(path == n or path.endswith("." + n) for n in names)
        }

    def adapter_parameters(self) -> dict[str, nn.Parameter]:
        """The adapter's parameters under the names peft saves them with."""
        params = {}
        for module in self.model.modules():
            if isinstance(module, LoraLinear):
                for part, a, b in zip(module.parts, module.lora_A, module.lora_B, strict=True):
                    params[f"{SAVED_PREFIX}{part.name}.lora_A.weight"] = a
                    params[f"{SAVED_PREFIX}{part.name}.lora_B.weight"] = b
        for path, module in self.saved_modules().items():
            for name, p in module.named_parameters():
                params[f"{SAVED_PREFIX}{path}.{name}"] = p
        return params

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor], source: str) -> None:
        params = self.adapter_parameters()
        missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or unexpected:
            problem = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
            raise ValueError(
                f"adapter weights in {source} do not fit this model ({problem}); load the adapter onto the base "
                "model it was trained from"
            )
        with torch.no_grad():
            for key, tensor in state.items():
                if params[key].shape != tensor.shape:
                    raise ValueError(
                        f"adapter weight '{key}' in {source} has shape {list(tensor.shape)}, the model expects "
                        f"{list(params[key].shape)}; load the adapter onto the base model it was trained from"
                    )
                params[key].copy_(tensor)

    def save_pretrained(self, save_directory: str | Path, **_ignored) -> None:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` (the adapter only, as peft does)."""
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"save_pretrained: '{directory}' is a file; pass a directory path")
        directory.mkdir(parents=True, exist_ok=True)
        config = self.lora_config
        if config.base_model_name_or_path is None:
            config.base_model_name_or_path = getattr(self.model.config, "_name_or_path", None) or None
        save_file(self.adapter_parameters(), directory / ADAPTER_WEIGHTS)
        atomic_write_json(directory / ADAPTER_CONFIG, config.to_dict())

    @classmethod
    def from_pretrained(cls, model: nn.Module, adapter_directory: str | Path, is_trainable: bool = False):
        """Put the adapter saved in ``adapter_directory`` (by us or by peft) onto ``model``."""
        config = LoraConfig.from_pretrained(adapter_directory)
        config.init_lora_weights = True
        wrapped = cls(model, config)
        wrapped.load_trained_weights(adapter_directory)
        if not is_trainable:
            wrapped.requires_grad_(False)
            wrapped.eval()
        return wrapped

    def load_trained_weights(self, directory: str | Path) -> None:
        """Copy the adapter saved in ``directory`` into this model in place (``Trainer`` resuming, or keeping
        the best checkpoint: the optimiser keeps its parameters)."""
        path = Path(directory) / ADAPTER_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; the folder holds no LoRA adapter")
        self.load_adapter_state_dict(load_file(path), str(path))

    def merge_and_unload(self) -> nn.Module:
        """Add every update into its base weight and return the plain model (no adapters left)."""
        for path, module in list(self.model.named_modules()):
            if isinstance(module, LoraLinear):
                parent_path, _, child = path.rpartition(".")
                setattr(self.model.get_submodule(parent_path), child, module.merged())
        for p in self.model.parameters():
            p.requires_grad_(True)
        return self.model

    def trainable_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameter counts."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, sum(p.numel() for p in self.parameters())

    def print_trainable_parameters(self) -> None:
        trainable, total = self.trainable_parameters()
        print(
            f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}"
        )


def get_peft_model(model: nn.Module, config: LoraConfig) -> LoraModel:
    """``peft.get_peft_model``'s name: wrap ``model`` with fresh adapters; only they (and ``modules_to_save``)
    train."""
    return LoraModel(model, config)
