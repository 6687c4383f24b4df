"""The continuous-batching scheduler without HTTP, on a tiny seeded Llama: every request's greedy ids equal its
own one-row ``generate()``, while requests join, leave, shift the shared cache timeline right (a prompt longer
than it) and left (the timeline reaching the cache's end)."""

from __future__ import annotations

import pytest
import torch

from server_process import Collected, run_and_count_shifts, run_requests
from tinyformers.models.llama import LlamaConfig, LlamaForCausalLM
from tinyformers.serving.params import SamplingParams
from tinyformers.serving.scheduler import Scheduler


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from tinyformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        eos_token_id=None,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def local(model, ids, new_tokens, **kwargs):
    input_ids = torch.tensor([ids])
    out = model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens, **kwargs
    )
    return out[0, len(ids) :].tolist()


def test_greedy_rows_equal_generate_while_the_batch_changes(model, tokenizer):
    generator = torch.Generator().manual_seed(1)
    vocab = model.config.vocab_size
    requests = []
    for i in range(9):
        prompt = torch.randint(3, vocab, (3 + (5 * i) % 13,), generator=generator).tolist()
        requests.append((prompt, SamplingParams(max_new_tokens=4 + (7 * i) % 17, temperature=0)))
    scheduler = Scheduler(model, tokenizer, max_batch=3, max_queue=16, max_length=40)
    sinks, shifts = run_and_count_shifts(scheduler, requests)
    for (prompt, params), sink in zip(requests, sinks):
        assert sink.tokens == local(model, prompt, params.max_new_tokens, do_sample=False)
        assert sink.finished.reason == "length"
        assert sink.text == tokenizer.decode(sink.tokens, skip_special_tokens=True)
    assert any(by > 0 for by in shifts) and any(by < 0 for by in shifts)  # both moves happened
    assert scheduler.slots.running == 0 and scheduler.metrics.generated_tokens == sum(
        len(s.tokens) for s in sinks
    )


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
