"""``tinyformers serve`` on an encoder-decoder model: a tiny seeded-random Flan-T5 (transformers builds and saves
it) with a T5 sentencepiece tokenizer, served for text2text through the same continuous-batching scheduler as
causal models. Expected outputs come from local ``generate()`` and from transformers' ``generate()`` on the same
checkpoint, never from the server itself."""

from __future__ import annotations

import pytest
import torch

from conftest import oracle
from fixtures import reference_t5, write_t5_spiece

openai = oracle("openai")
oracle("fastapi")  # the server's own dependencies, installed with the test extra
oracle("uvicorn")

from server_process import Server, at_once, openai_client, run_and_count_shifts  # noqa: E402
from tinyformers.serving.params import SamplingParams  # noqa: E402
from tinyformers.serving.scheduler import Scheduler  # noqa: E402

CONTEXT = 32  # --max-context: prompts and answers of this server are at most this long


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, spm_dir):
    """The folder (Flan-T5 layout: gated GELU, a head of its own) and transformers' model of it."""
    folder = tmp_path_factory.mktemp("flan-tiny")
    reference = reference_t5("flan")
    reference.save_pretrained(folder)
    write_t5_spiece(spm_dir / "botchan_en_unigram_1000.model", folder)
    return folder, reference


@pytest.fixture(scope="module")
def local(checkpoint):
    from tinyformers import AutoModelForSeq2SeqLM, AutoTokenizer

    folder, _ = checkpoint
    return AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def server(checkpoint):
    server = Server(str(checkpoint[0]), "--max-batch", "4", "--max-context", str(CONTEXT))
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    return openai_client(server)


def name(checkpoint) -> str:
    return checkpoint[0].name


def greedy(model, ids: list[int], new_tokens: int) -> list[int]:
    """The generated ids of a one-row greedy ``generate`` (its output starts with the decoder's start token)."""
    input_ids = torch.tensor([ids])
    out = model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens, do_sample=False
    )
    assert int(out[0, 0]) == model.generation_config.decoder_start_token_id
    return out[0, 1:].tolist()


def prompts(count: int) -> list[str]:
    """Texts of different lengths (5 to 17 tokens)."""
    return [f"{'the cat sat ' * (i % 4)}number {i}." for i in range(count)]


def test_scheduler_rows_equal_generate_while_the_batch_changes(local):
    """Without HTTP: rows join (several in one forward) and leave (the last row moving into a freed one, with its
    encoder rows), the timeline shifts right and left, prompts of different lengths share steps; every answer
    stays its own."""
    model, tokenizer = local
    texts = prompts(10)
    requests = [
        (tokenizer(t)["input_ids"], SamplingParams(max_new_tokens=3 + (5 * i) % 11, temperature=0))
        for i, t in enumerate(texts)
    ]
    scheduler = Scheduler(model, tokenizer, max_batch=3, max_queue=16, max_length=24)
    groups: list[list[int]] = []
    prefill = scheduler._prefill
    scheduler._prefill = lambda group: (groups.append([len(r.prompt_ids) for r in group]), prefill(group))[1]
    sinks, shifts = run_and_count_shifts(scheduler, requests, queue_first=True)
    for (ids, params), sink in zip(requests, sinks):
        assert sink.tokens == greedy(model, ids, params.max_new_tokens)
        assert sink.text == tokenizer.decode(sink.tokens, skip_special_tokens=True)
        assert sink.finished.prompt_tokens == len(ids)
    assert any(by > 0 for by, _ in shifts) and any(by < 0 for by, _ in shifts)  # both moves happened
    assert any(len(set(group)) > 1 for group in groups)  # prompts of different lengths joined in one forward
    assert scheduler.slots.running == 0


