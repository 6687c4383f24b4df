"""The continuous-batching scheduler without HTTP, on a tiny seeded Llama: every request's greedy ids equal its
own one-row ``generate()``, while requests join, leave, shift the shared cache timeline right (a prompt longer
than it) and left (the timeline reaching the cache's end)."""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from server_process import Collected, run_and_count_shifts, run_requests
from tinyformers.models.inner_product import ONEDNN_INNER_PRODUCT, PACK_WEIGHTS
from tinyformers.models.kernels import FLOAT_MAX_ROWS
from tinyformers.models.llama import LlamaConfig, LlamaForCausalLM
from tinyformers.serving.params import SamplingParams
from tinyformers.serving.scheduler import Scheduler, prefill_groups
from tinyformers.serving.server import in_passing_thread
from tinyformers.serving.slots import COMPACT_AFTER


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from tinyformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf")


def seeded_llama(tokenizer, hidden: int = 64, layers: int = 2, heads: int = 4) -> LlamaForCausalLM:
    """A random Llama on SmolLM2's vocabulary, seeded, without an end token (requests run to their length)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        max_position_embeddings=64,
        eos_token_id=None,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def model(tokenizer):
    return seeded_llama(tokenizer)


def local(model, ids, new_tokens, **kwargs):
    input_ids = torch.tensor([ids])
    out = model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens, **kwargs
    )
    return out[0, len(ids) :].tolist()


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_greedy_rows_equal_generate_while_the_batch_changes(model, tokenizer, compiled):
    # compiled: the rows' different starts are padding to the step's graph, which attends over the written
    # positions only (a new count at every step, one graph for all); buckets of 8 keep the cache 40 long
    served = copy.deepcopy(model).compile_decoding(max_length_step=8) if compiled else model
    generator = torch.Generator().manual_seed(1)
    vocab = model.config.vocab_size
    requests = []
    for i in range(9):
        prompt = torch.randint(3, vocab, (3 + (5 * i) % 13,), generator=generator).tolist()
        requests.append((prompt, SamplingParams(max_new_tokens=4 + (7 * i) % 17, temperature=0)))
    scheduler = Scheduler(served, tokenizer, max_batch=3, max_queue=16, max_length=40)
    sinks, shifts = run_and_count_shifts(scheduler, requests)
    for (prompt, params), sink in zip(requests, sinks):
        assert sink.tokens == local(model, prompt, params.max_new_tokens, do_sample=False)
        assert sink.finished.reason == "length"
        assert sink.text == tokenizer.decode(sink.tokens, skip_special_tokens=True)
    assert any(by > 0 for by, _ in shifts) and any(by < 0 for by, _ in shifts)  # both moves happened
    assert scheduler.slots.running == 0 and scheduler.metrics.generated_tokens == sum(
        len(s.tokens) for s in sinks
    )


def test_short_prompts_joining_together_are_prefilled_in_one_forward(model, tokenizer):
    """Prompts of similar length that join at one step run as one left-padded forward; each request still gets
    its own generate()'s ids, also when one of them finishes at its first token (its row is refilled at once)."""
    generator = torch.Generator().manual_seed(2)
    vocab = model.config.vocab_size
    lengths, budgets = [7, 8, 8, 6, 30, 5], [5, 1, 6, 3, 4, 2]
    requests = [
        (
            torch.randint(3, vocab, (n,), generator=generator).tolist(),
            SamplingParams(max_new_tokens=b, temperature=0),
        )
        for n, b in zip(lengths, budgets)
    ]
    scheduler = Scheduler(model, tokenizer, max_batch=6, max_queue=16, max_length=40)
    groups: list[list[int]] = []
    prefill = scheduler._prefill
    scheduler._prefill = lambda group: (groups.append([len(r.prompt_ids) for r in group]), prefill(group))[1]
    try:  # all queued before the model thread starts: they join together
        sinks = run_requests(scheduler, requests, start=True)
    finally:
        scheduler.stop()
    assert groups == [[5, 6, 7, 8, 8], [30]]  # the long prompt would be mostly padding: alone
    for (prompt, params), sink in zip(requests, sinks):
        assert sink.tokens == local(model, prompt, params.max_new_tokens, do_sample=False)
    assert scheduler.slots.running == 0


