"""Greedy decoding speed of SmolLM2-135M (Llama), tinyformers' speed options vs transformers, same weights.

The weights come from the Q4_1 GGUF file (dequantised to float32; transformers loads the same tensors from a
safetensors copy, which is quicker than its GGUF path), or with ``--random`` from a SmolLM2-shaped random model
that transformers builds. Chat prompts, ``--new-tokens`` greedy tokens (eos suppressed so every run is full
length), batch 1 and batch 8 (left padded). Each variant is timed alternately with transformers, best of N after
a warm-up, and reports ms/step, tokens/s, the speed-up and whether the ids equal transformers', and the rate a step reads its weights at
(their bytes / the step's time): batch-1 decoding is bound by it.

Variants ``gguf`` and ``gguf+compile`` load the file with ``quantize="gguf"`` (its Q4_1 blocks kept as they are).

    python benchmarks/bench_llama_generate.py [--variants eager,compile,int8,int8+compile,gguf,gguf+compile]
        [--cases b1,b8]
        [--new-tokens 64] [--repeats 3] [--threads N] [--random] [--profile] [--gguf-load]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import torch
from torch import nn

from common import ASSETS, SPEED_VARIANTS, names_from, speed_variant
from common import CHAT_QUESTIONS as QUESTIONS
from tinyformers import AutoModelForCausalLM, AutoTokenizer
from tinyformers.models.gguf_quantized import GGUFLinear
from tinyformers.models.quantized import Int8Linear, greedy_agreement

GGUF = ASSETS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
VARIANTS = (*SPEED_VARIANTS, "gguf", "gguf+compile")


def variant(ours, name: str):
    if name.startswith("gguf"):
        return AutoModelForCausalLM.from_pretrained(GGUF, quantize="gguf", compile="compile" in name)
    return speed_variant(ours, name)


def load(random: bool):
    """(ours, theirs, tokenizer, seconds ours took to load the GGUF file)."""
    import transformers

    tokenizer = AutoTokenizer.from_pretrained(GGUF)
    with tempfile.TemporaryDirectory() as directory:
        if random:
            torch.manual_seed(0)
            config = transformers.LlamaConfig(**smollm2_shape())
            transformers.LlamaForCausalLM(config).save_pretrained(directory)
            start = time.perf_counter()
            ours = AutoModelForCausalLM.from_pretrained(directory)
        else:
            start = time.perf_counter()
            ours = AutoModelForCausalLM.from_pretrained(GGUF)
            ours.save_pretrained(directory)
        load_seconds = time.perf_counter() - start
        theirs = transformers.LlamaForCausalLM.from_pretrained(directory).eval()
    return ours, theirs, tokenizer, load_seconds


def smollm2_shape() -> dict:
    from tinyformers import AutoConfig

    c = AutoConfig.from_pretrained(GGUF).to_dict()
    keep = (
        "vocab_size hidden_size intermediate_size num_hidden_layers num_attention_heads num_key_value_heads"
    )
    return dict(tie_word_embeddings=True, rope_theta=100000.0, **{k: c[k] for k in keep.split()})


def prompts(tokenizer, batch: int):
    chats = [[{"role": "user", "content": q}] for q in QUESTIONS[:batch]]
    texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def weight_megabytes(model) -> float:
    """Bytes of the matrices a decoding step reads (every layer matrix and the head), in MB."""

    def size(m) -> int:
        if isinstance(m, GGUFLinear):
            return sum(f.numel() * f.element_size() for f in m.fields())
        return m.qweight.numel() if isinstance(m, Int8Linear) else m.weight.numel() * 4

    return sum(size(m) for m in model.modules() if isinstance(m, (nn.Linear, Int8Linear, GGUFLinear))) / 1e6


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_case(variant, model, theirs, ids, mask, new_tokens, repeats, reference_ids):
    kwargs = dict(
        attention_mask=mask,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=2,
    )

    def ours():
        return model.generate(ids, **kwargs)

    def ref():
        with torch.inference_mode():
            return theirs.generate(ids, **kwargs)

    first = _seconds(ours)  # warm-up (and compilation)
    ref()
    t_ours = t_theirs = float("inf")
    for _ in range(repeats):  # alternate, so a busy phase of the machine hits both
        t_ours = min(t_ours, _seconds(ours))
        t_theirs = min(t_theirs, _seconds(ref))
    out, want = ours(), ref()
    batch = ids.shape[0]
    streamed = weight_megabytes(model) / (1000 * t_ours / new_tokens)  # MB per ms = GB/s
    same = torch.equal(out, want)
    new = slice(ids.shape[1], None)
    agree = (out[:, new] == reference_ids[:, new]).float().mean().item() if reference_ids is not None else 1.0
    print(
        f"{variant:13s} b{batch}  ours {1000 * t_ours / new_tokens:6.1f} ms/step {batch * new_tokens / t_ours:6.1f} tok/s"
        f"   transformers {1000 * t_theirs / new_tokens:6.1f} ms/step {batch * new_tokens / t_theirs:6.1f} tok/s"
        f"   speed-up {t_theirs / t_ours:4.2f}x   ids identical: {same!s:5}  same as fp32 eager: {agree:4.0%}"
        f"   weights read at {streamed:4.1f} GB/s   first run {first:5.1f} s   load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return out


def profile(model, ids, mask, steps: int = 16) -> None:
    """Where a decoding step's time goes: the op table over ``steps`` greedy steps (after the prefill)."""
    from torch.profiler import ProfilerActivity, profile

    kwargs = dict(attention_mask=mask, max_new_tokens=steps, min_new_tokens=steps, do_sample=False)
    model.generate(ids, **kwargs)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.generate(ids, **kwargs)
    events = prof.key_averages()
    print(f"{sum(e.count for e in events if e.key.startswith('aten::')) / steps:.0f} aten calls per step")
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=names_from(VARIANTS, "variant"), default="eager,int8")
    parser.add_argument(
        "--cases", type=names_from(r"b[1-9][0-9]*", "case"), default="b1,b8", help="batch sizes: b1,b8"
    )
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--random", action="store_true", help="random SmolLM2-shaped weights instead of the GGUF"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print the op table of the eager decoding path"
    )
    parser.add_argument(
        "--gguf-load", action="store_true", help="also run bench_gguf_load (transformers: ~40 s)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch threads (1 is steadier while other jobs load the cores)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, transformers {transformers.__version__}"
    )
    ours, theirs, tokenizer, load_seconds = load(args.random)
    print(f"weights: {'random' if args.random else GGUF.name}; tinyformers load {load_seconds:.1f} s")
    if args.profile:
        profile(ours, *prompts(tokenizer, 1))
    if args.random and any(name.startswith("gguf") for name in args.variants):
        parser.error("the gguf variants read the GGUF file; leave out --random")
    models = {name: variant(ours, name) for name in args.variants}
    for case in args.cases:
        ids, mask = prompts(tokenizer, int(case.removeprefix("b")))
        reference = None
        for name, model in models.items():
            out = run_case(name, model, theirs, ids, mask, args.new_tokens, args.repeats, reference)
            reference = out if name == "eager" else reference
    chats = [[{"role": "user", "content": q}] for q in QUESTIONS]
    ids = [
        tokenizer.apply_chat_template(c, add_generation_prompt=True, return_tensors="pt")["input_ids"]
        for c in chats
    ]
    for name in (
        name for name in models if name.startswith(("int8", "gguf"))
    ):  # the variants that are not exact
        prefix, forced = greedy_agreement(models[name], ours, ids, new_tokens=32)
        print(
            f"{name} vs fp32 over {len(ids)} chats, 32 tokens: greedy prefix agreement {prefix:.0%}, "
            f"teacher-forced top-1 agreement {forced:.0%}"
        )
    if args.gguf_load:
        import bench_gguf_load

        bench_gguf_load.main()


if __name__ == "__main__":
    main()
