"""Readers and writers for weight files: safetensors (+ sharded index), pytorch_model.bin."""