def test_a_dead_prefix_longer_than_the_live_timeline_is_compacted_early(model, tokenizer):
    """B outlives A, and C takes A's row late: once B finishes, C's keys start 34 positions into the timeline with
    fewer after them (about 33, 22), so the rows shift left before the cache's end; every request's ids are still generate()'s."""
    prompts = [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]
    budgets = [34, 52, 26]
    scheduler = Scheduler(model, tokenizer, max_batch=2, max_queue=4, max_length=64)
    requests = [(p, SamplingParams(max_new_tokens=b, temperature=0)) for p, b in zip(prompts, budgets)]
    sinks, shifts = run_and_count_shifts(scheduler, requests)
    for prompt, budget, sink in zip(prompts, budgets, sinks):
        assert sink.tokens == local(model, prompt, budget, do_sample=False)
    early = [by for by, length in shifts if by < 0 and length < 64]  # before the cache's end
    assert len(early) == 1 and early[0] <= -COMPACT_AFTER


def test_prefill_groups_bound_padding_and_length():
    def group_lengths(lengths, reused=None):
        reused = reused or [0] * len(lengths)
        requests = [SimpleNamespace(prompt_ids=[0] * n, reused=r) for n, r in zip(lengths, reused)]
        return [[len(r.prompt_ids) for r in group] for group in prefill_groups(requests)]

    assert group_lengths([10, 10, 10]) == [[10, 10, 10]]
    assert group_lengths([4, 12]) == [[4], [12]]  # 24 tokens run for 16 real ones: too much padding
    assert group_lengths([100, 90, 95]) == [[90, 95, 100]]
    assert group_lengths([200, 200]) == [[200], [200]]  # long prompts: batching saves nothing
    assert group_lengths([]) == []
    # a prompt counts for the tokens it runs: 300 tokens of which the prompt cache holds 296 run as 4
    assert group_lengths([4, 300], reused=[0, 296]) == [[4, 300]]
    assert group_lengths([4, 300], reused=[0, 200]) == [[4], [300]]


def test_seeded_sampling_does_not_depend_on_the_batch(model, tokenizer):
    prompt = list(range(100, 110))
    params = SamplingParams(max_new_tokens=8, temperature=0.8, top_p=0.9, seed=7)
    scheduler = Scheduler(model, tokenizer, max_batch=4, max_queue=8).start()
    try:
        alone = run_requests(scheduler, [(prompt, params)])[0].tokens
        others = [
            (list(range(200, 200 + n)), SamplingParams(max_new_tokens=8, temperature=1.0)) for n in (3, 9, 5)
        ]
        together = run_requests(scheduler, [*others[:2], (prompt, params), others[2]])[2].tokens
    finally:
        scheduler.stop()
    assert alone == together


def test_stop_strings_and_cancel(model, tokenizer):
    prompt = list(range(300, 312))
    expected = local(model, prompt, 12, do_sample=False)
    text = tokenizer.decode(expected, skip_special_tokens=True)
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    scheduler = Scheduler(model, tokenizer, max_batch=2, max_queue=4).start()
    try:
        sink = run_requests(
            scheduler, [(prompt, SamplingParams(max_new_tokens=12, temperature=0, stop=[stop]))]
        )[0]
        assert sink.finished.reason == "stop" and sink.text == text[: text.index(stop)]

        cancelled = Collected()
        request = scheduler.submit(prompt, SamplingParams(max_new_tokens=50, temperature=0), cancelled)
        scheduler.cancel(request)
        assert cancelled.done.wait(60) and cancelled.finished.reason == "cancelled"
    finally:
        scheduler.stop()
    assert scheduler.slots.running == 0


