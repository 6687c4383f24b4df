"""What a commit says about its model: the card's YAML front matter, config.json, and the tags derived from them.

The hub reads these once per commit to ``main`` and keeps the result with the repo, so listing and search never
open a blob. ``model_info`` at another revision computes the same thing for that revision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import yaml

from .storage import FileEntry

WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".gguf",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".onnx",
    ".msgpack",
    ".nemo",
)
# huggingface.co's default "query files": fetching one of them is one download of the repo, however many other
# files come with it. Repos that have none of them are counted on their weight files instead.
COUNTED_FILES = ("config.json", "config.yaml", "hyperparams.yaml", "meta.yaml")
MAX_SAFETENSORS_HEADER = 25_000_000  # the limit huggingface_hub's get_safetensors_metadata applies
MAX_CARD_BYTES = 1 << 20

# The architecture's suffix -> the task the Hub shows when the card names none.
TASK_BY_HEAD = {
    "ForMaskedLM": "fill-mask",
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForCausalLM": "text-generation",
    "LMHeadModel": "text-generation",
    "ForConditionalGeneration": "text2text-generation",
    "Model": "feature-extraction",
}


def split_front_matter(text: str) -> tuple[dict, str, str | None]:
    """(card data, markdown body, error) of a README: the YAML between leading ``---`` lines, if any."""
    if not text.startswith("---"):
        return {}, text, None
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            body = "".join(lines[i + 1 :])
            try:
                data = yaml.safe_load("".join(lines[1:i])) or {}
            except yaml.YAMLError as e:
                return {}, body, f"invalid YAML in the model card's metadata: {' '.join(str(e).split())}"
            if not isinstance(data, dict):
                return {}, body, "the model card's metadata must be a YAML mapping (key: value lines)"
            return data, body, None
    return {}, text, "the model card's metadata block starts with '---' but never ends with a '---' line"


def _json_safe(value):
    # YAML dates and other non-JSON scalars become strings, as the Hub returns them.
    return json.loads(json.dumps(value, default=str))


def describe(
    files: dict[str, FileEntry],
    read_small: Callable[[FileEntry], bytes | None],
    read_head: Callable[[FileEntry, int], bytes],
) -> dict:
    """The listing metadata of one commit: task, library, tags, card data, model type, license, parameters.

    ``read_small`` returns a (small) file's bytes, or None if it is too large to be a card or a config;
    ``read_head`` the first bytes of any file.
    """
    card: dict = {}
    if "README.md" in files:
        raw = read_small(files["README.md"])
        if raw is not None:
            card, _, _ = split_front_matter(raw.decode("utf-8", errors="replace"))
    card = _json_safe(card)
    config: dict = {}
    if "config.json" in files:
        raw = read_small(files["config.json"])
        try:
            loaded = json.loads(raw) if raw else {}
            config = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            config = {}
    model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    architectures = [a for a in config.get("architectures") or [] if isinstance(a, str)]

    library = card.get("library_name")
    if not isinstance(library, str):
        if "modules.json" in files and "config_sentence_transformers.json" in files:
            library = "sentence-transformers"
        elif "config.json" in files:
            library = "transformers"
        elif any(path.endswith(".gguf") for path in files):
            library = "gguf"
        else:
            library = None
    task = card.get("pipeline_tag")
    if not isinstance(task, str):
        task = _task_from_architectures(architectures)
        if library == "sentence-transformers":
            task = "sentence-similarity"

    tags = [t for t in card.get("tags") or [] if isinstance(t, str)]
    derived = [library, model_type, task]
    derived += ["safetensors"] if any(p.endswith(".safetensors") for p in files) else []
    derived += ["gguf"] if any(p.endswith(".gguf") for p in files) else []
    licence = card.get("license")
    derived += [f"license:{licence}"] if isinstance(licence, str) else []
    datasets = card.get("datasets")
    derived += [f"dataset:{d}" for d in datasets if isinstance(d, str)] if isinstance(datasets, list) else []
    base = card.get("base_model")
    derived += [f"base_model:{base}"] if isinstance(base, str) else []
    tags = list(dict.fromkeys(t for t in tags + derived if t))

    meta = {"tags": tags, "card_data": card or None, "model_type": model_type}
    meta["pipeline_tag"] = task
    meta["library_name"] = library
    if config:
        meta["config"] = {"architectures": architectures, "model_type": model_type}
    meta["safetensors"] = safetensors_summary(files, read_head)
    return meta


def safetensors_summary(
    files: dict[str, FileEntry], read_head: Callable[[FileEntry, int], bytes]
) -> dict | None:
    """huggingface.co's ``safetensors`` field: tensor elements per dtype over the commit's safetensors files
    (every shard), read from their headers alone."""
    counts: dict[str, int] = {}
    for path, entry in sorted(files.items()):
        if not path.endswith(".safetensors") or entry.size < 8:
            continue
        length = int.from_bytes(read_head(entry, 8), "little")
        if length > MAX_SAFETENSORS_HEADER or 8 + length > entry.size:
            continue
        try:
            header = json.loads(read_head(entry, 8 + length)[8:])
        except ValueError:
            continue
        for name, tensor in header.items() if isinstance(header, dict) else ():
            shape = tensor.get("shape") if isinstance(tensor, dict) and name != "__metadata__" else None
            if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
                counts[str(tensor.get("dtype"))] = counts.get(str(tensor.get("dtype")), 0) + math.prod(shape)
    return {"parameters": counts, "total": sum(counts.values())} if counts else None


def _task_from_architectures(architectures: list[str]) -> str | None:
    for architecture in architectures:
        for suffix, task in TASK_BY_HEAD.items():
            if architecture.endswith(suffix):
                return task
    return None


def counts_as_download(path: str, files: dict[str, FileEntry]) -> bool:
    """Whether serving ``path`` counts one download, the way huggingface.co counts them."""
    if any(name in files for name in COUNTED_FILES):
        return path in COUNTED_FILES
    return path.endswith(WEIGHT_SUFFIXES)
