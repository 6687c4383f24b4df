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
        "  tinyformers info .assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --json\n"
        "  tinyformers info alice/minilm --revision v1     a hub id: config, card and file list, no weights",
    )
    parser.add_argument(
        "model", help="a folder holding config.json, a .gguf file, or a hub id (read without its weights)"
    )
    parser.add_argument("--revision", help="for a hub id: branch, tag or commit (default main)")
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


def context_length(config: dict) -> int | None:
    return next((config[k] for k in ("max_position_embeddings", "n_positions", "n_ctx") if k in config), None)


def repo_size(model: dict) -> int | None:
    """Bytes in a hub repo, from a model_info / list_models answer (None when the sizes are not given)."""
    if model.get("usedStorage") is not None:
        return model["usedStorage"]
    sizes = [s.get("size") for s in model.get("siblings") or []]
    return sum(sizes) if sizes and None not in sizes else None


def hub_info(repo_id: str, revision: str | None = None) -> dict:
    """The checklist for a model on the hub, without its weights: ``model_info`` (one API call, which also
    lists the files, so no tree request), then only ``config.json`` and ``README.md`` into the cache."""
    from ..configuration import CONFIG_NAME
    from ..hub import api
    from ..hub.download import hub_file, remember_listing
    from ..utils import read_json

    remote = api.model_info(repo_id, revision)
    sha, listing = remote["sha"], api.listing_of(remote)
    if listing is not None:
        remember_listing(repo_id, sha, listing)
    files = {s["rfilename"]: s.get("size") for s in remote.get("siblings") or []}
    config = read_json(hub_file(repo_id, CONFIG_NAME, sha)) if CONFIG_NAME in files else {}
    readme = hub_file(repo_id, "README.md", sha) if "README.md" in files else None
    card = card_summary(readme.read_text(encoding="utf-8", errors="replace")) if readme else None
    # Tensor elements per dtype, from the hub's safetensors summary; integer buffers are not parameters.
    counts = (remote.get("safetensors") or {}).get("parameters") or {}
    counts = {dtype: n for dtype, n in counts.items() if dtype.startswith(("F", "BF"))}
    weights_dtype = ", ".join(sorted(SAFETENSORS_DTYPES.get(k, k.lower()) for k in counts)) or None
    return {
        "id": remote["id"],
        "format": "hub repo",
        "revision": revision or "main",
        "sha": sha,
        "task": remote.get("pipeline_tag"),
        "library": remote.get("library_name"),
        "model_type": config.get("model_type"),
        "architectures": config.get("architectures"),
        "parameters": sum(counts.values()) or None,
        "dtype": config.get("dtype") or config.get("torch_dtype") or weights_dtype,
        "context_length": context_length(config),
        "license": (card or {}).get("license"),
        "downloads": remote.get("downloads"),
        "likes": remote.get("likes"),
        "updated": remote.get("lastModified"),
        "card": card,
        "tasks": fitting_tasks(config.get("model_type")),
        "size": repo_size(remote),
        "files": files,
    }


def info(args) -> dict:
    from ..configuration import read_config_dict
    from ..hub import is_hub_id, resolve_dir
    from ..hub.http import is_offline

    path = Path(args.model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return gguf_info(path)
    if is_hub_id(args.model) and not is_offline():  # offline, the cached snapshot below is all there is
        return hub_info(args.model, args.revision)
    directory = resolve_dir(args.model, args.revision)
    _, config = read_config_dict(directory)
    card = model_card(directory)
    parameters, weights_dtype = weights_summary(directory)
    return {
        "path": str(directory),
        "format": "transformers folder",
        "model_type": config.get("model_type"),
        "architectures": config.get("architectures"),
        "parameters": parameters,
        "dtype": config.get("dtype") or config.get("torch_dtype") or weights_dtype,
        "context_length": context_length(config),
        "license": (card or {}).get("license"),
        "card": card,
        "tasks": trained_tasks_of(directory, config),
        "files": file_sizes(directory.rglob("*"), directory),
    }