def test_prompts_that_start_like_a_cached_one_reuse_it_and_answer_as_generate(model, tokenizer):
    generator = torch.Generator().manual_seed(3)
    vocab = model.config.vocab_size
    first = torch.randint(3, vocab, (12,), generator=generator).tolist()
    other = torch.randint(3, vocab, (9,), generator=generator).tolist()
    params = SamplingParams(max_new_tokens=6, temperature=0)
    scheduler = Scheduler(
        model, tokenizer, max_batch=4, max_queue=8, max_length=48, prompt_cache_bytes=1 << 20
    )
    scheduler.start()
    try:
        run_requests(scheduler, [(first, params)])
        assert scheduler.metrics.prompt_tokens_reused == 0
        # joining together: the same prompt, a longer one starting with it, one sharing 5 tokens, a new one
        prompts = [first, first + [7, 8, 9], first[:5] + other[:4], other]
        sinks = [Collected() for _ in prompts]
        with scheduler.wake:  # the model thread takes none before all are queued
            for prompt, sink in zip(prompts, sinks):
                scheduler.submit(prompt, params, sink)
        for sink in sinks:
            assert sink.done.wait(120)
    finally:
        scheduler.stop()
    for prompt, sink in zip(prompts, sinks):
        assert sink.tokens == local(model, prompt, 6, do_sample=False)
    # Cached starts: 11 of 12 (all but the last token: it joins the decoding step without a prefill), 12 of 15,
    # 5 of 9, none of ``other``. The second and third run together, each its last 4 positions (the most either
    # needs), so they copy 11 + 5; ``other`` (9 to run) would pad that group too much and runs alone.
    assert scheduler.metrics.prompt_tokens_reused == 11 + 11 + 5


def test_the_prompt_cache_keeps_recent_prompts_within_its_bytes():
    from tinyformers.serving.prompt_cache import PromptCache

    def kv(n):  # one layer, 1 head of width 4: keys and values of a position take 32 bytes
        return [(torch.full((1, n, 4), float(n)), torch.full((1, n, 4), float(n)))]

    cache = PromptCache(max_bytes=32 * 10)  # room for 10 positions
    cache.store([1, 2, 3, 4], kv(4))
    cache.store([1, 2, 9], kv(3))
    assert cache.match([1, 2, 3, 4, 5], limit=10)[0] == 4
    assert cache.match([1, 2, 3, 4, 5], limit=3)[0] == 3  # at most ``limit``
    assert cache.match([1, 2, 9, 9], limit=10)[0] == 3
    assert cache.match([5, 1, 2], limit=10) == (0, None)
    assert cache.match([1, 2, 3], limit=0) == (0, None)
    cache.store([7] * 11, kv(11))  # larger than the whole cache: not kept
    assert list(cache.entries) == [(1, 2, 3, 4), (1, 2, 9)]
    cache.match([1, 2, 3, 4], limit=10)  # a hit makes [1, 2, 3, 4] the most recent
    cache.store([8, 8, 8, 8], kv(4))  # 11 positions: over the bound, the least recent goes
    assert list(cache.entries) == [(1, 2, 3, 4), (8, 8, 8, 8)]
    assert cache.bytes == 32 * 8


def test_the_server_loads_its_model_in_a_thread_that_then_ends():
    # so that the scheduler's thread keeps the process's only OpenMP pool (serving/server.py says why)
    ran_in = []
    assert in_passing_thread(lambda: ran_in.append(threading.current_thread()) or 42) == 42
    assert ran_in[0] is not threading.current_thread() and not ran_in[0].is_alive()

    def fails():
        raise ValueError("no such model")

    with pytest.raises(ValueError, match="no such model"):
        in_passing_thread(fails)


@pytest.mark.parametrize("gap, first_step_rows", [(1.0, 3), (0.0, 1)])
def test_an_idle_scheduler_starts_a_burst_in_one_step_unless_told_not_to_wait(
    model, tokenizer, gap, first_step_rows
):
    scheduler = Scheduler(model, tokenizer, max_batch=4, max_queue=8, max_length=40, gather_gap=gap)
    rows_per_step = []
    step = scheduler._step
    scheduler._step = lambda: (rows_per_step.append(len(scheduler.running)), step())[1]
    scheduler.start()
    try:
        sinks = [Collected() for _ in range(3)]
        for i, sink in enumerate(sinks):
            scheduler.submit([5 + i, 6, 7], SamplingParams(max_new_tokens=3, temperature=0), sink)
            time.sleep(0.4)  # arrivals 0.4 s apart: within a 1 s gap, and long for a lone step to begin
        for sink in sinks:
            assert sink.done.wait(60) and sink.finished.reason == "length"
    finally:
        scheduler.stop()
    assert rows_per_step[0] == first_step_rows, rows_per_step


