"""The ``tinyformers`` command: exit codes and output, run in this process (``cli_runner``) except where only
a real process shows the behaviour (the entry point, a compiled model, an import that must stay light)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch

from cli_runner import run_cli as run
from conftest import cached_oracle, file_key, oracle
from fixtures import bert_with_minilm_tokenizer, gguf_reading, write_answering_gguf

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"


def run_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyformers.cli", *args], capture_output=True, text=True)


def test_env_json_from_the_entry_point():
    out = run_process("--json", "env")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["torch"].startswith("2.13") and data["threads"] >= 1


@pytest.fixture(scope="module")
def minilm_info(minilm_dir) -> dict:
    out = run("info", str(minilm_dir), "--json")  # --json after the command works too
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_info_on_real_model(minilm_dir, minilm_info, hf_minilm):
    data = minilm_info
    assert data["model_type"] == "bert" and data["architectures"] == ["BertModel"]
    assert data["parameters"] == hf_minilm.num_parameters()  # position_ids is a buffer, not a parameter
    files = {str(p.relative_to(minilm_dir)): os.path.getsize(p) for p in minilm_dir.rglob("*") if p.is_file()}
    assert data["files"] == files


def test_info_bad_path_is_one_line_error(tmp_path):
    out = run("info", str(tmp_path / "missing"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "neither a local directory nor a hub id" in out.stderr


PROMPT = "What is the capital of France?"
ANSWER = ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis", "ĠParis", "."]  # byte-level BPE pieces: Ġ is a space


@pytest.mark.slow
@pytest.mark.parametrize("speed", [(), ("--quantize", "gguf")], ids=["fp32", "gguf"])
def test_chat_one_shot_answers_paris(smollm2_dir, speed):
    model = str(smollm2_dir / SMOLLM2)
    out = run("--json", "chat", "--model", model, "--prompt", PROMPT, "--max-new-tokens", "12", *speed)
    assert out.returncode == 0, out.stderr
    # the GGUF blocks multiply like the file dequantised
    assert json.loads(out.stdout)["reply"].startswith("The capital of France is Paris.")


def transformers_chat_reply(path) -> str:
    """transformers' greedy reply to PROMPT, as `tinyformers chat --prompt` asks it: chat template, 12 tokens."""
    transformers = oracle("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    messages = [{"role": "user", "content": PROMPT}]
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        ids = model.generate(**enc, max_new_tokens=12, do_sample=False)
    return tok.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.mark.slow
def test_chat_int8_compiled_gives_transformers_reply(smollm2_dir, tmp_path):
    """`chat --quantize int8 --compile` end to end, on a two-layer model with SmolLM2's tokenizer and chat template
    (fixtures.write_answering_gguf): compiling the real 30-layer SmolLM2 takes over a minute with a cold compile
    cache, and test_smollm2.py compiles it already. That model's reply cannot change with int8 weights, so it must
    be transformers' reply from the float32 file, word for word."""
    metadata = gguf_reading(smollm2_dir / SMOLLM2)["metadata"]
    tokens = metadata["tokenizer.ggml.tokens"]
    path = write_answering_gguf(  # the chat template's prompt ends in "assistant\n" ("Ċ")
        tmp_path / "answering.gguf", metadata, cue=tokens.index("Ċ"), answer=[tokens.index(t) for t in ANSWER]
    )
    inputs = {"gguf": file_key(path), "prompt": PROMPT, "max_new_tokens": 12}
    reference = cached_oracle("answering-gguf-chat", inputs, lambda: transformers_chat_reply(path))
    # A compiled model gets its own process: graphs compiled by earlier tests in this one count towards
    # torch's recompile limit, past which it would quietly run eagerly.
    speed = ("--quantize", "int8", "--compile")
    out = run_process(
        "--json", "chat", "--model", str(path), "--prompt", PROMPT, "--max-new-tokens", "12", *speed
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["reply"] == reference == "The capital of France is Paris."


@pytest.mark.slow
def test_chat_repl_commands_from_stdin(smollm2_dir):
    model = str(smollm2_dir / SMOLLM2)
    script = "What is the capital of France?\n/reset\n/system Answer in one word.\n/help\n"
    out = run("chat", "--model", model, "--max-new-tokens", "10", input=script)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert "(conversation forgotten)" in out.stdout and "(system prompt set" in out.stdout
    assert "commands: /reset" in out.stdout


def test_chat_bad_model_path(tmp_path):
    out = run("chat", "--model", str(tmp_path / "nope.gguf"), "--prompt", "hi")
    assert out.returncode == 2 and "neither a local directory nor a hub id" in out.stderr


NOT_FOUND = "neither a local directory nor a hub id"


@pytest.mark.parametrize(
    "args, error",
    [
        (["chat", "--model", "MISSING", "--prompt", "hi"], NOT_FOUND),
        (["chat", "--prompt", "hi"], "the default model for 'text-generation' is not set up"),
        (["embed", "hi", "--model", "MISSING"], NOT_FOUND),
        (["run", "fill-mask", "a [MASK]", "--model", "MISSING"], NOT_FOUND),
        (["classify", "great", "--model", "MISSING"], NOT_FOUND),
        (["generate", "hi", "--model", "MISSING"], NOT_FOUND),
        (["serve", "MISSING"], NOT_FOUND),
    ],
    ids=["chat", "chat-default", "embed", "run", "classify", "generate", "serve"],
)
def test_model_errors_come_before_loading_torch(tmp_path, args, error):
    """A wrong model path or a home without the default model is a one-line error at once, with no seconds
    spent importing torch first."""
    args = [str(tmp_path / "nope.gguf") if a == "MISSING" else a for a in args]
    code = (
        "import sys\n"
        "from tinyformers.cli.main import main\n"
        f"assert main({args!r}) == 2\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "TINYFORMERS_HOME": str(tmp_path / "empty-home")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and error in lines[0], out.stderr
    assert lines[1] == "False", "torch was imported"


# -- help, errors ----------------------------------------------------------------------------------------------


def test_help_lists_every_command_with_examples():
    out = run("--help")
    assert out.returncode == 0
    for command in ("run", "embed", "classify", "generate", "chat", "serve", "info", "convert", "env"):
        assert command in out.stdout
    sub = run("convert", "--help")
    assert sub.returncode == 0 and "examples:" in sub.stdout and "--to {safetensors,bin}" in sub.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "sentiment-analysiss", "hi"), "unknown task 'sentiment-analysiss'; supported tasks:"),
        (("run", "fill-mask", "a [MASK]"), "has no default model (it needs a trained head)"),
        (("embed",), "nothing to do"),
        (("run", "fill-mask", "x", "-p", "top_k"), "is not KEY=VALUE"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, message):
    out = run(*args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


def test_bad_model_path_for_a_pipeline_command(tmp_path):
    out = run("embed", "hello", "--model", str(tmp_path / "missing"))
    assert out.returncode == 2 and "neither a local directory nor a hub id" in out.stderr


def test_model_that_does_not_fit_the_task(minilm_dir):
    out = run("run", "text-generation", "hi", "--model", str(minilm_dir))
    assert out.returncode == 2
    assert (
        "'bert' model, which does not fit task 'text-generation'; it fits: feature-extraction" in out.stderr
    )


# -- info ------------------------------------------------------------------------------------------------------


def test_info_checklist_from_config_and_model_card(minilm_dir, minilm_info, hf_minilm):
    data = minilm_info
    assert data["dtype"] == "float32" and data["license"] == "apache-2.0"
    assert data["context_length"] == hf_minilm.config.max_position_embeddings == 512
    assert data["card"]["pipeline_tag"] == "sentence-similarity"
    assert data["card"]["summary"].startswith("This is a [sentence-transformers]")
    assert "sentence-embedding" in data["tasks"] and "text-generation" not in data["tasks"]
    table = run("info", str(minilm_dir)).stdout
    assert f"parameters       {hf_minilm.num_parameters():,}" in table
    assert "\x1b[" not in table  # plain text, no colour codes


def test_info_on_gguf_file(smollm2_dir):
    reference = gguf_reading(smollm2_dir / SMOLLM2)
    metadata = reference["metadata"]
    out = run("--json", "info", str(smollm2_dir / SMOLLM2))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model_type"] == "llama" and data["architectures"] == ["LlamaForCausalLM"]
    assert data["context_length"] == metadata["llama.context_length"]
    assert data["license"] == metadata["general.license"] == "apache-2.0"
    assert data["chat_template"] is True and "tokenizer.chat_template" in metadata
    assert data["parameters"] == sum(tensor["n_elements"] for tensor in reference["tensors"])
    types = Counter(tensor["type_name"] for tensor in reference["tensors"])
    assert data["dtype"] == ", ".join(f"{name} x{n}" for name, n in types.most_common())
    assert data["files"] == {SMOLLM2: os.path.getsize(smollm2_dir / SMOLLM2)}


# -- pipeline commands -----------------------------------------------------------------------------------------


def test_embed_json_schema_and_similarity(minilm_dir):
    texts = ["A man is eating food.", "A man is eating pasta.", "The sky is blue."]
    out = run("--json", "embed", *texts, "--model", str(minilm_dir))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["task"] == "sentence-embedding" and [r["text"] for r in data["results"]] == texts
    assert all(len(r["result"]) == 384 for r in data["results"])
    similarity = data["similarity"]
    assert similarity[0][1] > 0.5 > similarity[0][2]  # the two eating sentences are close


def test_batch_job_over_a_jsonl_file(minilm_dir, tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": f"sentence number {i}"}) + "\n" for i in range(5)))
    out = run("--json", "run", "feature-extraction", "--model", str(minilm_dir), "--input", str(source),
              "--output", str(target), "--batch-size", "2")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["count"] == 5
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["id"] for line in lines] == list(range(5))
    assert len(lines[0]["result"][0][0]) == 384  # [1, tokens, hidden] per text, as transformers


def test_batch_job_rejects_lines_without_text(minilm_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    out = run(
        "embed", "--model", str(minilm_dir), "--input", str(source), "--output", str(tmp_path / "o.jsonl")
    )
    assert out.returncode == 2 and 'line 2 has no "text" string' in out.stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, minilm_dir):
    folder = tmp_path_factory.mktemp("classifier")
    labels = {0: "negative", 1: "positive"}
    return bert_with_minilm_tokenizer(
        folder, minilm_dir, "BertForSequenceClassification", num_hidden_layers=1, id2label=labels
    )


def test_classify_and_run_give_transformers_shaped_results(classifier_dir):
    data = json.loads(
        run("--json", "classify", "Great film!", "--model", str(classifier_dir), "--top-k", "2").stdout
    )
    result = data["results"][0]["result"]
    expected = oracle("transformers").pipeline("text-classification", model=classifier_dir)(
        "Great film!", top_k=2
    )
    assert [list(r) for r in result] == [list(r) for r in expected] == [["label", "score"]] * 2
    assert [r["label"] for r in result] == [r["label"] for r in expected]
    assert [r["score"] for r in result] == pytest.approx([r["score"] for r in expected], abs=1e-4, rel=0)
    table = run(
        "run", "sentiment-analysis", "Great film!", "--model", str(classifier_dir), "-p", "top_k=null"
    )
    assert table.returncode == 0, table.stderr
    assert "label" in table.stdout and "negative" in table.stdout and "positive" in table.stdout


# -- convert ---------------------------------------------------------------------------------------------------


def test_convert_safetensors_to_bin_and_back_loads_in_transformers(minilm_dir, hf_minilm, tmp_path):
    transformers = oracle("transformers")
    as_bin, back = tmp_path / "bin", tmp_path / "safetensors"
    out = run("--json", "convert", str(minilm_dir), str(as_bin))  # safetensors -> the other format
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (
        data["format"] == "bin"
        and "pytorch_model.bin" in data["files"]
        and "model.safetensors" not in data["files"]
    )
    assert "1_Pooling/config.json" in data["files"] and "tokenizer.json" in data["files"]
    assert run("convert", str(as_bin), str(back)).returncode == 0
    reference = hf_minilm.state_dict()
    for folder in (as_bin, back):
        loaded = transformers.AutoModel.from_pretrained(str(folder)).state_dict()
        assert sorted(loaded) == sorted(reference)
        assert all(torch.equal(loaded[k], reference[k]) for k in reference)
    again = run("convert", str(minilm_dir), str(as_bin))
    assert again.returncode == 2 and "already exists and is not empty" in again.stderr


def test_convert_bad_source(tmp_path):
    out = run("convert", str(tmp_path / "nothing"), str(tmp_path / "out"))
    assert (
        out.returncode == 2
        and "is neither a .gguf file, a model folder nor a hub id (namespace/name)" in out.stderr
    )


@pytest.mark.slow
def test_convert_gguf_to_a_folder_transformers_loads(smollm2_dir, tmp_path):
    transformers = oracle("transformers")
    target = tmp_path / "smollm2"
    out = run("convert", str(smollm2_dir / SMOLLM2), str(target))
    assert out.returncode == 0, out.stderr
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(target))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(target))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    enc = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        ids = model.generate(**enc, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer.startswith("The capital of France is Paris")
