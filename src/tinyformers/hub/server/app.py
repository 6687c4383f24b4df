"""The FastAPI application: routers in matching order, and every error answered with X-Error-Code/Message."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from . import commits, files, lfs, repos, web
from .errors import HubError
from .service import Hub, Settings

logger = logging.getLogger("tinyformers.hub")
CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}


def _header_text(message: str) -> str:
    # Header values must be one latin-1 line.
    return " ".join(message.split()).encode("latin-1", errors="replace").decode("latin-1")[:1000]


def error_response(
    status: int, code: str, message: str, headers: dict | None = None, body: dict | None = None
):
    headers = {**(headers or {}), "X-Error-Code": code, "X-Error-Message": _header_text(message)}
    return JSONResponse({"error": message, **(body or {})}, status_code=status, headers=headers)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="tinyformers hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = Hub(settings)

    @app.exception_handler(HubError)
    async def hub_error(request: Request, error: HubError):
        return error_response(error.status, error.code, error.message, error.headers, error.body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        code = CODES.get(error.status_code, "HTTPError")
        message = "no such page or API route" if error.status_code == 404 else str(error.detail)
        return error_response(error.status_code, code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return error_response(400, "BadRequest", f"invalid request: {problems}")

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, error: ClientDisconnect):
        # An upload the client abandoned: whatever it sent was dropped (temp files, staged blobs), no trace needed.
        logger.warning("client disconnected during %s %s; nothing was kept", request.method, request.url.path)
        return error_response(
            400, "ClientDisconnected", "the client disconnected before the request body ended"
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        logger.exception("error serving %s %s", request.method, request.url.path)
        return error_response(500, "InternalError", f"internal error: {type(error).__name__}")

    # Order matters: fixed /api routes before the /{namespace}/{name} patterns that could shadow them.
    for module in (repos, commits, files, lfs, web):
        app.include_router(module.router)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> None:
    import uvicorn

    app = create_app(settings)
    print(f"tinyformers hub on http://{host}:{port} (data in {settings.root})", flush=True)
    print(f"  clients: HF_ENDPOINT=http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_keep_alive=30)
