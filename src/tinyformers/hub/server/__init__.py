"""A self-hostable hub that the real ``huggingface_hub`` client and ``transformers`` accept unmodified.

``service.Settings`` + ``app.create_app`` build the FastAPI application; ``tinyformers hub serve`` runs it.
Only ``app`` and the route modules import FastAPI; ``auth``, ``storage``, ``sqlite`` and ``blobs`` do not, so
``tinyformers hub token create`` works without starting (or importing) the web stack. See docs/hub.md.
"""
