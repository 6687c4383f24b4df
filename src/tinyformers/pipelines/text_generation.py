"""Text generation with a causal LM: continue a prompt, or answer a chat."""

from __future__ import annotations

from typing import Any

import torch

from .base import GeneratingPipeline


def is_chat(value: Any) -> bool:
    """A conversation: a list of {"role", "content"} messages."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts padded on the left, so that every row's next token comes right after its own last token."""
    width = max(len(s) for s in sequences)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in sequences], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], dtype=torch.long)
    return ids, mask


# transformers 5's text-generation defaults, for what neither the call nor the model's generation config sets:
# free text is sampled (so two calls differ; pass do_sample=False for greedy, reproducible output).
PIPELINE_GENERATION_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}
SAMPLING_PARAMS = {"temperature", "top_k", "top_p", "min_p"}


def with_pipeline_defaults(generate_kwargs: dict, model_generation_config) -> dict:
    already_set = {**model_generation_config.set_fields(), **generate_kwargs}
    added = {
        key: value
        for key, value in PIPELINE_GENERATION_DEFAULTS.items()
        if key not in already_set and not (key == "max_new_tokens" and "max_length" in already_set)
    }
    if not {**already_set, **added}.get("do_sample"):
        added = {k: v for k, v in added.items() if k not in SAMPLING_PARAMS}
    return {**generate_kwargs, **added}


class TextGenerationPipeline(GeneratingPipeline):
    """Continue a prompt, or answer a chat.

    A str gives ``[{"generated_text": prompt + continuation}]`` (``return_full_text=False``: the continuation
    only); a chat (a list of {"role", "content"} messages) gives ``[{"generated_text": [*messages,
    {"role": "assistant", "content": answer}]}]``. Other keyword arguments (``max_new_tokens``, ``do_sample``,
    ``temperature``, ``num_return_sequences``, ...) go to ``generate``. As in transformers 5, what neither the
    call nor the model's generation config sets defaults to ``max_new_tokens=256, do_sample=True,
    temperature=0.7``: pass ``do_sample=False`` for reproducible (greedy) output.
    """

    task = "text-generation"
    auto_class = "AutoModelForCausalLM"
    defaults = {
        "return_full_text": None,
        "return_tensors": None,
        "return_text": None,
        "clean_up_tokenization_spaces": None,
        "skip_special_tokens": True,
        "prefix": "",
        "add_special_tokens": None,
        "max_length": None,
        "continue_final_message": None,
        "stop_sequence": None,
    }

    def resolve_params(self, params):
        if params["return_full_text"] is not None and params["return_tensors"]:
            raise ValueError("return_full_text and return_tensors cannot be used together")
        generate_kwargs = {k: v for k, v in params.items() if k not in self.defaults}
        if params["max_length"] is not None:
            generate_kwargs["max_length"] = params["max_length"]
        if params["stop_sequence"] is not None:  # as transformers: generation stops once one of them appears
            stop = params["stop_sequence"]
            generate_kwargs.update(
                stop_strings=[stop] if isinstance(stop, str) else list(stop), tokenizer=self.tokenizer
            )
        return {**params, "generate": with_pipeline_defaults(generate_kwargs, self.model.generation_config)}

    def is_single(self, inputs):
        return isinstance(inputs, str) or is_chat(inputs)

    def can_pad(self) -> bool:
        return True  # prompts are padded by hand, with eos when the tokenizer has no pad token

    def prompt_ids(self, item, params) -> list[int]:
        if is_chat(item):
            continue_final = params["continue_final_message"]
            if continue_final is None:
                continue_final = item[-1]["role"] == "assistant"
            return self.tokenizer.apply_chat_template(
                list(item), add_generation_prompt=not continue_final, continue_final_message=continue_final
            )["input_ids"]
        if not isinstance(item, str):
            raise ValueError(
                f"text-generation takes a str or a chat (list of messages); got {type(item).__name__}"
            )
        kwargs = {k: params[k] for k in ("add_special_tokens", "max_length") if params[k] is not None}
        return self.tokenizer(params["prefix"] + item, **kwargs)["input_ids"]

    def pad_id(self) -> int:
        for candidate in (self.tokenizer.pad_token_id, self.model.generation_config.pad_token_id):
            if candidate is not None:
                return candidate
        eos = self.tokenizer.eos_token_id
        return eos if eos is not None else 0

    def preprocess(self, items, params):
        input_ids, attention_mask = left_pad([self.prompt_ids(item, params) for item in items], self.pad_id())
        return {"items": items, "model_inputs": {"input_ids": input_ids, "attention_mask": attention_mask}}

    def forward(self, batch, params):
        inputs = {k: v.to(self.device) for k, v in batch["model_inputs"].items()}
        generate_kwargs = dict(params["generate"])
        if self.model.generation_config.pad_token_id is None and not bool(inputs["attention_mask"].all()):
            generate_kwargs.setdefault("pad_token_id", self.pad_id())
        return self.generate(inputs, generate_kwargs)

    def postprocess(self, batch, sequences, params):
        items, mask = batch["items"], batch["model_inputs"]["attention_mask"]
        prompt_length = mask.shape[1]
        padding = (mask == 0).sum(dim=1).tolist()  # left padding of each row, left out of the token ids
        # An empty prompt was generated from the bos token, in the last prompt column (a new one when every
        # prompt was empty): as in transformers, its ids and text start with that token.
        starts = [(pad, prompt_length) if pad < prompt_length else (max(pad - 1, 0),) * 2 for pad in padding]
        per_item = sequences.shape[0] // len(items)
        grouped = sequences.cpu().reshape(len(items), per_item, -1).tolist()
        return [
            [self.record(item, seq[new:], seq[first:], params) for seq in seqs]
            for item, seqs, (first, new) in zip(items, grouped, starts)
        ]

    def record(self, item, new_ids: list[int], all_ids: list[int], params) -> dict:
        if params["return_tensors"]:
            return {"generated_token_ids": all_ids}
        text = self.tokenizer.decode(
            new_ids,
            skip_special_tokens=params["skip_special_tokens"],
            clean_up_tokenization_spaces=params["clean_up_tokenization_spaces"],
        )
        full = params["return_full_text"] is not False and params["return_text"] is not False
        if not full:
            return {"generated_text": text}
        if isinstance(item, str):
            return {"generated_text": item + text}
        messages = list(item)
        continue_final = params["continue_final_message"]
        if continue_final is None:
            continue_final = messages[-1]["role"] == "assistant"
        if continue_final:
            last = messages[-1]
            return {
                "generated_text": messages[:-1] + [{"role": last["role"], "content": last["content"] + text}]
            }
        return {"generated_text": messages + [{"role": "assistant", "content": text}]}
