"""Speed of two checkouts of tinyformers on the same cases: did a change keep speed?

Each case runs in a fresh subprocess with ``PYTHONPATH`` set to one tree's ``src``; the two trees take turns
(``--rounds`` times each) so that a slow phase of a shared machine does not land on one side only, and each side
keeps its best time. Checkpoints are written once, by transformers, with fixed seeds, and read by both sides.

    git worktree add /tmp/before <rev>
    python benchmarks/compare_revisions.py /tmp/before/src src [--cases wordpiece bpe ...] [--rounds 3]

A ratio above 1 means the second tree is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("ASSETS_DIR", ROOT / ".assets")).resolve()
GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def bbc_texts(megabytes: float) -> list[str]:
    texts, size = [], 0
    for path in sorted((ASSETS / "bbcnews").glob("*/*.txt")):
        texts.append(path.read_bytes().decode("utf-8", errors="replace"))
        size += len(texts[-1].encode("utf-8"))
        if size >= megabytes * 1e6:
            break
    return texts


def best_of(runs: int, function) -> float:
    function()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


# Cases: each runs inside the subprocess and returns seconds (best of a few runs). Imports are inside the cases
# because each subprocess imports one tree of the package; a module that moved is looked up where either tree
# keeps it.


def _tokenizer_class(name: str):
    import importlib

    for module in (f"tinyformers.tokenization.{name[0]}", f"tinyformers.tokenization.{name[1]}"):
        try:
            return getattr(importlib.import_module(module), name[2])
        except (ImportError, AttributeError):
            continue
    raise ImportError(name)


def case_wordpiece(work: Path) -> float:
    tokenizer = _tokenizer_class(("bert", "wordpiece", "BertTokenizer")).from_pretrained(ASSETS / "minilm")
    texts = bbc_texts(1.0)
    return best_of(3, lambda: [tokenizer(t) for t in texts])


def case_bpe(work: Path) -> float:
    tokenizer = _tokenizer_class(("gpt2", "bpe", "GPT2Tokenizer")).from_pretrained(ASSETS / "gpt2-tokenizer")
    texts = bbc_texts(1.0)
    return best_of(3, lambda: [tokenizer(t) for t in texts])


def case_unigram(work: Path) -> float:
    from tinyformers.tokenization.sentencepiece import SentencePieceTokenizer

    tokenizer = SentencePieceTokenizer.from_model_file(
        ASSETS / "sentencepiece" / "botchan_en_unigram_1000.model"
    )
    lines = (ASSETS / "sentencepiece" / "botchan.txt").read_text(encoding="utf-8").splitlines() * 2
    return best_of(3, lambda: [tokenizer.encode(line) for line in lines])


def _no_grad(function):
    import torch

    with torch.inference_mode():
        return function()


def case_bert_b1(work: Path) -> float:
    import torch

    from tinyformers import AutoModel

    model = AutoModel.from_pretrained(work / "bert")
    ids = torch.randint(1000, 2000, (1, 8), generator=torch.Generator().manual_seed(0))
    return _no_grad(lambda: best_of(20, lambda: model(input_ids=ids)))


def case_bert_b32(work: Path) -> float:
    import torch

    from tinyformers import AutoModel

    model = AutoModel.from_pretrained(work / "bert")
    ids = torch.randint(1000, 2000, (32, 128), generator=torch.Generator().manual_seed(0))
    return _no_grad(lambda: best_of(3, lambda: model(input_ids=ids)))


def _greedy(model, ids, new_tokens: int) -> float:
    """Seconds per generated token of a greedy run."""
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return best_of(3, lambda: model.generate(ids, **kwargs)) / new_tokens


def case_gpt2_b1(work: Path) -> float:
    import torch

    from tinyformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(work / "gpt2")
    ids = torch.randint(0, 50000, (1, 16), generator=torch.Generator().manual_seed(0))
    return _greedy(model, ids, 64)


def case_llama_b1(work: Path) -> float:
    import torch

    from tinyformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(GGUF)
    ids = torch.randint(0, 40000, (1, 16), generator=torch.Generator().manual_seed(0))
    return _greedy(model, ids, 64)


def case_llama_int8(work: Path) -> float:
    import torch

    from tinyformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(GGUF, quantize="int8")
    ids = torch.randint(0, 40000, (1, 16), generator=torch.Generator().manual_seed(0))
    return _greedy(model, ids, 64)


def case_t5(work: Path) -> float:
    import torch

    from tinyformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(work / "t5")
    ids = torch.randint(0, 32000, (1, 16), generator=torch.Generator().manual_seed(0))
    return _greedy(model, ids, 64)


CASES = {name[5:]: function for name, function in globals().items() if name.startswith("case_")}


def write_checkpoints(work: Path, cases: list[str]) -> None:
    """Seeded random checkpoints in transformers' layout, written once for both trees."""
    import torch
    import transformers

    torch.manual_seed(0)
    if {"bert_b1", "bert_b32"} & set(cases):
        transformers.BertModel(transformers.BertConfig()).save_pretrained(work / "bert")
    if "gpt2_b1" in cases:
        config = transformers.GPT2Config(initializer_range=0.2)
        transformers.GPT2LMHeadModel(config).save_pretrained(work / "gpt2")
    if "t5" in cases:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_t5 import FLAN_T5_SMALL

        theirs = transformers.T5ForConditionalGeneration(transformers.T5Config(**FLAN_T5_SMALL))
        theirs.lm_head.weight = torch.nn.Parameter(torch.randn(theirs.lm_head.weight.shape))  # untied
        theirs.save_pretrained(work / "t5")


def run_case(src: Path, case: str, work: Path, threads: int) -> float:
    code = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); torch.set_num_threads(int(sys.argv[4]));"
        "import importlib.util, pathlib;"
        "spec = importlib.util.spec_from_file_location('compare', sys.argv[5]);"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "print(m.CASES[sys.argv[2]](pathlib.Path(sys.argv[3])))"
    )
    env = dict(os.environ, PYTHONPATH=str(src), ASSETS_DIR=str(ASSETS))
    command = [sys.executable, "-c", code, str(src), case, str(work), str(threads), __file__]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"case {case} failed with {src}:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the src folder of the first tree")
    parser.add_argument("after", type=Path, help="the src folder of the second tree")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--rounds", type=int, default=2, help="runs of each case per tree, alternating")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    args = parser.parse_args()
    print(f"{args.before} vs {args.after}, {args.threads} threads, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        write_checkpoints(work, args.cases)
        for case in args.cases:
            best = {"before": float("inf"), "after": float("inf")}
            for _ in range(args.rounds):
                for side in ("before", "after"):
                    seconds = run_case(getattr(args, side).resolve(), case, work, args.threads)
                    best[side] = min(best[side], seconds)
            ratio = best["before"] / best["after"]
            if args.json:
                print(json.dumps({"case": case, **best, "ratio": ratio}))
            else:
                print(
                    f"{case:12s} before {best['before'] * 1e3:9.2f} ms   after {best['after'] * 1e3:9.2f} ms   "
                    f"after is {ratio:.3f}x as fast"
                )


if __name__ == "__main__":
    main()
