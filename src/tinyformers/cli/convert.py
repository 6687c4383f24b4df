"""``tinyformers convert SOURCE DESTINATION``: a GGUF file to a safetensors folder that transformers loads, or a
folder's weights between model.safetensors and pytorch_model.bin. The destination appears whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .common import CommandError, add_command, file_sizes
from .output import print_data

WEIGHT_FORMATS = ("safetensors", "bin")


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "convert",
        "convert a model: GGUF -> safetensors folder, or safetensors <-> pytorch_model.bin",
        "  tinyformers convert model.gguf out/            dequantised fp32 folder that transformers loads\n"
        "  tinyformers convert FOLDER out/ --to bin       model.safetensors -> pytorch_model.bin\n"
        "  tinyformers convert FOLDER out/                to the other format (bin -> safetensors, ...)",
    )
    parser.add_argument("source", help="a .gguf file or a model folder")
    parser.add_argument(
        "destination", help="the folder to write (must not exist, or be empty, unless --force)"
    )
    parser.add_argument("--to", choices=WEIGHT_FORMATS, help="weight format to write")
    parser.add_argument("--force", action="store_true", help="replace a non-empty destination")
    parser.set_defaults(handler=handle)


def handle(args) -> None:
    print_data(convert(args), args.json)


def is_weight_file(path) -> bool:
    name = path.name
    return name.startswith(("model.safetensors", "pytorch_model.bin", "model-", "pytorch_model-")) and (
        name.endswith((".safetensors", ".bin", ".index.json"))
    )


def convert_gguf(source, target, fmt: str) -> None:
    """A GGUF file -> config.json, generation_config.json, weights and tokenizer files (dequantised to fp32)."""
    from ..auto import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source)  # shows a progress bar on a terminal
    model.save_pretrained(target, safe_serialization=fmt == "safetensors")
    AutoTokenizer.from_pretrained(source).save_pretrained(target)


def convert_folder(source, target, fmt: str) -> None:
    """Same tensors under the same names in the other file format; every other file copied as it is."""
    from tqdm.auto import tqdm

    from ..formats.checkpoint import find_weights, load_weights, save_state_dict

    state = {}
    for shard in tqdm(find_weights(source), desc="Reading weights", unit="file", disable=None):
        state.update(load_weights(shard))
    seen = set()
    for name, tensor in state.items():  # safetensors refuses tensors sharing memory (tied weights in a .bin)
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        state[name] = tensor.clone() if key in seen else tensor.contiguous()
        seen.add(key)
    save_state_dict(state, target, safe_serialization=fmt == "safetensors")
    for path in sorted(source.rglob("*")):
        if path.is_file() and not is_weight_file(path) and not path.name.startswith("."):
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.relative_to(source))


def convert(args) -> dict:
    source, target = Path(args.source).expanduser(), Path(args.destination).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not args.force:
        raise CommandError(
            f"'{target}' already exists and is not empty; choose another folder or pass --force"
        )
    gguf = source.is_file() and source.suffix == ".gguf"
    if not gguf and not source.is_dir():
        raise CommandError(f"'{source}' is neither a .gguf file nor a model folder")
    if gguf:
        fmt = args.to or "safetensors"
    else:
        from ..formats.checkpoint import find_weights

        current = "safetensors" if find_weights(source)[0].suffix == ".safetensors" else "bin"
        fmt = args.to or ("bin" if current == "safetensors" else "safetensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build everything in a temporary folder beside the target and rename it at the end: never half a model.
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (convert_gguf if gguf else convert_folder)(source, work, fmt)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    files = file_sizes(target.rglob("*"), target)
    return {"source": str(source), "destination": str(target), "format": fmt, "files": files}
