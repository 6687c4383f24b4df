"""Generation parity: the same random GPT-2 checkpoint generates the same ids here as in transformers."""

from __future__ import annotations

import copy
import json
import threading
import warnings

import pytest
import torch

from conftest import oracle
from tinyformers.generation import (
    GenerationConfig,
    TextIteratorStreamer,
    TextStreamer,
    generate,
)
from tinyformers.models.gpt2 import GPT2LMHeadModel

transformers = oracle("transformers")

VOCAB = 1000
TINY = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB, n_positions=128, initializer_range=0.2)
EOS = 999


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    # eos/bos inside the small vocabulary so that stopping can actually happen
    ref = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(bos_token_id=EOS, eos_token_id=EOS, **TINY)
    ).eval()
    directory = tmp_path_factory.mktemp("gen")
    ref.save_pretrained(directory)
    return ref, directory


@pytest.fixture(scope="module")
def ref(checkpoint):
    return checkpoint[0]


@pytest.fixture(scope="module")
def model(checkpoint):
    return GPT2LMHeadModel.from_pretrained(checkpoint[1])


def prompts(batch: int = 1, length: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB - 1, (batch, length), generator=torch.Generator().manual_seed(seed))


def left_padded() -> tuple[torch.Tensor, torch.Tensor]:
    ids = prompts(3, 7, seed=2)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    mask[2, :4] = 0
    return ids.masked_fill(mask == 0, 0), mask


def same_as_transformers(model, ref, ids, **kwargs) -> torch.Tensor:
    ours = model.generate(ids, **kwargs)
    with torch.inference_mode():
        theirs = ref.generate(ids, **kwargs)
    assert ours.tolist() == theirs.tolist(), kwargs
    return ours


def frequent_tokens(model, ids, step=3) -> list[int]:
    """The token greedy decoding produces at ``step`` in each row: as eos, every row finishes early."""
    return sorted(set(model.generate(ids, max_new_tokens=step + 1)[:, ids.shape[1] + step].tolist()))


# ---- greedy and processors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_greedy_matches(model, ref, seed):
    same_as_transformers(model, ref, prompts(seed=seed), max_new_tokens=30)


def test_default_length_is_20_new_tokens(model, ref):
    out = same_as_transformers(model, ref, prompts())
    assert out.shape[1] == 6 + 20


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(repetition_penalty=1.3),
        dict(repetition_penalty=0.8),
        dict(no_repeat_ngram_size=2),
        dict(no_repeat_ngram_size=3, repetition_penalty=1.2),
    ],
)
def test_processors_match(model, ref, kwargs):
    same_as_transformers(model, ref, prompts(), max_new_tokens=25, **kwargs)


def test_eos_list_and_min_new_tokens(model, ref):
    ids = prompts(2)
    eos = frequent_tokens(model, ids)
    out = same_as_transformers(model, ref, ids, max_new_tokens=20, eos_token_id=eos, pad_token_id=0)
    assert out.shape[1] < 26  # stopped early
    out = same_as_transformers(
        model, ref, ids, max_new_tokens=20, eos_token_id=eos, min_new_tokens=8, pad_token_id=0
    )
    assert not any(t in eos for t in out[:, 6 : 6 + 8].flatten().tolist())
    same_as_transformers(model, ref, ids, max_length=20, eos_token_id=eos, min_length=15, pad_token_id=0)


def test_batched_left_padding_matches(model, ref):
    ids, mask = left_padded()
    same_as_transformers(model, ref, ids, attention_mask=mask, max_new_tokens=20, pad_token_id=0)
    same_as_transformers(
        model, ref, ids, attention_mask=mask, max_new_tokens=15, pad_token_id=0, repetition_penalty=1.4
    )
    eos = frequent_tokens(model, ids[:1])
    same_as_transformers(
        model, ref, ids, attention_mask=mask, max_new_tokens=20, pad_token_id=0, eos_token_id=eos
    )


def test_padded_row_equals_unpadded_generation(model):
    ids, mask = left_padded()
    batched = model.generate(ids, attention_mask=mask, max_new_tokens=10, pad_token_id=0)
    alone = model.generate(ids[2:, 4:], max_new_tokens=10)
    assert batched[2, 4:].tolist() == alone[0].tolist()


