"""The command line as users meet it: empty prompts, Ctrl-C, pipes into `head`, seeds, warnings, progress bars,
and right-padded batches in generate. The commands run on small random checkpoints saved by transformers, which is
also the oracle for what the models write: in this process (``cli_runner``), and as subprocesses where a signal or
a pipe is the point."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from cli_runner import run_cli as tinyformers
from conftest import cached_oracle, oracle
from fixtures import bert_with_minilm_tokenizer, gpt2_with_gpt2_tokenizer, llama_config, random_checkpoint
from tinyformers.auto import AutoModelForCausalLM
from tinyformers.cli import main
from tinyformers.pipelines import pipeline

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
LONG = 500  # new tokens: long enough that a run is still writing when Ctrl-C comes


def edit_json(path, **fields) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, **fields}))


@pytest.fixture(scope="module")
def transformers():
    return oracle("transformers")


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory, gpt2_tokenizer_dir):
    """A random two-layer GPT-2 with the real GPT-2 tokenizer (bos = eos = <|endoftext|>); initializer_range
    0.2 so that greedy decoding does not collapse onto one token."""
    folder = tmp_path_factory.mktemp("gpt2") / "gpt2"
    return gpt2_with_gpt2_tokenizer(folder, gpt2_tokenizer_dir, "GPT2LMHeadModel", initializer_range=0.2)


@pytest.fixture(scope="module")
def endless_dir(gpt2_dir, tmp_path_factory):
    """That GPT-2 with no eos token (it writes until max_new_tokens) and a chat template."""
    folder = tmp_path_factory.mktemp("endless") / "gpt2"
    shutil.copytree(gpt2_dir, folder)
    edit_json(folder / "config.json", eos_token_id=None)
    edit_json(folder / "generation_config.json", eos_token_id=None)
    edit_json(folder / "tokenizer_config.json", chat_template=CHAT_TEMPLATE)
    return str(folder)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory, spm_dir):
    """A random two-layer Llama (bos 1, eos 2, pad 0) with the botchan BPE model as its tokenizer.model."""
    folder = tmp_path_factory.mktemp("llama") / "llama"
    random_checkpoint(folder, "LlamaForCausalLM", llama_config(vocab_size=1000))
    shutil.copy(spm_dir / "botchan_en_bpe_1000.model", folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    return str(folder)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def checkpoint(request):
    return request.getfixturevalue(f"{request.param}_dir")


# -- 4. an empty prompt starts from bos ------------------------------------------------------------------------


def test_generate_empty_prompt_starts_from_bos_like_transformers(checkpoint, transformers):
    ref = transformers.AutoModelForCausalLM.from_pretrained(checkpoint).eval()
    expected = ref.generate(max_new_tokens=8, do_sample=False)[0]  # transformers: no prompt = start from bos
    assert expected[0] == ref.generation_config.bos_token_id and len(expected) == 9
    text = transformers.AutoTokenizer.from_pretrained(checkpoint).decode(expected, skip_special_tokens=True)

    out = tinyformers("--json", "generate", "", "--model", checkpoint, "--max-new-tokens", "8")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["results"][0]["result"] == [{"generated_text": text}]

    generator = pipeline("text-generation", model=checkpoint, do_sample=False, max_new_tokens=8)
    assert generator("", return_tensors=True) == [{"generated_token_ids": expected.tolist()}]
    # in a padded batch, the empty prompt's row is the one it gets alone
    assert generator(["", "Hello world"], batch_size=2) == [generator(""), generator("Hello world")]
    ours = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert torch.equal(
        ours.generate(torch.zeros((2, 0), dtype=torch.long), max_new_tokens=8), expected.repeat(2, 1)
    )


def test_empty_prompt_without_bos_is_one_line(gpt2_dir, tmp_path):
    folder = tmp_path / "no-bos"
    shutil.copytree(gpt2_dir, folder)
    edit_json(folder / "config.json", bos_token_id=None)
    edit_json(folder / "generation_config.json", bos_token_id=None)
    out = tinyformers("generate", "", "--model", str(folder), "--max-new-tokens", "2")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("tinyformers: error: an empty prompt starts from the model's bos token")


# -- 5. Ctrl-C -------------------------------------------------------------------------------------------------


class Running:
    """A command run in the background with its stdin a pipe, its output collected as it comes."""

    def __init__(self, *args: str):
        # SIGINT back to its default in the child, so that Python turns it into KeyboardInterrupt even where this
        # test runs with SIGINT ignored (a background job of a non-interactive shell).
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tinyformers", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.out, self.err = bytearray(), bytearray()
        self.readers = [
            threading.Thread(target=self.collect, args=(stream, into), daemon=True)
            for stream, into in ((self.process.stdout, self.out), (self.process.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def collect(stream, into: bytearray) -> None:
        while chunk := os.read(stream.fileno(), 4096):
            into.extend(chunk)

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", errors="replace")

    def wait_for_output(self, predicate, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.stdout):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"never came (exit {self.process.poll()}): {self.stdout!r} {bytes(self.err)!r}"
                )
            time.sleep(0.01)

    def send(self, text: str) -> None:
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        self.process.stdin.close()
        code = self.process.wait(timeout)
        for reader in self.readers:
            reader.join(timeout)
        return code, self.stdout, self.err.decode()


def greedy_text(transformers, folder: str, prompt_ids: list[int], new_tokens: int) -> str:
    """transformers' greedy continuation of ``prompt_ids``, as text."""

    def compute():
        ref = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
        ids = torch.tensor([prompt_ids])
        return ref.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False
        )

    # the key names the fixture: a change to endless_dir needs a new name here
    inputs = {"checkpoint": "endless_dir", "prompt": prompt_ids, "new": new_tokens}
    ids = cached_oracle("cli-interaction-endless-gpt2", inputs, compute)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    return tokenizer.decode(ids[0, len(prompt_ids) :], skip_special_tokens=True)


