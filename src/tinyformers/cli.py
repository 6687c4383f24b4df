"""tinyformers — the Hugging Face Transformers workflow from the command line, offline.

Run a task on a few texts:
  tinyformers run fill-mask "Paris is the [MASK] of France." --model FOLDER
  tinyformers run token-classification "My name is Ada." --model FOLDER -p aggregation_strategy=simple
  tinyformers embed "A sentence." "Another one."      vectors from all-MiniLM-L6-v2 (+ their similarities)
  tinyformers classify "Great movie!" --model FOLDER --top-k 2
  tinyformers generate "Once upon a time" --max-new-tokens 30
  tinyformers chat                                    talk to SmolLM2, streaming (--prompt TEXT: one answer)

Look at and convert models:
  tinyformers info FOLDER_OR_GGUF                     type, size, context length, license, files
  tinyformers convert model.gguf OUT_FOLDER           GGUF -> safetensors folder that transformers loads
  tinyformers convert FOLDER OUT_FOLDER --to bin      model.safetensors <-> pytorch_model.bin
  tinyformers env                                     versions, for bug reports

Hubs: tinyformers hub serve / token create to host one; hub login / whoami / search / info / download /
upload to use one ($HF_ENDPOINT; see tinyformers hub --help).

Batch jobs: --input texts.jsonl --output results.jsonl (JSON lines with a "text" field; each output line is
the input record plus "result"), with a progress bar. Add --json to any command for machine-readable output.
Default models come from $ASSETS_DIR (default .assets); a hub id (org/name) given as a model is downloaded
from $HF_ENDPOINT into the shared Hugging Face cache. Errors are one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

from . import cli_hub
from .cli_output import print_data as _print
from .cli_output import table as _table


class CommandError(ValueError):
    """A mistake in how a command was called (a missing input, a bad --param)."""


def _assets_path(*parts: str) -> str:
    return os.path.join(os.environ.get("ASSETS_DIR", ".assets"), *parts)


# -- env --------------------------------------------------------------------------------------------------------


def _env(args) -> dict:
    import torch

    from . import __version__

    return {
        "tinyformers": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


# -- info: the model-choosing checklist -------------------------------------------------------------------------

ARCHITECTURE_OF_GGUF = {"llama": "LlamaForCausalLM"}


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def _weights_summary(directory) -> tuple[int | None, str | None]:
    """(parameter count, float dtype) from the weight files; int buffers (BERT's position_ids) are not
    parameters. Safetensors headers are read without loading any tensor."""
    from .formats.checkpoint import find_weights, load_weights
    from .formats.safetensors import read_header

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
    total = sum(_numel(shape) for name, shape in shapes.items() if not name.endswith("position_ids"))
    return total or None, ", ".join(sorted(d for d in dtypes if d)) or None


def _card(directory) -> dict | None:
    """License, tags and a one-paragraph summary from the model card (README.md), when there is one."""
    from .hub.card import card_summary

    readme = directory / "README.md"
    return card_summary(readme.read_text(encoding="utf-8", errors="replace")) if readme.is_file() else None


def _fits(model_type: str | None) -> list[str]:
    from .pipelines import tasks_for_model_type

    return tasks_for_model_type(model_type) if model_type else []


def _files(paths, base) -> dict:
    return {str(p.relative_to(base)): p.stat().st_size for p in sorted(paths) if p.is_file()}


def _gguf_info(path) -> dict:
    from collections import Counter

    from .formats.gguf import GGUFFile, gguf_config

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
        "parameters": sum(_numel(info.shape) for info in gguf.tensors.values()),
        "dtype": ", ".join(f"{name} x{n}" for name, n in types.most_common()),
        "context_length": config.get("max_position_embeddings"),
        "license": meta.get("general.license"),
        "chat_template": "tokenizer.chat_template" in meta,
        "tasks": _fits(config["model_type"]),
        "files": _files([path], path.parent),
    }


def _info(args) -> dict:
    from pathlib import Path

    from .configuration import read_config_dict
    from .hub import resolve_dir

    path = Path(args.model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _gguf_info(path)
    directory = resolve_dir(args.model)
    _, config = read_config_dict(directory)
    card = _card(directory)
    parameters, weights_dtype = _weights_summary(directory)
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
        "tasks": _fits(config.get("model_type")),
        "files": _files(directory.rglob("*"), directory),
    }


# -- pipeline commands: run, embed, classify, generate ------------------------------------------------------------


class _Sized:
    """An iterable with a length but no list type: the pipeline streams it lazily and knows the total."""

    def __init__(self, items: list):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def _parse_params(pairs: list[str]) -> dict:
    """-p KEY=VALUE options; VALUE is read as JSON when it parses (3, true, null, ["a","b"]), else as text."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--param {pair!r} is not KEY=VALUE (e.g. -p top_k=3)")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _read_jsonl(path: str) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CommandError(
                    f"{path} line {number} is not JSON ({e.msg}); write one object per line"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise CommandError(
                    f'{path} line {number} has no "text" string; write {{"text": "..."}} per line'
                )
            records.append(record)
    return records


def _write_jsonl_atomic(path: str, records) -> int:
    """Write JSON lines to a temp file beside ``path`` and rename it: a failed job leaves no half file."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=directory, prefix=".tinyformers-", delete=False
    )
    count = 0
    try:
        with handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        os.replace(handle.name, path)
    except BaseException:
        os.unlink(handle.name)
        raise
    return count


def _build_pipeline(task: str, args, params: dict):
    from .pipelines import pipeline

    return pipeline(task, model=args.model, batch_size=args.batch_size, **params)


def _run_texts(task: str, args, params: dict, human) -> tuple[dict, object]:
    """Run ``task`` on the command-line texts or the --input file; returns (JSON summary, human printer)."""
    if args.input and args.texts:
        raise CommandError("give texts on the command line or --input FILE, not both")
    if not args.input and not args.texts:
        raise CommandError("nothing to do: give one or more texts, or --input FILE.jsonl")
    if args.output and not args.input:
        raise CommandError('--output needs --input (a JSON lines file with a "text" field per line)')
    records = _read_jsonl(args.input) if args.input else None
    pipe = _build_pipeline(task, args, params)
    model = str(getattr(pipe.model.config, "_name_or_path", args.model))
    if records is None:
        results = pipe(list(args.texts))
        data = {
            "task": pipe.task,
            "model": model,
            "results": [{"text": t, "result": r} for t, r in zip(args.texts, results)],
        }
        return data, lambda: human(data)
    results = pipe(_Sized([r["text"] for r in records]), progress=True)
    out = ({**record, "result": result} for record, result in zip(records, results))
    if args.output:
        count = _write_jsonl_atomic(args.output, out)
        data = {"task": pipe.task, "model": model, "input": args.input, "output": args.output, "count": count}
        return data, lambda: print(f"wrote {count} results to {args.output}")
    lines = [json.dumps(record, ensure_ascii=False) for record in out]
    return {"lines": lines}, lambda: print("\n".join(lines))


def _describe(result) -> str:
    """A pipeline result as plain text: tables for lists of records, sizes for vectors, text for generations."""
    if isinstance(result, dict):
        result = [result]
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        if list(result[0]) == ["generated_text"] and isinstance(result[0]["generated_text"], str):
            return "\n---\n".join(r["generated_text"] for r in result)
        return _table(result)
    if (
        isinstance(result, list)
        and result
        and all(isinstance(r, list) and r and isinstance(r[0], dict) for r in result)
    ):
        return "\n\n".join(_table(r) for r in result)  # fill-mask with several masks
    if isinstance(result, list) and result and isinstance(result[0], float):
        return f"vector of {len(result)} floats: [{', '.join(f'{v:.4f}' for v in result[:4])}, ...]"
    if isinstance(result, list) and result and isinstance(result[0], list) and isinstance(result[0][0], list):
        return (
            f"features: [{len(result)}, {len(result[0])}, {len(result[0][0])}] (batch, tokens, hidden size)"
        )
    return json.dumps(result, ensure_ascii=False)


def _print_results(data: dict) -> None:
    for i, item in enumerate(data["results"]):
        print(("\n" if i else "") + f"> {item['text']}")
        print(_describe(item["result"]))


def _run(args):
    return _run_texts(args.task, args, _parse_params(args.param), _print_results)


def _embed(args):
    params = {"normalize": False} if args.no_normalize else {}
    data, show = _run_texts("sentence-embedding", args, params, _print_results)
    if "results" in data and len(data["results"]) > 1:
        data["similarity"] = _cosine_matrix([item["result"] for item in data["results"]])

        def show():
            _print_results(data)
            print("\ncosine similarity:")
            labels = [f"[{i}]" for i in range(len(data["similarity"]))]
            rows = [{"": label, **dict(zip(labels, row))} for label, row in zip(labels, data["similarity"])]
            print(_table(rows))

    return data, show


def _cosine_matrix(vectors: list[list[float]]) -> list[list[float]]:
    import torch

    v = torch.nn.functional.normalize(torch.tensor(vectors), dim=1)
    return [[round(x, 4) for x in row] for row in (v @ v.T).tolist()]


def _classify(args):
    params = {"top_k": args.top_k} if args.top_k else {}
    if args.function:
        params["function_to_apply"] = args.function
    return _run_texts("text-classification", args, params, _print_results)


def _generate(args):
    params = {
        "max_new_tokens": args.max_new_tokens,
        "do_sample": args.temperature > 0,
        "return_full_text": not args.new_only,
    }
    if args.temperature > 0:
        import torch

        torch.manual_seed(args.seed)
        params.update(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    if args.chat:
        # each text is one user message; the answer is the assistant message appended by the pipeline
        system = [{"role": "system", "content": args.system}] if args.system else []
        args.texts = [system + [{"role": "user", "content": t}] for t in args.texts] if args.texts else []
    data, show = _run_texts("text-generation", args, params, _print_generations)
    return data, show


def _print_generations(data: dict) -> None:
    for i, item in enumerate(data["results"]):
        for record in item["result"]:
            text = record["generated_text"]
            print(("\n" if i else "") + (text[-1]["content"] if isinstance(text, list) else text))


# -- convert ----------------------------------------------------------------------------------------------------

WEIGHT_FORMATS = ("safetensors", "bin")


def _is_weight_file(path) -> bool:
    name = path.name
    return name.startswith(("model.safetensors", "pytorch_model.bin", "model-", "pytorch_model-")) and (
        name.endswith((".safetensors", ".bin", ".index.json"))
    )


def _convert_gguf(source, target, fmt: str) -> None:
    """A GGUF file -> config.json, generation_config.json, weights and tokenizer files (dequantised to fp32)."""
    from .auto import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source)  # shows a progress bar on a terminal
    model.save_pretrained(target, safe_serialization=fmt == "safetensors")
    AutoTokenizer.from_pretrained(source).save_pretrained(target)


def _convert_folder(source, target, fmt: str) -> None:
    """Same tensors under the same names in the other file format; every other file copied as it is."""
    import shutil

    from tqdm.auto import tqdm

    from .formats.checkpoint import find_weights, load_weights, save_state_dict

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
        if path.is_file() and not _is_weight_file(path) and not path.name.startswith("."):
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.relative_to(source))


def _convert(args) -> dict:
    import shutil
    import tempfile
    from pathlib import Path

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
        from .formats.checkpoint import find_weights

        current = "safetensors" if find_weights(source)[0].suffix == ".safetensors" else "bin"
        fmt = args.to or ("bin" if current == "safetensors" else "safetensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build everything in a temporary folder beside the target and rename it at the end: never half a model.
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (_convert_gguf if gguf else _convert_folder)(source, work, fmt)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    files = {str(p.relative_to(target)): p.stat().st_size for p in sorted(target.rglob("*")) if p.is_file()}
    return {"source": str(source), "destination": str(target), "format": fmt, "files": files}


# -- chat ----------------------------------------------------------------------------------------------------

DEFAULT_CHAT_MODEL = os.path.join("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
CHAT_HELP = "commands: /reset (forget the conversation), /system TEXT (set the system prompt), /quit"


class ChatSession:
    """A conversation with a chat model: history in, streamed answer out."""

    def __init__(self, model_path: str, system: str | None, generation: dict, **speed):
        """``speed``: ``from_pretrained``'s ``compile=`` and ``quantize=``."""
        from .auto import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, **speed)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_path} has no chat template; use a chat (instruct) model")
        self.system, self.generation, self.history = system, generation, []

    def answer(self, text: str, stream: bool = True) -> str:
        import torch

        from .generation import TextStreamer

        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages += self.history + [{"role": "user", "content": text}]
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        streamer = (
            TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
        )
        with torch.inference_mode():
            out = self.model.generate(**enc, streamer=streamer, **self.generation)
        reply = self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        return reply