# ---- beam search ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_beams=4),
        dict(num_beams=4, length_penalty=0.6, num_return_sequences=2),
        dict(num_beams=4, length_penalty=2.0),
        dict(num_beams=3, early_stopping=True),
        dict(num_beams=3, early_stopping="never", length_penalty=1.5),
        dict(num_beams=4, no_repeat_ngram_size=2, repetition_penalty=1.2),
    ],
)
def test_beam_search_matches(model, ref, kwargs):
    ids = prompts(2)
    same_as_transformers(model, ref, ids, max_new_tokens=15, **kwargs)
    eos = frequent_tokens(
        model, ids, step=2
    )  # beams that finish early exercise the finished-hypotheses bookkeeping
    same_as_transformers(model, ref, ids, max_new_tokens=15, eos_token_id=eos, pad_token_id=0, **kwargs)


def test_beam_search_left_padded_matches(model, ref):
    ids, mask = left_padded()
    same_as_transformers(
        model,
        ref,
        ids,
        attention_mask=mask,
        max_new_tokens=12,
        num_beams=3,
        num_return_sequences=2,
        pad_token_id=0,
    )


def test_beam_scores_match(model, ref):
    ids = prompts()
    kwargs = dict(num_beams=3, max_new_tokens=8, return_dict_in_generate=True, output_scores=True)
    ours = model.generate(ids, **kwargs)
    with torch.inference_mode():
        theirs = ref.generate(ids, **kwargs)
    assert ours.sequences.tolist() == theirs.sequences.tolist()
    torch.testing.assert_close(ours.sequences_scores, theirs.sequences_scores, atol=1e-4, rtol=0)
    assert ours.beam_indices.tolist() == theirs.beam_indices.tolist()


# ---- sampling ------------------------------------------------------------------------------------------------------
def test_top_k_1_and_tiny_top_p_equal_greedy(model):
    ids = prompts(2)
    greedy = model.generate(ids, max_new_tokens=15)
    assert model.generate(ids, do_sample=True, top_k=1, max_new_tokens=15).tolist() == greedy.tolist()
    assert (
        model.generate(ids, do_sample=True, top_k=0, top_p=1e-6, max_new_tokens=15).tolist()
        == greedy.tolist()
    )


def test_sampling_is_reproducible_and_matches_transformers(model, ref):
    ids = prompts(2)
    kwargs = dict(do_sample=True, temperature=0.7, top_k=40, top_p=0.9, max_new_tokens=20)
    torch.manual_seed(5)
    first = model.generate(ids, **kwargs)
    torch.manual_seed(5)
    assert model.generate(ids, **kwargs).tolist() == first.tolist()
    torch.manual_seed(5)
    with torch.inference_mode():  # same scores + same random stream = same draws
        assert ref.generate(ids, **kwargs).tolist() == first.tolist()
    torch.manual_seed(5)
    min_p = model.generate(ids, do_sample=True, min_p=0.1, top_k=0, max_new_tokens=20)
    torch.manual_seed(5)
    with torch.inference_mode():
        assert (
            ref.generate(ids, do_sample=True, min_p=0.1, top_k=0, max_new_tokens=20).tolist()
            == min_p.tolist()
        )


def test_sampled_tokens_come_from_top_k(model):
    ids = prompts(4)
    torch.manual_seed(0)
    out = model.generate(
        ids, do_sample=True, top_k=3, max_new_tokens=10, return_dict_in_generate=True, output_scores=True
    )
    for step, scores in enumerate(out.scores):
        assert (scores.isfinite().sum(-1) <= 3).all()  # ties aside, only 3 candidates survive
        chosen = out.sequences[:, 6 + step]
        assert scores.gather(1, chosen[:, None]).isfinite().all()


def test_num_return_sequences_with_sampling(model):
    torch.manual_seed(0)
    out = model.generate(prompts(2), do_sample=True, num_return_sequences=3, max_new_tokens=5)
    assert out.shape == (6, 11)


