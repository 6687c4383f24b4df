"""Feature extraction (every token's hidden state) and sentence embeddings: what sentence-transformers' ``encode``
returns, set up as the model folder's own files say (``modules.json``, ``sentence_bert_config.json``,
``1_Pooling/config.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..hub import resolve_dir
from ..utils import read_json
from .base import EncoderPipeline, rows


def real_tokens(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The mask as [batch, tokens, 1] floats (all ones when there is none)."""
    if attention_mask is None:
        return last_hidden_state.new_ones(last_hidden_state.shape[:2]).unsqueeze(-1)
    return attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)


def mean_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average the token vectors of each sequence, ignoring padding (sentence-transformers' 'mean tokens')."""
    mask = real_tokens(last_hidden_state, attention_mask)
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def mean_sqrt_len_pooling(
    last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """The sum of the token vectors divided by the square root of their number."""
    mask = real_tokens(last_hidden_state, attention_mask)
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9).sqrt()


def first_real(attention_mask: torch.Tensor) -> torch.Tensor:
    """The position of each row's first real token (0 with right padding; after the pads with left padding)."""
    return attention_mask.to(torch.int).argmax(dim=1)


def cls_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The first real token's vector ([CLS] for BERT)."""
    if attention_mask is None:
        return last_hidden_state[:, 0]
    return last_hidden_state[torch.arange(len(last_hidden_state)), first_real(attention_mask)]


def max_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The largest value of each dimension over the real tokens."""
    if attention_mask is None:
        return last_hidden_state.max(dim=1).values
    padding = attention_mask.unsqueeze(-1) == 0
    return last_hidden_state.masked_fill(padding, float("-inf")).max(dim=1).values


def weighted_mean_pooling(
    last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """A mean in which the k-th real token weighs k (later tokens count more: for causal encoders)."""
    mask = real_tokens(last_hidden_state, attention_mask)
    weights = torch.arange(1, mask.shape[1] + 1, dtype=mask.dtype, device=mask.device).view(1, -1, 1)
    if attention_mask is not None:
        weights = weights - first_real(attention_mask).view(-1, 1, 1)
    mask = mask * weights
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def last_token_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The last real token's vector (decoder-style embedding models)."""
    if attention_mask is None:
        return last_hidden_state[:, -1]
    length = attention_mask.shape[1]
    seen, from_end = attention_mask.flip(1).max(dim=1)
    last = torch.where(seen == 0, 0, length - 1 - from_end)
    vectors = last_hidden_state[torch.arange(len(last_hidden_state)), last]
    return vectors * (seen != 0).unsqueeze(-1).to(vectors.dtype)  # a row with no real token gives zeros


# sentence-transformers' pooling modes, in the order it concatenates them when a folder asks for several.
POOLINGS = {
    "cls": cls_pooling,
    "max": max_pooling,
    "mean": mean_pooling,
    "mean_sqrt_len_tokens": mean_sqrt_len_pooling,
    "weightedmean": weighted_mean_pooling,
    "lasttoken": last_token_pooling,
}
# The older ``1_Pooling/config.json`` form: one boolean per mode.
POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None, modes) -> torch.Tensor:
    """The pooled vectors of ``modes`` (one name or several, concatenated in the order given)."""
    modes = check_pooling(modes)
    return torch.cat([POOLINGS[mode](last_hidden_state, attention_mask) for mode in modes], dim=-1)


def check_pooling(modes) -> tuple[str, ...]:
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = [mode for mode in modes if mode not in POOLINGS]
    if unknown or not modes:
        raise ValueError(
            f"pooling={unknown or list(modes)} is not a pooling mode; use one of {', '.join(POOLINGS)}"
        )
    return modes


@dataclass(frozen=True)
class SentenceSetup:
    """How sentence-transformers turns a folder's encoder into sentence vectors."""

    pooling: tuple[str, ...] = ("mean",)
    normalize: bool = False
    max_seq_length: int | None = None  # None: the tokenizer's own limit
    do_lower_case: bool = False


# The steps of modules.json this pipeline runs (sentence-transformers' module class names); Dropout does nothing
# at inference.
KNOWN_MODULES = ("Transformer", "Pooling", "Normalize", "Dropout")


def sentence_setup(folder: Path | None) -> SentenceSetup:
    """Read ``folder`` as sentence-transformers does: ``modules.json`` lists the steps (Transformer -> Pooling ->
    Normalize), the Transformer's ``sentence_bert_config.json`` its ``max_seq_length`` and ``do_lower_case``,
    the Pooling's ``config.json`` its modes. A folder without ``modules.json`` is a plain encoder, for which
    sentence-transformers uses mean pooling and no normalisation."""
    modules_file = folder / "modules.json" if folder else None
    if modules_file is None or not modules_file.is_file():
        return SentenceSetup()
    modules = read_json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ValueError(f"{modules_file} should be a list of modules; fix or re-download the file")
    setup = {"normalize": False}
    for module in modules:
        kind = str(module.get("type", "")).rpartition(".")[2]
        path = folder / module.get("path", "")
        if kind not in KNOWN_MODULES:
            raise ValueError(
                f"{modules_file} has a {kind or 'nameless'} module ({module.get('path', '')}), which tinyformers "
                f"does not run (it runs {', '.join(KNOWN_MODULES)}); use sentence-transformers for this model"
            )
        if kind == "Transformer":
            setup.update(transformer_settings(path / "sentence_bert_config.json"))
        elif kind == "Pooling":
            setup["pooling"] = pooling_modes(path / "config.json")
        elif kind == "Normalize":
            setup["normalize"] = True
    return SentenceSetup(**setup)