@pytest.mark.parametrize("announced, first_step_rows", [(True, 2), (False, 1)])
def test_an_idle_scheduler_waits_for_a_request_the_server_is_still_reading(
    model, tokenizer, announced, first_step_rows
):
    # the server announces each request from its first byte to its submission (serving/app.py)
    scheduler = Scheduler(model, tokenizer, max_batch=4, max_queue=8, max_length=40, gather_gap=0.1)
    rows_per_step = []
    step = scheduler._step
    scheduler._step = lambda: (rows_per_step.append(len(scheduler.running)), step())[1]
    scheduler.start()
    sinks = [Collected(), Collected()]
    params = SamplingParams(max_new_tokens=3, temperature=0)
    try:
        with scheduler.announce() if announced else contextlib.nullcontext():
            scheduler.submit([5, 6, 7], params, sinks[0])
            time.sleep(0.3)  # reading the second takes longer than the gap, less than 5 gaps
            scheduler.submit([8, 6, 7], params, sinks[1])
        for sink in sinks:
            assert sink.done.wait(60) and sink.finished.reason == "length"
    finally:
        scheduler.stop()
    assert rows_per_step[0] == first_step_rows, rows_per_step
    assert scheduler.announced == 0


def test_a_batch_that_ended_together_is_expected_back_together(model, tokenizer):
    # Closed-loop clients send their next request when they have their answer: a few ms apart, not always within
    # the gap. Here the gap is 0.2 s and the second wave's three requests come 0.3 s apart (0.6 s in all, within
    # the five gaps): they still start in one step, as the first wave (a plain burst) did.
    scheduler = Scheduler(model, tokenizer, max_batch=4, max_queue=8, max_length=40, gather_gap=0.2)
    rows_per_step = []
    step = scheduler._step
    scheduler._step = lambda: (rows_per_step.append(len(scheduler.running)), step())[1]
    scheduler.start()
    params = SamplingParams(max_new_tokens=3, temperature=0)
    try:
        first = [Collected() for _ in range(3)]
        for i, sink in enumerate(first):
            scheduler.submit([5 + i, 6, 7], params, sink)
        for sink in first:
            assert sink.done.wait(60) and sink.finished.reason == "length"
        waves = len(rows_per_step)
        second = [Collected() for _ in range(3)]
        for i, sink in enumerate(second):
            scheduler.submit([9 + i, 6, 7], params, sink)
            time.sleep(0.3)
        for sink in second:
            assert sink.done.wait(60) and sink.finished.reason == "length"
    finally:
        scheduler.stop()
    assert rows_per_step[0] == 3 and rows_per_step[waves] == 3, rows_per_step


@pytest.mark.skipif(
    ONEDNN_INNER_PRODUCT is None or not PACK_WEIGHTS,
    reason="batched forwards keep no packed matrices here (an Intel CPU, a torch without oneDNN, or packing off)",
)
def test_the_warm_up_packs_what_a_batched_prefill_uses_and_the_answers_stay_generates(tokenizer):
    # matrices large enough for oneDNN (ONEDNN_MIN_WEIGHTS), so that a batched forward of more rows than
    # kernels.FLOAT_MAX_ROWS packs them on first use
    model = seeded_llama(tokenizer, hidden=512, layers=1, heads=8)

    def packed() -> dict[str, int]:
        return {
            name: id(m.__dict__["_packed_weight"].packed)
            for name, m in model.named_modules()
            if "_packed_weight" in m.__dict__
        }

    assert 2 * 12 > FLOAT_MAX_ROWS
    scheduler = Scheduler(model, tokenizer, max_batch=2, max_queue=4, max_length=40)
    scheduler.slots.warm_up(model)
    warmed = packed()
    assert warmed
    greedy = SamplingParams(max_new_tokens=4, temperature=0)
    # two prompts joining together: one prefill of 2 x 12 rows (packed products), then two-row steps
    requests = [(list(range(5, 17)), greedy), (list(range(20, 32)), greedy)]
    try:
        sinks = run_requests(scheduler, requests, start=True)
    finally:
        scheduler.stop()
    assert packed() == warmed  # the batched prefill found every matrix packed already
    for (prompt, params), sink in zip(requests, sinks):
        assert sink.tokens == local(model, prompt, params.max_new_tokens, do_sample=False)