def test_greedy_scores_match(model, ref):
    ids = prompts()
    kwargs = dict(max_new_tokens=5, return_dict_in_generate=True, output_scores=True, output_logits=True)
    ours = model.generate(ids, repetition_penalty=1.5, **kwargs)
    with torch.inference_mode():
        theirs = ref.generate(ids, repetition_penalty=1.5, **kwargs)
    assert len(ours.scores) == len(theirs.scores) == 5
    for a, b in zip(ours.scores + ours.logits, theirs.scores + theirs.logits, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


# ---- configuration -------------------------------------------------------------------------------------------------
def test_generation_config_precedence(model, tmp_path, checkpoint):
    _, directory = checkpoint
    assert model.generation_config.eos_token_id == EOS  # from the folder's generation_config.json
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    (tmp_path / "generation_config.json").write_text(json.dumps({"max_new_tokens": 4, "eos_token_id": None}))
    with_file = GPT2LMHeadModel.from_pretrained(tmp_path)
    ids = prompts()
    assert with_file.generate(ids).shape[1] == 6 + 4  # model.generation_config
    assert with_file.generate(ids, generation_config=GenerationConfig(max_new_tokens=6)).shape[1] == 6 + 6
    assert (
        with_file.generate(ids, generation_config=GenerationConfig(max_new_tokens=6), max_new_tokens=2).shape[
            1
        ]
        == 6 + 2
    )  # keyword argument beats both
    with_file.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == 4
    assert transformers.GenerationConfig.from_pretrained(tmp_path / "saved").max_new_tokens == 4


def test_generation_config_file_round_trip(tmp_path):
    config = GenerationConfig(do_sample=True, top_p=0.9, eos_token_id=[1, 2], typical_p=0.5)
    config.save_pretrained(tmp_path)
    assert GenerationConfig.from_pretrained(tmp_path) == config
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path)
    assert (theirs.do_sample, theirs.top_p, theirs.eos_token_id, theirs.typical_p) == (True, 0.9, [1, 2], 0.5)


def test_function_and_method_agree(model):
    ids = prompts()
    assert generate(model, ids, max_new_tokens=5).tolist() == model.generate(ids, max_new_tokens=5).tolist()


def test_max_new_tokens_zero_returns_prompt(model):
    ids = prompts()
    assert model.generate(ids, max_new_tokens=0).tolist() == ids.tolist()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_new_token=5), TypeError, "max_new_token"),
        (dict(max_new_tokens=-1), ValueError, "max_new_tokens must be >= 0"),
        (dict(max_new_tokens=200), ValueError, "128 positions"),
        (dict(max_length=4), ValueError, "max_length is 4"),
        (dict(num_beams=2, num_return_sequences=3), ValueError, "num_return_sequences"),
        (dict(do_sample=True, temperature=0.0), ValueError, "temperature"),
    ],
)
def test_bad_arguments_are_clear_errors(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        model.generate(prompts(), **kwargs)


def test_bad_inputs_are_clear_errors(model):
    with pytest.raises(ValueError, match="at most 128"):
        model.generate(prompts(length=129), max_new_tokens=1)
    with pytest.raises(ValueError, match=r"\[batch, seq_len\]"):
        model.generate(prompts()[0], max_new_tokens=1)
    ids, mask = left_padded()
    with pytest.raises(ValueError, match="pad_token_id"):
        model.generate(ids, attention_mask=mask, eos_token_id=None, pad_token_id=None, max_new_tokens=2)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model.generate(ids, attention_mask=mask[:, 1:], max_new_tokens=2)


# ---- streamers -----------------------------------------------------------------------------------------------------
class ByteTokenizer:
    """Token i is the UTF-8 byte i (ids >= 256 are spaces): enough to split characters across tokens."""

    def decode(self, ids, **kwargs):
        ids = [ids] if isinstance(ids, int) else ids
        return bytes(i if i < 256 else 32 for i in ids).decode("utf-8", errors="replace")


def chunks_from(streamer_cls, tokenizer, ids, **kwargs) -> list[str]:
    out: list[str] = []

    class Capture(streamer_cls):
        def on_finalized_text(self, text, stream_end=False):
            out.append(text)

    streamer = Capture(tokenizer, **kwargs)
    streamer.put(ids[:, :1])
    for token in ids[0, 1:]:
        streamer.put(token[None])
    streamer.end()
    return out


def test_text_streamer_holds_back_partial_characters_like_transformers():
    text = "héllo wörld 你好 👋 ok\nnext line"
    ids = torch.tensor([list(text.encode())])
    tokenizer = ByteTokenizer()
    ours = chunks_from(TextStreamer, tokenizer, ids, skip_prompt=True)
    theirs = chunks_from(transformers.TextStreamer, tokenizer, ids, skip_prompt=True)
    assert ours == theirs
    assert "".join(ours) == tokenizer.decode(ids[0, 1:].tolist())
    assert not any("\ufffd" in chunk for chunk in ours)


def test_text_streamer_prints(model, capsys):
    model.generate(prompts(), max_new_tokens=5, streamer=TextStreamer(ByteTokenizer()))
    printed = capsys.readouterr().out
    assert printed.endswith("\n") and len(printed) > 1


def test_iterator_streamer_from_a_thread_with_the_gpt2_tokenizer(model, gpt2_tokenizer_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir))  # used only for .decode
    ids = prompts()
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=30)
    thread = threading.Thread(
        target=model.generate, kwargs=dict(input_ids=ids, max_new_tokens=20, streamer=streamer)
    )
    thread.start()
    text = "".join(streamer)
    thread.join()
    full = model.generate(ids, max_new_tokens=20)
    assert text == tokenizer.decode(full[0, 6:])