def test_ctrl_c_stops_generate_keeping_what_it_streamed(endless_dir, transformers):
    prompt = "Hello world"
    run = Running("generate", prompt, "--model", endless_dir, "--max-new-tokens", str(LONG))
    run.wait_for_output(lambda out: len(out) > len(prompt))  # the prompt, then the first words
    run.process.send_signal(signal.SIGINT)
    code, out, err = run.finish()
    assert (code, err) == (130, "tinyformers: interrupted\n")
    tokenizer = transformers.AutoTokenizer.from_pretrained(endless_dir)
    full = greedy_text(transformers, endless_dir, tokenizer(prompt)["input_ids"], LONG)
    shown = out.removeprefix(prompt).removesuffix("\n")
    assert (
        out.startswith(prompt) and out.endswith("\n") and shown and full.startswith(shown) and shown != full
    )


def test_ctrl_c_in_chat_stops_the_answer_and_the_chat_goes_on(endless_dir, transformers):
    run = Running("chat", "--model", endless_dir, "--max-new-tokens", str(LONG))
    run.wait_for_output(lambda out: out.endswith("> "))
    run.send("Tell me a story\n")
    run.wait_for_output(lambda out: len(out.rpartition("> ")[2]) > 1)  # the answer has begun
    run.process.send_signal(signal.SIGINT)
    stopped = "(answer stopped; it is left out of the conversation)\n\n> "
    run.wait_for_output(lambda out: out.endswith(stopped))
    run.send("Hi again\n/quit\n")
    code, out, err = run.finish()
    assert code == 0 and "Traceback" not in err, err
    answer = out.partition(stopped)[2].removesuffix("\n\n> ")
    # the stopped exchange is forgotten: the second answer is that of a new conversation
    tokenizer = transformers.AutoTokenizer.from_pretrained(endless_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi again"}], add_generation_prompt=True
    )
    prompt = prompt if isinstance(prompt, list) else prompt["input_ids"]
    assert answer == greedy_text(transformers, endless_dir, list(prompt), LONG)


def test_ctrl_c_elsewhere_is_one_line_and_exit_code_130(capsys):
    from tinyformers.cli import COMMANDS
    from tinyformers.cli.common import add_command

    class Stopped:  # a command module whose handler the user stops
        @staticmethod
        def add_parser(subparsers):
            add_command(subparsers, "wait", "waits", "").set_defaults(handler=Stopped.handle)

        @staticmethod
        def handle(args):
            raise KeyboardInterrupt

    try:
        code = main(["wait"], commands=(*COMMANDS, Stopped))
    except KeyboardInterrupt:
        code = "KeyboardInterrupt escaped"
    assert code == 130
    assert capsys.readouterr().err == "tinyformers: interrupted\n"


# -- 6. a closed pipe ------------------------------------------------------------------------------------------


def test_piping_into_head_is_quiet(tmp_path, minilm_dir):
    folder = bert_with_minilm_tokenizer(tmp_path / "bert", minilm_dir, "BertModel")
    text = " ".join(["word"] * 400)  # ~400 vectors of 32 floats: far more JSON than a pipe holds
    command = (
        f"{{ {sys.executable} -m tinyformers --json run feature-extraction '{text}' --model {folder}; "
        f"echo $? > {tmp_path / 'code'}; }} | head -1"
    )
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=600)
    assert (out.returncode, out.stdout, out.stderr) == (0, "{\n", "")
    assert (tmp_path / "code").read_text() == "141\n"  # 128 + SIGPIPE, like a tool stopped by the pipe


