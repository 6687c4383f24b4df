"""BERT-base forward pass (random weights made by transformers, loaded by both), fp32, inference mode.

Shapes: batch 1 x 8 tokens (per-call overhead) and batch 32 x 128 tokens (compute). Outputs are checked equal
before timing.
"""

from __future__ import annotations

import tempfile

import torch
import transformers

import tinyformers
from common import compare, machine, report


def main() -> None:
    print(machine())
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        transformers.BertModel(transformers.BertConfig()).save_pretrained(d)  # bert-base-uncased shape
        theirs = transformers.BertModel.from_pretrained(d).eval()
        ours = tinyformers.AutoModel.from_pretrained(d)
    for batch, seq, repeat in ((1, 8, 30), (32, 128, 5)):
        ids = torch.randint(1000, 30000, (batch, seq))
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            diff = (
                ours(ids, mask).last_hidden_state
                - theirs(input_ids=ids, attention_mask=mask).last_hidden_state
            )
            assert diff.abs().max() < 1e-4, diff.abs().max()
            t_ours, t_theirs = compare(
                lambda i=ids, m=mask: ours(i, m),
                lambda i=ids, m=mask: theirs(input_ids=i, attention_mask=m),
                repeat,
            )
        report(f"BERT-base forward b{batch} x s{seq}", t_ours * 1000, t_theirs * 1000, unit="ms")


if __name__ == "__main__":
    main()