def test_streamer_rejects_beam_search(model):
    with pytest.raises(ValueError, match="beam"):
        model.generate(prompts(), num_beams=2, max_new_tokens=3, streamer=TextStreamer(ByteTokenizer()))


# ---- finished rows leave the batch ---------------------------------------------------------------------------------
class RowCounter:
    """Wraps a model and records how many rows each decoding step computes."""

    def __init__(self, model):
        self.model, self.rows = model, []
        self.config, self.generation_config = model.config, model.generation_config

    def allocate_cache(self, batch_size, max_length):
        return self.model.allocate_cache(batch_size, max_length)

    def next_token_logits(self, input_ids, position_ids, cache):
        self.rows.append(input_ids.shape[0])
        return self.model.next_token_logits(input_ids, position_ids, cache)


def staggered_eos(model, ids) -> int:
    """A token greedy decoding emits in some rows but not others, at different steps: rows finish apart."""
    out = model.generate(ids, max_new_tokens=12)[:, ids.shape[1] :]
    first_seen = {}
    for row in out.tolist():
        for step, token in enumerate(row):
            first_seen.setdefault(token, set()).add(step)
    return max(first_seen, key=lambda t: (len(first_seen[t]), -min(first_seen[t])))


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(repetition_penalty=1.3), dict(no_repeat_ngram_size=2), dict(do_sample=True, top_k=20)],
)
def test_finished_rows_leave_the_batch_with_identical_ids(model, ref, kwargs):
    ids, mask = left_padded()
    ids = torch.cat([ids, prompts(3, 7, seed=4)])
    mask = torch.cat([mask, torch.ones(3, 7, dtype=mask.dtype)])
    eos = staggered_eos(model, ids)
    common = dict(attention_mask=mask, max_new_tokens=12, eos_token_id=eos, pad_token_id=0, **kwargs)
    counter = RowCounter(model)
    torch.manual_seed(3)
    ours = generate(counter, ids, **common)
    torch.manual_seed(3)
    with torch.inference_mode():
        theirs = ref.generate(ids, **common)
    assert ours.tolist() == theirs.tolist()
    finished = (ours[:, 7:] == eos).any(1)
    assert finished.any() and not finished.all(), finished  # some rows finish early, not all
    assert min(counter.rows) < ids.shape[0]  # the finished rows were no longer computed


def test_fixed_batch_decoding_keeps_finished_rows_fed_with_padding(model):
    ids = prompts(4, seed=5)
    kwargs = dict(max_new_tokens=10, eos_token_id=staggered_eos(model, ids), pad_token_id=0)
    dropping, fixed = RowCounter(model), RowCounter(model)
    fixed.fixed_batch_decoding = True
    assert generate(dropping, ids, **kwargs).tolist() == generate(fixed, ids, **kwargs).tolist()
    assert set(fixed.rows) == {4} and min(dropping.rows) < 4


def test_rows_stay_when_scores_are_requested(model, ref):
    ids = prompts(4, seed=5)
    eos = staggered_eos(model, ids)
    kwargs = dict(max_new_tokens=10, eos_token_id=eos, pad_token_id=0, return_dict_in_generate=True)
    kwargs.update(output_scores=True, output_logits=True)
    ours = model.generate(ids, **kwargs)
    with torch.inference_mode():
        theirs = ref.generate(ids, **kwargs)
    assert ours.sequences.tolist() == theirs.sequences.tolist()
    assert len(ours.scores) == len(theirs.scores) == len(ours.logits) == len(theirs.logits) > 0
    for a, b in zip(ours.scores + ours.logits, theirs.scores + theirs.logits, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


# ---- stop strings --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizers(gpt2_tokenizer_dir):
    from tinyformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gpt2_tokenizer_dir), transformers.AutoTokenizer.from_pretrained(
        str(gpt2_tokenizer_dir)
    )


def stop_strings_in(text: str) -> list[list[str]]:
    """Stop strings taken from generated text: inside one token, across tokens, and one never produced."""
    middle = len(text) // 2
    return [[text[middle : middle + 3]], [text[middle - 4 : middle + 2], "zzzzqx"], [text[-2:]], ["zzzzqx"]]