# -- 13. seeds and flags without effect -----------------------------------------------------------------------


def sampled(folder: str, *flags: str) -> subprocess.CompletedProcess:
    return tinyformers(
        "generate", "Hello", "--model", folder, "--temperature", "1.5", "--max-new-tokens", "30", *flags
    )


def test_sampling_without_seed_differs_each_run(gpt2_dir):
    first, second = sampled(gpt2_dir, "--new-only"), sampled(gpt2_dir, "--new-only", "--system", "Be brief.")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout != second.stdout  # 30 draws from ~50,000 tokens at temperature 1.5
    assert first.stderr == ""
    assert second.stderr == (
        "tinyformers: warning: --system has no effect without --chat (which sends each TEXT as a user message)\n"
    )


def test_sampling_with_a_seed_repeats(gpt2_dir, capsys):
    args = ["generate", "Hello", "--model", gpt2_dir, "--temperature", "1.5", "--max-new-tokens", "30"]
    texts = []
    for seed in ("7", "7", "8"):
        assert main([*args, "--seed", seed]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] != texts[2]


def test_sampling_flags_with_greedy_decoding_warn(gpt2_dir, capsys):
    args = ["generate", "Hello", "--model", gpt2_dir, "--max-new-tokens", "2"]
    assert main(args) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    for flag in (["--top-k", "5"], ["--top-p", "0.5"], ["--seed", "1"]):
        assert main([*args, *flag]) == 0
        assert capsys.readouterr() == (
            quiet.out,
            f"tinyformers: warning: {flag[0]} has no effect with greedy decoding; "
            "sample with --temperature > 0 (e.g. 0.7)\n",
        )


# -- 14. progress bars end at their total ----------------------------------------------------------------------


def test_batch_job_progress_bar_ends_at_the_total(gpt2_dir, tmp_path):
    lines = [json.dumps({"text": f"Prompt number {i}"}) for i in range(50)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    out = tinyformers(
        "generate", "--model", gpt2_dir, "--max-new-tokens", "1", "--batch-size", "8",
        "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    final = out.stderr.replace("\r", "\n").strip().splitlines()
    assert "50/50" in [line for line in final if "text-generation" in line][-1], out.stderr


# -- 12. right-padded batches ----------------------------------------------------------------------------------


def padded(lengths: list[int], vocab: int, pad: int, side: str, seed: int = 5):
    """Random prompts of ``lengths`` tokens padded with ``pad`` on ``side``, and their attention mask."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        place = slice(0, n) if side == "right" else slice(width - n, width)
        ids[row, place] = torch.randint(3, vocab, (n,), generator=generator)
        mask[row, place] = 1
    return ids, mask


DECODING = {
    "greedy": {},
    "sample": {"do_sample": True, "temperature": 1.5, "top_k": 0},
    "beams": {"num_beams": 3, "num_return_sequences": 2},
}


@pytest.mark.parametrize("decoding", [*DECODING, "eos", "eos-fixed-batch"])
def test_right_padded_batch_continues_like_the_left_padded_one(checkpoint, transformers, decoding):
    ours = AutoModelForCausalLM.from_pretrained(checkpoint)
    pad = ours.generation_config.pad_token_id
    pad = pad if pad is not None else ours.generation_config.eos_token_id
    vocab = ours.config.vocab_size
    left, left_mask = padded([7, 3, 5], vocab, pad, "left")
    right, right_mask = padded([7, 3, 5], vocab, pad, "right")
    kwargs = {"max_new_tokens": 10, "pad_token_id": pad, **DECODING.get(decoding, {})}
    if decoding.startswith("eos"):  # rows that finish at different steps (and leave the batch, unless fixed)
        greedy = ours.generate(left, attention_mask=left_mask, **kwargs)
        kwargs["eos_token_id"] = int(greedy[1, 7 + 2])
        ours.fixed_batch_decoding = decoding == "eos-fixed-batch"

    def run(ids, mask):
        torch.manual_seed(0)
        return ours.generate(ids, attention_mask=mask, **kwargs)

    expected = run(left, left_mask)
    assert torch.equal(run(right, right_mask), expected)
    if decoding == "greedy":  # and the left-padded result is transformers'
        ref = transformers.AutoModelForCausalLM.from_pretrained(checkpoint).eval()
        assert torch.equal(ref.generate(left, attention_mask=left_mask, do_sample=False, **kwargs), expected)
