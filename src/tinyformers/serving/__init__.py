"""An OpenAI-compatible inference server with continuous batching (``tinyformers serve``).

``scheduler.py`` batches every running request's decoding steps on the shared generation engine; ``app.py`` is
the HTTP API (FastAPI, imported only here); ``server.py`` loads a model and runs it under uvicorn.
"""