@pytest.mark.parametrize("batch, eos", [(1, EOS), (3, EOS), (3, None)])
def test_stop_strings_match_transformers(model, ref, tokenizers, batch, eos):
    """Without an eos transformers does not pad a row a stop string finished: it runs on until all have."""
    ours_tok, their_tok = tokenizers
    ids = prompts(batch, seed=7)
    kwargs = dict(max_new_tokens=25, eos_token_id=eos, pad_token_id=0)
    plain = model.generate(ids, **kwargs)
    text = ours_tok.decode(plain[0, 6:].tolist())
    for stop in stop_strings_in(text):
        ours = model.generate(ids, tokenizer=ours_tok, stop_strings=stop, **kwargs)
        with torch.inference_mode():
            theirs = ref.generate(ids, tokenizer=their_tok, stop_strings=stop, **kwargs)
        assert ours.tolist() == theirs.tolist(), stop
        if stop == stop_strings_in(text)[0] and batch == 1:
            assert ours.shape[1] < plain.shape[1]  # the string stopped generation
    assert ours.tolist() == plain.tolist()  # a string never produced changes nothing


def test_stop_strings_need_a_tokenizer_and_no_beams(model, tokenizers):
    with pytest.raises(ValueError, match="tokenizer"):
        model.generate(prompts(), max_new_tokens=3, stop_strings=["a"])
    with pytest.raises(ValueError, match="beam search"):
        model.generate(prompts(), max_new_tokens=3, stop_strings=["a"], tokenizer=tokenizers[0], num_beams=2)


# ---- more transformers options -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(bad_words_ids=[[5], [7, 8]]),
        dict(forced_bos_token_id=17),
        dict(forced_eos_token_id=21),
        dict(forced_eos_token_id=[21, 22], num_beams=3),
    ],
)
def test_constraint_options_match(model, ref, kwargs):
    ids = prompts(2)
    greedy = model.generate(ids, max_new_tokens=12)[:, 6:].tolist()
    if "bad_words_ids" in kwargs:  # ban what greedy decoding actually produces, single tokens and pairs
        kwargs = dict(bad_words_ids=[[greedy[0][0]], greedy[1][2:4]])
    same_as_transformers(model, ref, ids, max_new_tokens=12, **kwargs)
    if "forced_bos_token_id" in kwargs:  # only a one-token prompt is forced
        out = same_as_transformers(model, ref, ids[:, :1], max_new_tokens=4, **kwargs)
        assert out[:, 1].tolist() == [17, 17]


@pytest.mark.parametrize(
    "kwargs", [dict(typical_p=0.6), dict(epsilon_cutoff=3e-3), dict(typical_p=0.8, top_k=0)]
)
def test_sampling_warpers_match(model, ref, kwargs):
    ids = prompts(2)
    torch.manual_seed(11)
    ours = model.generate(ids, do_sample=True, max_new_tokens=15, **kwargs)
    torch.manual_seed(11)
    with torch.inference_mode():
        theirs = ref.generate(ids, do_sample=True, max_new_tokens=15, **kwargs)
    assert ours.tolist() == theirs.tolist()


@pytest.mark.parametrize(
    "kwargs", [dict(output_hidden_states=True), dict(eta_cutoff=0.1), dict(suppress_tokens=[3])]
)
def test_unimplemented_transformers_options_are_named(model, kwargs):
    (name,) = kwargs
    assert hasattr(transformers.GenerationConfig(), name)  # an option transformers has
    with pytest.raises(ValueError, match=f"does not support {name}"):
        model.generate(prompts(), max_new_tokens=2, **kwargs)
    with pytest.raises(ValueError, match=f"does not support {name}"):
        model.generate(prompts(), generation_config=GenerationConfig(max_new_tokens=2, **kwargs))
    model.generate(prompts(), max_new_tokens=2, output_hidden_states=False)  # the default is no request


def test_checkpoint_generation_config_with_unimplemented_option_warns_once(model, tmp_path):
    """A checkpoint's own generation_config.json is not the user's request: a warning names what is ignored."""
    own = copy.deepcopy(model)
    own.generation_config = GenerationConfig(max_new_tokens=2, suppress_tokens=[3])
    with pytest.warns(
        UserWarning, match=r"sets suppress_tokens=\[3\], which generate\(\) does not implement"
    ):
        own.generate(prompts())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        own.generate(prompts())  # once per config, not at every call