def test_completion_equals_local_and_transformers_greedy_and_streams_the_same_text(client, checkpoint, local):
    model, tokenizer = local
    text = "translate English to German: The house is wonderful."
    ids = tokenizer(text)["input_ids"]
    expected = greedy(model, ids, 10)
    theirs = checkpoint[1].generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)
    assert expected == theirs[0, 1:].tolist()  # token ids identical to transformers'
    answer = tokenizer.decode(expected, skip_special_tokens=True)

    reply = client.completions.create(model=name(checkpoint), prompt=text, max_tokens=10, temperature=0)
    assert reply.choices[0].text == answer
    assert reply.usage.prompt_tokens == len(ids) and reply.usage.completion_tokens == len(expected)
    assert reply.choices[0].finish_reason == ("stop" if expected[-1] == 1 else "length")
    scored = client.completions.create(
        model=name(checkpoint), prompt=text, max_tokens=10, temperature=0, logprobs=0
    )
    assert scored.choices[0].logprobs.tokens == [tokenizer.decode([i]) for i in expected]  # token by token

    stream = client.completions.create(
        model=name(checkpoint), prompt=text, max_tokens=10, temperature=0, stream=True
    )
    events = list(stream)
    assert all(e.object == "text_completion" for e in events)
    assert "".join(e.choices[0].text for e in events) == answer
    assert events[-1].choices[0].finish_reason == reply.choices[0].finish_reason


def test_six_concurrent_requests_each_equal_their_sequential_result(client, checkpoint, local):
    model, tokenizer = local
    texts = prompts(6)
    lengths = [4 + (3 * i) % 9 for i in range(6)]
    expected = [
        tokenizer.decode(greedy(model, tokenizer(t)["input_ids"], n), skip_special_tokens=True)
        for t, n in zip(texts, lengths)
    ]

    def one(i: int):
        return client.completions.create(
            model=name(checkpoint), prompt=texts[i], max_tokens=lengths[i], temperature=0
        )

    assert [r.choices[0].text for r in at_once(one, 6)] == expected


def test_context_errors_name_the_numbers_and_chat_needs_a_template(client, checkpoint):
    long_prompt = "summarize: " + "the cat sat on the mat " * 10
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model=name(checkpoint), prompt=long_prompt, max_tokens=4)
    message = error.value.body["message"]
    assert "prompt has" in message and f"at most {CONTEXT} tokens" in message
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model=name(checkpoint), prompt="summarize: hi", max_tokens=CONTEXT)
    message = error.value.body["message"]
    assert f"max_tokens is {CONTEXT}" in message and f"at most {CONTEXT - 1} tokens" in message

    with pytest.raises(openai.BadRequestError, match="no chat template.*/v1/completions"):
        client.chat.completions.create(
            model=name(checkpoint), messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )


def test_int8_t5_serves_what_it_generates(checkpoint, local):
    """``--quantize int8`` applies to T5 as to causal models: the scheduler's rows equal the int8 model's own
    one-row ``generate`` (int8 itself is not exact: tests/test_t5_speed_options.py)."""
    from tinyformers import AutoModelForSeq2SeqLM

    model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(checkpoint[0], quantize="int8"), local[1]
    requests = [
        (tokenizer(t)["input_ids"], SamplingParams(max_new_tokens=4 + i, temperature=0))
        for i, t in enumerate(prompts(3))
    ]
    scheduler = Scheduler(model, tokenizer, max_batch=2, max_queue=4, max_length=24)
    sinks, _ = run_and_count_shifts(scheduler, requests, queue_first=True)
    for (ids, params), sink in zip(requests, sinks):
        assert sink.tokens == greedy(model, ids, params.max_new_tokens)


def test_compiled_t5_serves_what_it_generates(checkpoint, local):
    """``--compile`` applies to T5 too: its compiled decoder step attends over the written positions only, with
    the bias + causal table cut to them, whatever position each row starts at."""
    from tinyformers import AutoModelForSeq2SeqLM

    model, tokenizer = local
    compiled = AutoModelForSeq2SeqLM.from_pretrained(checkpoint[0]).eval().compile_decoding(max_length_step=8)
    requests = [
        (tokenizer(t)["input_ids"], SamplingParams(max_new_tokens=4 + 3 * i, temperature=0))
        for i, t in enumerate(prompts(4))
    ]
    scheduler = Scheduler(compiled, tokenizer, max_batch=2, max_queue=4, max_length=24)
    sinks, _ = run_and_count_shifts(scheduler, requests, queue_first=True)
    for (ids, params), sink in zip(requests, sinks):
        assert sink.tokens == greedy(model, ids, params.max_new_tokens)
