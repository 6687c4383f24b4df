"""Text generation shared by every decoder: the loop, logits processors, beam search, KV cache, streamers.

See ``utils.py`` for the protocol a model implements to be generated from.
"""

from .cache import StaticKVCache, causal_mask
from .config import GenerationConfig
from .prepare import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput
from .streamers import BaseStreamer, TextIteratorStreamer, TextStreamer
from .utils import GenerationMixin, generate

__all__ = [
    "BaseStreamer",
    "GenerateBeamDecoderOnlyOutput",
    "GenerateDecoderOnlyOutput",
    "GenerationConfig",
    "GenerationMixin",
    "StaticKVCache",
    "TextIteratorStreamer",
    "TextStreamer",
    "causal_mask",
    "generate",
]
