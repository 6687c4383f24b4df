"""``tinyformers info MODEL``: the model-choosing checklist — type, architecture, size, context length,
license, model card and files — read from config.json, the weight headers and README.md, or a GGUF header."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..hub.card import card_summary
from .common import add_command, file_sizes
from .output import print_data


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "info",
        "what a model is before you use it: type, architecture, size, context length, license, card, files",
        "  tinyformers info .assets/minilm\n"
        "  tinyformers info .assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --json",
    )
    parser.add_argument(
        "model", help="a folder holding config.json, a .gguf file, or a hub id (downloaded into the cache)"
    )
    parser.set_defaults(handler=handle)


def handle(args) -> None:
    print_data(info(args), args.json)


ARCHITECTURE_OF_GGUF = {"llama": "LlamaForCausalLM"}


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def weights_summary(directory) -> tuple[int | None, str | None]:
    """(parameter count, float dtype) from the weight files; int buffers (BERT's position_ids) are not
    parameters. Safetensors headers are read without loading any tensor."""
    from ..formats.checkpoint import find_weights, load_weights
    from ..formats.safetensors import read_header

    shapes, dtypes = {}, set()
    for weights in find_weights(directory):
        if weights.suffix == ".safetensors":
            header = {k: v for k, v in read_header(weights)[0].items() if k != "__metadata__"}
            shapes.update({name: entry["shape"] for name, entry in header.items()})
            dtypes.update(SAFETENSORS_DTYPES.get(entry["dtype"]) for entry in header.values())
        else:
            for name, tensor in load_weights(weights).items():
                shapes[name] = tuple(tensor.shape)
                dtypes.add(str(tensor.dtype).removeprefix("torch.") if tensor.is_floating_point() else None)
    total = sum(numel(shape) for name, shape in shapes.items() if not name.endswith("position_ids"))
    return total or None, ", ".join(sorted(d for d in dtypes if d)) or None


def model_card(directory) -> dict | None:
    """License, tags and a one-paragraph summary from the model card (README.md), when there is one."""
    readme = directory / "README.md"
    return card_summary(readme.read_text(encoding="utf-8", errors="replace")) if readme.is_file() else None


def fitting_tasks(model_type: str | None) -> list[str]:
    from ..pipelines import tasks_for_model_type

    return tasks_for_model_type(model_type) if model_type else []


def trained_tasks_of(directory, config: dict) -> list[str]:
    """The tasks the folder's weights can serve: a checkpoint without a trained head (a bare encoder such as
    all-MiniLM-L6-v2) serves feature-extraction, not a classifier whose head would be random."""
    from ..auto import CONFIGS, AutoConfig
    from ..formats.checkpoint import load_state_dict
    from ..pipelines import trained_tasks

    if config.get("model_type") not in CONFIGS:
        return []
    return trained_tasks(AutoConfig.from_pretrained(directory), load_state_dict(directory))


def gguf_info(path) -> dict:
    from ..formats.gguf import GGUFFile, gguf_config

    gguf = GGUFFile(path)
    meta = gguf.metadata
    config = gguf_config(gguf)
    types = Counter(info.type_name for info in gguf.tensors.values())
    return {
        "path": str(path),
        "format": "gguf",
        "name": meta.get("general.name"),
        "model_type": config["model_type"],
        "architectures": [ARCHITECTURE_OF_GGUF.get(config["model_type"], config["model_type"])],
        "parameters": sum(numel(info.shape) for info in gguf.tensors.values()),
        "dtype": ", ".join(f"{name} x{n}" for name, n in types.most_common()),
        "context_length": config.get("max_position_embeddings"),
        "license": meta.get("general.license"),
        "chat_template": "tokenizer.chat_template" in meta,
        "tasks": fitting_tasks(config["model_type"]),
        "files": file_sizes([path], path.parent),
    }


def info(args) -> dict:
    from ..configuration import read_config_dict
    from ..hub import resolve_dir

    path = Path(args.model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return gguf_info(path)
    directory = resolve_dir(args.model)
    _, config = read_config_dict(directory)
    card = model_card(directory)
    parameters, weights_dtype = weights_summary(directory)
    context = next(
        (config[k] for k in ("max_position_embeddings", "n_positions", "n_ctx") if k in config), None
    )
    return {
        "path": str(directory),
        "format": "transformers folder",
        "model_type": config.get("model_type"),
        "architectures": config.get("architectures"),
        "parameters": parameters,
        "dtype": config.get("dtype") or config.get("torch_dtype") or weights_dtype,
        "context_length": context,
        "license": (card or {}).get("license"),
        "card": card,
        "tasks": trained_tasks_of(directory, config),
        "files": file_sizes(directory.rglob("*"), directory),
    }