def _chat(args) -> int:
    model = args.model or os.path.join(os.environ.get("ASSETS_DIR", ".assets"), DEFAULT_CHAT_MODEL)
    generation = {"max_new_tokens": args.max_new_tokens, "do_sample": args.temperature > 0}
    if args.temperature > 0:
        import torch

        torch.manual_seed(args.seed)
        generation.update(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    # compile=None leaves it to $TINYFORMERS_COMPILE
    speed = {"quantize": args.quantize, "compile": True if args.compile else None}
    session = ChatSession(model, args.system, generation, **speed)
    if args.prompt is not None:
        reply = session.answer(args.prompt, stream=not args.json)
        print(json.dumps({"prompt": args.prompt, "reply": reply}) if args.json else "")
        return 0
    print(f"Chatting with {model}. {CHAT_HELP}")
    while True:
        try:
            text = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text in ("/quit", "/exit"):
            return 0
        if text == "/reset":
            session.history = []
            print("(conversation forgotten)")
        elif text.startswith("/system"):
            session.system = text[len("/system") :].strip() or None
            session.history = []
            print(f"(system prompt {'set' if session.system else 'cleared'}; conversation restarted)")
        elif text.startswith("/"):
            print(CHAT_HELP)
        elif text:
            try:
                session.answer(text)
            except ValueError as e:  # e.g. the conversation outgrew the context: keep the REPL alive
                print(f"\nerror: {e} (type /reset to start over)")
            print()


# -- the parser -------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (and exit code 2) like every other tinyformers error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _json_flag(parser) -> None:
    # SUPPRESS: `tinyformers --json info X` and `tinyformers info X --json` both work; neither undoes the other.
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of tables"
    )


