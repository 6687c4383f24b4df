"""SmolLM2-135M GGUF (Q4_1) -> fp32 state dict with HF names, ours vs transformers' GGUF loader, best of 3.

Both sides start from the file and end with a config and an HF-named float32 state dict. transformers needs its
config and a (meta-device) model for its name map, so those are part of its time; a second line times its
tensor pass alone, with the config and model built beforehand. The state dicts are checked equal first.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import torch
import transformers
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint as hf_load_gguf_checkpoint

from common import compare, machine, report
from tinyformers.formats.gguf import load_gguf_checkpoint

ASSETS = Path(os.environ.get("ASSETS_DIR", Path(__file__).resolve().parent.parent / ".assets"))
FOLDER, FILE = ASSETS / "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def meta_model() -> torch.nn.Module:
    config = transformers.AutoConfig.from_pretrained(FOLDER, gguf_file=FILE)
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config)


def theirs_tensors_only(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar draws on every call
        return hf_load_gguf_checkpoint(str(FOLDER / FILE), return_tensors=True, model_to_load=model)[
            "tensors"
        ]


def theirs() -> dict[str, torch.Tensor]:
    return theirs_tensors_only(meta_model())


def ours() -> dict[str, torch.Tensor]:
    return load_gguf_checkpoint(FOLDER / FILE, progress=False)[1]


def main() -> None:
    print(machine())
    expected, got = theirs(), ours()
    assert sorted(expected) == sorted(got) and all(torch.equal(got[k], v) for k, v in expected.items())
    t_ours, t_theirs = compare(ours, theirs, repeat=3, warmup=0)
    report("GGUF Q4_1 135M -> fp32 state dict", t_ours, t_theirs)
    print(f"time ratio tinyformers/transformers: {t_ours / t_theirs:.3f} (target <= 0.25)")
    model = meta_model()
    t_ours, t_theirs = compare(ours, lambda: theirs_tensors_only(model), repeat=3, warmup=0)
    report("  vs transformers' tensor pass only", t_ours, t_theirs)
    print(f"time ratio tinyformers/transformers (tensor pass only): {t_ours / t_theirs:.3f}")


if __name__ == "__main__":
    main()