def transformer_settings(config_file: Path) -> dict:
    settings = read_json(config_file) if config_file.is_file() else {}
    found = {"do_lower_case": bool(settings.get("do_lower_case", False))}
    if settings.get("max_seq_length") is not None:
        found["max_seq_length"] = int(settings["max_seq_length"])
    return found


def pooling_modes(config_file: Path) -> tuple[str, ...]:
    """The modes of a Pooling module: ``pooling_mode`` (newer files) or the ``pooling_mode_*`` flags."""
    settings = read_json(config_file) if config_file.is_file() else {}
    if "pooling_mode" in settings:
        modes = settings["pooling_mode"]
    else:
        modes = tuple(mode for key, mode in POOLING_FLAGS.items() if settings.get(key)) or ("mean",)
    try:
        return check_pooling(modes)
    except ValueError as e:
        raise ValueError(f"{config_file}: {e}") from None


def model_folder(model) -> Path | None:
    """The local folder a model was loaded from: the folder itself, or a hub id's cached snapshot."""
    source = getattr(model.config, "_name_or_path", "") or ""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.is_file():  # a .gguf file: its folder may hold the sentence-transformers files too
        return path.parent
    if source.count("/") == 1:
        try:
            return resolve_dir(source, revision=getattr(model.config, "_commit_hash", None))
        except (OSError, ValueError):
            return None
    return None


class FeatureExtractionPipeline(EncoderPipeline):
    """Hidden states of every token: ``[[[float] * hidden] * tokens]`` per input (nested lists, like transformers).

    Unlike transformers with ``batch_size > 1``, padding positions are never part of the result: each input
    gives exactly its own tokens, whatever the batch size.
    """

    task = "feature-extraction"
    defaults = {"return_tensors": False, "truncation": True, "tokenize_kwargs": None}

    def tokenize(self, items, params):
        return self.tokenizer(items, truncation=params["truncation"], **(params["tokenize_kwargs"] or {}))

    def postprocess(self, batch, outputs, params):
        hidden = outputs[0]
        results = []
        for i, keep in enumerate(rows(batch["model_inputs"]["attention_mask"])):
            features = hidden[i, keep][None]  # [1, tokens, hidden]: transformers keeps the batch axis
            results.append(features.cpu() if params["return_tensors"] else features.tolist())
        return results


class SentenceEmbeddingPipeline(EncoderPipeline):
    """One vector per input, as sentence-transformers' ``model.encode(text)`` gives it for the same folder:
    texts truncated at ``sentence_bert_config.json``'s ``max_seq_length`` (lower-cased first when it says
    ``do_lower_case``), hidden states pooled as ``1_Pooling/config.json`` says, L2-normalised when
    ``modules.json`` has a Normalize step. ``pooling=``, ``normalize=`` and ``max_length=`` override the folder.
    A folder without these files gets sentence-transformers' default: mean pooling, no normalisation.

    Not a transformers task: the result is a list of floats per input (``return_tensors=True`` for a tensor).
    """

    task = "sentence-embedding"
    default_batch_size = 32  # sentence-transformers' encode
    defaults = {"normalize": None, "pooling": None, "max_length": None, "return_tensors": False}

    def __init__(self, model, tokenizer, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self.setup = sentence_setup(model_folder(self.model))  # read once: the folder does not change

    def resolve_params(self, params):
        setup = self.setup
        return {
            **params,
            "normalize": setup.normalize if params["normalize"] is None else params["normalize"],
            "pooling": check_pooling(params["pooling"] or setup.pooling),
            "max_length": params["max_length"] or setup.max_seq_length,
        }

    def tokenize(self, items, params):
        if self.setup.do_lower_case:  # twice changes nothing, so whether or not the tokenizer lower-cases too
            items = [item.lower() for item in items]
        return self.tokenizer(items, truncation=True, max_length=params["max_length"])

    def postprocess(self, batch, outputs, params):
        vectors = pool(outputs[0], batch["model_inputs"]["attention_mask"], params["pooling"])
        if params["normalize"]:
            vectors = F.normalize(vectors, p=2, dim=1)
        return [v.cpu() if params["return_tensors"] else v.tolist() for v in vectors]


@torch.inference_mode()
def sentence_embeddings(
    model, tokenizer, sentences: list[str], normalize: bool = True, max_length: int | None = None
):
    """One vector per sentence, by hand: encoder -> mean pooling -> (optionally) L2 normalisation, as
    all-MiniLM-L6-v2 does (the sentence-embedding pipeline reads these choices from the folder instead)."""
    enc = tokenizer(sentences, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    emb = mean_pooling(out.last_hidden_state, enc["attention_mask"])
    return F.normalize(emb, p=2, dim=1) if normalize else emb
