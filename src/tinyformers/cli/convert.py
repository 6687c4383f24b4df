"""``tinyformers convert SOURCE DESTINATION``: a GGUF file to a safetensors folder that transformers loads, or a
folder's weights between model.safetensors and pytorch_model.bin. The model is built in a temporary folder and
moved into place at the end, so a failed or stopped conversion leaves nothing; into an existing folder (--force)
it moves only the files it wrote, and never touches the source."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..hub import is_hub_id, resolve_dir
from ..utils import temp_dir
from .common import CommandError, add_command, file_sizes
from .jobs import signals_as_interrupts, stopped_exit
from .output import print_data

WEIGHT_FORMATS = ("safetensors", "bin")


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "convert",
        "convert a model: GGUF -> safetensors folder, or safetensors <-> pytorch_model.bin",
        "  tinyformers convert model.gguf out/            dequantised fp32 folder that transformers loads\n"
        "  tinyformers convert FOLDER out/ --to bin       model.safetensors -> pytorch_model.bin\n"
        "  tinyformers convert FOLDER out/                to the other format (bin -> safetensors, ...)\n"
        "  tinyformers convert NAMESPACE/NAME out/        a hub model, likewise",
    )
    parser.add_argument(
        "source", help="a .gguf file, a model folder or a hub id (downloaded into the hub cache)"
    )
    parser.add_argument(
        "destination", help="the folder to write (must not exist, or be empty, unless --force)"
    )
    parser.add_argument("--to", choices=WEIGHT_FORMATS, help="weight format to write")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty destination: files of the same name are replaced and weight files of the "
        "other format (which loaders would read instead) removed; other files and folders stay",
    )
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
            shutil.copyfile(path, target / path.relative_to(source))  # new files: the user's umask


def check_destination(source: Path, target: Path, force: bool) -> None:
    """Refuse a destination whose writing could destroy the source or files the user did not ask to replace."""
    src, dst = source.resolve(), target.resolve()
    if dst == src:
        raise CommandError(f"'{target}' is the source itself; write the converted model to another folder")
    if dst in src.parents:
        raise CommandError(
            f"'{target}' contains the source '{source}'; write the converted model to a folder of its own"
        )
    if src in dst.parents and source.is_dir():
        raise CommandError(f"'{target}' is inside the source folder '{source}'; choose a folder outside it")
    if target.exists() and not target.is_dir():
        raise CommandError(f"'{target}' is a file; give the name of a folder to write")
    if target.exists() and any(target.iterdir()) and not force:
        raise CommandError(
            f"'{target}' already exists and is not empty; choose another folder or pass --force"
        )


def move_into(work: Path, target: Path) -> tuple[list[Path], list[str]]:
    """Move the files of ``work`` into the existing folder ``target``, replacing those of the same name and
    removing weight files that would be loaded instead of the new ones; the files moved and those removed."""
    written = sorted(p.relative_to(work) for p in work.rglob("*") if p.is_file())
    stale = sorted(p for p in target.iterdir() if p.is_file() and is_weight_file(p))
    stale = [p for p in stale if p.relative_to(target) not in written]
    for name in written:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / name, target / name)
    for path in stale:
        path.unlink()
    shutil.rmtree(work)
    return [target / name for name in written], [p.name for p in stale]


def convert(args) -> dict:
    source, target = Path(args.source).expanduser(), Path(args.destination).expanduser()
    if is_hub_id(args.source):
        source = resolve_dir(
            args.source
        )  # the model's files in the hub cache, as from_pretrained fetches them
    gguf = source.is_file() and source.suffix == ".gguf"
    if not gguf and not source.is_dir():
        raise CommandError(
            f"'{source}' is neither a .gguf file, a model folder nor a hub id (namespace/name)"
        )
    check_destination(source, target, args.force)
    if gguf:
        fmt = args.to or "safetensors"
    else:
        from ..formats.checkpoint import find_weights

        current = "safetensors" if find_weights(source)[0].suffix == ".safetensors" else "bin"
        fmt = args.to or ("bin" if current == "safetensors" else "safetensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build everything in a temporary folder beside the target and move it at the end: never half a model.
    work = temp_dir(target.parent, target.name)
    try:
        with signals_as_interrupts():
            (convert_gguf if gguf else convert_folder)(source, work, fmt)
            if target.exists():
                files, removed = move_into(work, target)
            else:
                os.replace(work, target)
                files, removed = list(target.rglob("*")), []
    except KeyboardInterrupt as stop:
        shutil.rmtree(work, ignore_errors=True)
        raise stopped_exit(stop, f"nothing was written to '{target}'") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    data = {"source": str(source), "destination": str(target), "format": fmt}
    return {**data, "files": file_sizes(files, target), **({"removed": removed} if removed else {})}
