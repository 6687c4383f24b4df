"""``tinyformers train`` as a user runs it (in this process, ``cli_runner``): a classifier from a CSV of real
movie-review snippets, a chat model with LoRA from JSON lines, and the one-line errors for bad data. What it
saves is checked with transformers and peft."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest
import torch

from cli_runner import run_cli
from conftest import asset, oracle
from tinyformers import AutoModelForCausalLM, AutoTokenizer
from tinyformers.training.recipes import chat_example, encode_labels, is_held_out

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"


def train(*args: str) -> subprocess.CompletedProcess:
    return run_cli("train", *args)


def front_matter(readme) -> dict:
    """The model card's YAML header, read by the YAML library the hub's own tools use."""
    text = readme.read_text()
    assert text.startswith("---\n"), text[:80]
    return oracle("yaml").safe_load(text.split("---\n")[1])


def vader_rows(per_label: int) -> list[dict]:
    """Movie snippets with a clear sign (|mean score| >= 1), labelled by name: the first ``per_label`` of each."""
    rows = []
    path = asset("vader") / "movieReviewSnippets_GroundTruth.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        _, score, text = line.split("\t", 2)
        if abs(float(score)) >= 1:
            rows.append({"sentence": text, "sentiment": "positive" if float(score) > 0 else "negative"})
    return [r for r in rows if r["sentiment"] == "positive"][:per_label] + [
        r for r in rows if r["sentiment"] == "negative"
    ][:per_label]


def test_classifier_from_csv_loads_in_transformers(tmp_path):
    minilm = asset("minilm")
    transformers = oracle("transformers")
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["sentence", "sentiment"])
        writer.writeheader()
        writer.writerows(vader_rows(60))
    out = tmp_path / "sentiment"
    result = train(
        str(minilm), "--data", str(data), "--output-dir", str(out), "--text-column", "sentence",
        "--label-column", "sentiment", "--max-steps", "6", "--batch-size", "8", "--learning-rate", "1e-4",
        "--max-length", "64", "--save-strategy", "no", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert 0.0 <= printed["eval_accuracy"] <= 1.0
    assert torch.load(out / "training_args.bin", weights_only=True)["max_steps"] == 6
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    meta = front_matter(out / "README.md")
    assert meta["pipeline_tag"] == "text-classification" and meta["library_name"] == "transformers"
    assert meta["datasets"] == ["reviews.csv"] and "accuracy" in meta["metrics"]
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["A gorgeous, moving film.", "Dull and lifeless."], padding=True, return_tensors="pt")
    from tinyformers import AutoModelForSequenceClassification

    ours = AutoModelForSequenceClassification.from_pretrained(out)
    with torch.no_grad():
        torch.testing.assert_close(ours(**batch).logits, theirs(**batch).logits, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    """A tiny random Llama that speaks SmolLM2's vocabulary and chat template (built by transformers)."""
    transformers = oracle("transformers")
    gguf = asset("smollm2") / SMOLLM2
    folder = tmp_path_factory.mktemp("tinychat")
    tokenizer = AutoTokenizer.from_pretrained(gguf)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_chat_labels_cover_only_the_assistant(chat_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(chat_model_dir)
    messages = [
        {"role": "user", "content": "When does Quillbrook Bakery open?"},
        {"role": "assistant", "content": "At 7:15 every morning."},
        {"role": "user", "content": "And on Sundays?"},
        {"role": "assistant", "content": "Closed on Sundays."},
    ]
    example = chat_example(messages, tokenizer, max_length=256)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert example["input_ids"] == tokenizer(full, add_special_tokens=False)["input_ids"]
    learned = [t for t in example["labels"] if t != -100]
    text = tokenizer.decode(learned)
    assert text == "At 7:15 every morning.<|im_end|>\nClosed on Sundays.<|im_end|>\n"


def test_chat_lora_run_saves_merged_model_and_peft_adapter(chat_model_dir, tmp_path):
    transformers, peft = oracle("transformers"), oracle("peft")
    data = tmp_path / "chats.jsonl"
    chats = [
        [{"role": "user", "content": f"What is {a} plus {b}?"}, {"role": "assistant", "content": str(a + b)}]
        for a in range(6)
        for b in range(6)
    ]
    data.write_text("".join(json.dumps({"messages": m}) + "\n" for m in chats))
    out = tmp_path / "assistant"
    result = train(
        str(chat_model_dir), "--data", str(data), "--output-dir", str(out), "--lora", "--lora-targets",
        "all-linear", "--max-steps", "4", "--batch-size", "4", "--learning-rate", "1e-2", "--save-strategy",
        "no", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "eval_loss" in json.loads(result.stdout)
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and adapter["task_type"] == "CAUSAL_LM"
    ids = torch.tensor([[1, 504, 314, 1345, 2]])
    merged = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    with_adapter = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(chat_model_dir), out / "adapter"
    ).eval()
    base = transformers.AutoModelForCausalLM.from_pretrained(chat_model_dir).eval()
    ours = AutoModelForCausalLM.from_pretrained(out)
    with torch.no_grad():
        expected = with_adapter(ids).logits
        assert (expected - base(ids).logits).abs().max() > 1e-3, "training must have moved the adapter"
        torch.testing.assert_close(merged(ids).logits, expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours(ids).logits, expected, atol=1e-4, rtol=1e-4)
    assert "lora" in front_matter(out / "README.md")["tags"]


@pytest.mark.parametrize(
    ("content", "flags", "message"),
    [
        (
            "text,stars\ngood,1\n",
            ["--label-column", "sentiment", "--task", "classification"],
            "no 'sentiment' column",
        ),
        ("text,label\ngood,0.5\nbad,1\n", [], "label '0.5' is neither a whole number nor a name"),
        ("text,label\n", [], "holds no examples"),
        ("text,label\ngood,pos\nfine,pos\n", [], "only one label ('pos')"),
        ("text,label\ngood,1\n", ["--batch-size", "0"], "argument --batch-size: must be a whole number >= 1"),
        ("text,label\ngood,1\n", ["--task", "summarise"], "unknown task 'summarise'"),
    ],
)
def test_bad_training_data_is_one_line(tmp_path, content, flags, message):
    data = tmp_path / "data.csv"
    data.write_text(content)
    result = train("unused-model", "--data", str(data), "--output-dir", str(tmp_path / "out"), *flags)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists(), "nothing is written for bad input"


def test_bad_json_lines_and_encodings_name_the_line(tmp_path):
    data = tmp_path / "chats.jsonl"
    data.write_text('{"text": "fine"}\n{"text": oops}\n')
    result = train("unused-model", "--data", str(data), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "chats.jsonl, line 2: not valid JSON" in result.stderr
    data.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    result = train("unused-model", "--data", str(data), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "chats.jsonl, line 2: not UTF-8" in result.stderr


def test_labels_and_held_out_share():
    assert encode_labels(["1", "0", "2"], "x") == ([1, 0, 2], ["LABEL_0", "LABEL_1", "LABEL_2"])
    assert encode_labels(["pos", "neg", "pos"], "x") == ([1, 0, 1], ["neg", "pos"])
    assert encode_labels([0, "1"], "x", ["LABEL_0", "LABEL_1"]) == ([0, 1], ["LABEL_0", "LABEL_1"])
    with pytest.raises(ValueError, match="label 2 does not occur"):
        encode_labels(["2"], "x", ["LABEL_0", "LABEL_1"])
    with pytest.raises(ValueError, match="mix numbers"):
        encode_labels(["1", "pos"], "x")
    with pytest.raises(ValueError, match=r"labels \['meh'\] do not occur"):
        encode_labels(["meh"], "x", ["neg", "pos"])
    texts = [f"example {i}" for i in range(2000)]
    share = sum(is_held_out(t, 10) for t in texts) / len(texts)
    assert 0.08 < share < 0.12
    assert [is_held_out(t, 10) for t in texts] == [is_held_out(t, 10) for t in texts]