def _command(sub, name: str, summary: str, examples: str, **kwargs):
    parser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary}\n\nexamples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    _json_flag(parser)
    return parser


def _pipeline_options(parser, model_help: str) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to process (or use --input)")
    parser.add_argument("--model", help=model_help)
    parser.add_argument("--batch-size", type=int, default=8, help="texts per forward pass (default 8)")
    parser.add_argument("--input", metavar="FILE", help='JSON lines file with a "text" field per line')
    parser.add_argument("--output", metavar="FILE", help="write JSON lines here (default: stdout)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tinyformers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of tables (also after the command)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    run = _command(
        sub,
        "run",
        "run any pipeline task on texts",
        "  tinyformers run fill-mask 'Paris is the [MASK] of France.' --model FOLDER -p top_k=3\n"
        "  tinyformers run ner 'Ada lives in London.' --model FOLDER -p aggregation_strategy=simple\n"
        "  tinyformers run feature-extraction 'hello' --json\n"
        "  tinyformers run text-classification --model FOLDER --input in.jsonl --output out.jsonl\n\n"
        "tasks: feature-extraction, sentence-embedding, fill-mask, text-classification (sentiment-analysis),\n"
        "zero-shot-classification (-p candidate_labels=a,b), token-classification (ner), text-generation;\n"
        "-p passes any option of the task's pipeline.",
    )
    run.add_argument("task", help="the pipeline task, e.g. fill-mask")
    _pipeline_options(run, "model folder, .gguf file or hub id (default: the task's offline default)")
    run.add_argument(
        "-p", "--param", action="append", metavar="KEY=VALUE", help="a pipeline option (repeatable)"
    )

    embed = _command(
        sub,
        "embed",
        "sentence embeddings (mean pooled, L2 normalised) and their cosine similarities",
        "  tinyformers embed 'A man is eating food.' 'A man is eating pasta.' 'The sky is blue.'\n"
        "  tinyformers embed --input sentences.jsonl --output vectors.jsonl",
    )
    _pipeline_options(
        embed, "a sentence-transformers or encoder folder (default: all-MiniLM-L6-v2 in $ASSETS_DIR)"
    )
    embed.add_argument("--no-normalize", action="store_true", help="keep the raw pooled vectors")

    classify = _command(
        sub,
        "classify",
        "text classification with a fine-tuned sequence-classification model",
        "  tinyformers classify 'What a great film!' --model FOLDER\n"
        "  tinyformers classify 'What a great film!' --model FOLDER --top-k 2 --json",
    )
    _pipeline_options(classify, "a folder with a sequence-classification head (required: no default offline)")
    classify.add_argument("--top-k", type=int, help="the k best labels (default: the best one)")
    classify.add_argument("--function", choices=("softmax", "sigmoid", "none"), help="score function")

    generate = _command(
        sub,
        "generate",
        "continue prompts with a causal LM (greedy unless --temperature > 0)",
        "  tinyformers generate 'The capital of France is' --max-new-tokens 10\n"
        "  tinyformers generate 'Write a haiku about rain.' --chat --temperature 0.7\n"
        "  tinyformers generate --input prompts.jsonl --output completions.jsonl",
    )
    _pipeline_options(generate, "a causal LM folder or .gguf file (default: SmolLM2 in $ASSETS_DIR)")
    generate.add_argument("--max-new-tokens", type=int, default=50)
    generate.add_argument(
        "--temperature", type=float, default=0.0, help="0 = greedy (default); e.g. 0.7 to sample"
    )
    generate.add_argument("--top-p", type=float, default=0.9)
    generate.add_argument("--top-k", type=int, default=50)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--chat", action="store_true", help="send each TEXT as a user message (chat template)"
    )
    generate.add_argument("--system", help="system prompt, with --chat")
    generate.add_argument(
        "--new-only", action="store_true", help="print only the generated text, not the prompt"
    )

    chat = _command(
        sub,
        "chat",
        "chat with a model, streaming its answers",
        "  tinyformers chat                                  SmolLM2 from $ASSETS_DIR\n"
        "  tinyformers chat --prompt 'What is the capital of France?'\n"
        "  tinyformers chat --model model.gguf --system 'Answer in one word.'\n"
        "  tinyformers chat --quantize int8 --compile         fastest (answers may differ slightly)\n\n"
        f"In the conversation, {CHAT_HELP}.",
    )
    chat.add_argument(
        "--model", help="a model folder or .gguf file (default: the SmolLM2 GGUF in $ASSETS_DIR)"
    )
    chat.add_argument("--prompt", help="answer this one message and exit")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument(
        "--temperature", type=float, default=0.0, help="0 = greedy (default); e.g. 0.7 to sample"
    )
    chat.add_argument("--top-p", type=float, default=0.9)
    chat.add_argument("--top-k", type=int, default=50)
    chat.add_argument("--seed", type=int, default=0)
    chat.add_argument(
        "--compile",
        action="store_true",
        help="compile the decoding step (~20-60 s once, then ~2x faster answers; or TINYFORMERS_COMPILE=1)",
    )
    chat.add_argument(
        "--quantize", choices=("int8",), help="int8 weights: ~2x faster again, answers may differ slightly"
    )

    info = _command(
        sub,
        "info",
        "what a model is before you use it: type, architecture, size, context length, license, card, files",
        "  tinyformers info .assets/minilm\n"
        "  tinyformers info .assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --json",
    )
    info.add_argument(
        "model", help="a folder holding config.json, a .gguf file, or a hub id (downloaded into the cache)"
    )

    convert = _command(
        sub,
        "convert",
        "convert a model: GGUF -> safetensors folder, or safetensors <-> pytorch_model.bin",
        "  tinyformers convert model.gguf out/            dequantised fp32 folder that transformers loads\n"
        "  tinyformers convert FOLDER out/ --to bin       model.safetensors -> pytorch_model.bin\n"
        "  tinyformers convert FOLDER out/                to the other format (bin -> safetensors, ...)",
    )
    convert.add_argument("source", help="a .gguf file or a model folder")
    convert.add_argument(
        "destination", help="the folder to write (must not exist, or be empty, unless --force)"
    )
    convert.add_argument("--to", choices=WEIGHT_FORMATS, help="weight format to write")
    convert.add_argument("--force", action="store_true", help="replace a non-empty destination")

    env = _command(sub, "env", "versions and threads, for bug reports", "  tinyformers env --json")
    del env
    cli_hub.add_parser(sub, _command)
    return parser


# Commands returning a dict (printed as a table or JSON) and those returning (JSON data, human printer).
TABLE_COMMANDS = {"env": _env, "info": _info, "convert": _convert}
PIPELINE_COMMANDS = {"run": _run, "embed": _embed, "classify": _classify, "generate": _generate}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "chat":
            return _chat(args)
        if args.command == "hub":
            return cli_hub.run(args)
        if args.command in TABLE_COMMANDS:
            _print(TABLE_COMMANDS[args.command](args), args.json)
            return 0
        data, show = PIPELINE_COMMANDS[args.command](args)
        if args.json and "lines" in data:
            show()  # JSON lines already
        elif args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            show()
        return 0
    except (OSError, ValueError, KeyError, TypeError, NotImplementedError) as e:
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f"tinyformers: error: {' '.join(message.split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
