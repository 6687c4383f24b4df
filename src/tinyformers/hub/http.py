"""HTTP to a hub endpoint with the standard library only.

Settings come from the same environment variables ``huggingface_hub`` reads, so one shell setup serves both:
``HF_ENDPOINT`` (default https://huggingface.co), ``HF_TOKEN`` (else the token file ``hf auth login`` writes,
``$HF_TOKEN_PATH`` or ``$HF_HOME/token``) and ``HF_HUB_OFFLINE``. Every failure becomes one ``HubError`` whose
message names the problem and the fix; the server's ``X-Error-Code`` header says which kind it is.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

from .errors import (
    EntryNotFoundError,
    HubAuthError,
    HubConnectionError,
    HubError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

DEFAULT_ENDPOINT = "https://huggingface.co"
# Statuses worth another try: the server is busy or briefly down (the same set huggingface_hub retries).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "tinyformers; python-urllib"


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline() -> bool:
    return _is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))


def hf_home() -> Path:
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home)))


def token_path() -> Path:
    """The file ``hf auth login`` writes the active token to (and ``tinyformers hub login`` too)."""
    path = os.environ.get("HF_TOKEN_PATH")
    return Path(os.path.expandvars(os.path.expanduser(path))) if path else hf_home() / "token"


def get_token() -> str | None:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        try:
            token = token_path().read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
    return token.strip() or None


def stored_tokens_path() -> Path:
    """The INI file of every token logged in with, by name, next to the token file (``hf auth list``)."""
    return token_path().parent / "stored_tokens"


def read_stored_tokens() -> dict[str, dict[str, str]]:
    """``{token name: {"hf_token": ..., ...}}`` from the stored tokens file; unreadable means none, as in
    huggingface_hub (logging in again rewrites it)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(stored_tokens_path(), encoding="utf-8")
        return {name: dict(parser.items(name)) for name in parser.sections()}
    except (configparser.Error, UnicodeDecodeError):
        return {}


def _write_secret(path: Path, text: str) -> None:
    """Owner-only file in an owner-only folder (0600 / 0700), as huggingface_hub writes its secrets; through a
    temp file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        path.parent.chmod(0o700)
    except OSError:  # a folder we do not own (best effort, as huggingface_hub)
        pass


def save_token(token: str, name: str) -> Path:
    """Store ``token`` under ``name`` and make it the active one: exactly what ``hf auth login`` writes (the
    ``stored_tokens`` INI section, whole sections sorted by name, then the token file). Returns the token file."""
    stored = read_stored_tokens()
    stored[name] = {"hf_token": token}  # a new login under the same name drops the section's old fields
    parser = configparser.ConfigParser(interpolation=None)
    for section in sorted(stored):
        parser.add_section(section)
        for key, value in stored[section].items():
            parser.set(section, key, value)
    text = io.StringIO()
    parser.write(text)
    _write_secret(stored_tokens_path(), text.getvalue())
    _write_secret(token_path(), token)
    return token_path()


def repo_url(repo_id: str, *parts: str) -> str:
    """``{endpoint}/api/models/{repo_id}/part/...``; each part is quoted as the hub expects (slashes too)."""
    return "/".join([endpoint(), "api", "models", repo_id, *(urllib.parse.quote(p, safe="") for p in parts)])


class _DropAuthOnOtherHost(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send the token to another host (a CDN holding the blob)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_DropAuthOnOtherHost)


def _server_message(error: urllib.error.HTTPError) -> str:
    message = error.headers.get("X-Error-Message") or ""
    if not message:
        try:
            body = json.loads(error.read() or b"null")
        except (ValueError, OSError):
            body = None
        if isinstance(body, dict):
            detail = body.get("error") or body.get("detail") or ""
            message = detail if isinstance(detail, str) else json.dumps(detail)
    return " ".join(message.split())[:300]


def _error_for(
    error: urllib.error.HTTPError, repo_id: str | None, revision: str | None, path: str | None, tries: int
) -> HubError:
    code = error.headers.get("X-Error-Code") or ""
    said = _server_message(error)
    where = f" on {endpoint()}"
    if code == "RepoNotFound" or (error.code == 404 and repo_id and not code and not path):
        return RepositoryNotFoundError(
            f"repository '{repo_id}' not found{where} (or it is private and your token cannot read it); check the "
            "id, or set HF_TOKEN / run `tinyformers hub login` with a token that has access",
            error.code,
        )
    if code == "RevisionNotFound":
        return RevisionNotFoundError(
            f"revision '{revision}' not found in '{repo_id}'{where}; pass an existing branch, tag or commit sha",
            error.code,
        )
    if code == "EntryNotFound" or error.code == 404:
        return EntryNotFoundError(
            f"file '{path}' not found in '{repo_id}' at revision '{revision or 'main'}'{where}; check the file name",
            error.code,
        )
    if error.code == 401:
        return HubAuthError(
            f"the hub{where} rejected the token ({said or 'invalid credentials'}); set HF_TOKEN or run "
            "`tinyformers hub login` with a valid token",
            401,
        )
    if error.code == 403:
        return HubAuthError(
            f"not allowed{where}: {said or 'forbidden'}; use a write token of the namespace's owner", 403
        )
    after = f" (after {tries} attempts)" if tries > 1 else ""
    return HubError(
        f"the hub{where} answered {error.code} {error.reason}{after}: {said or 'no details'}", error.code
    )


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    after = error.headers.get("Retry-After") or ""
    return min(float(after), 30.0) if after.isdigit() else None


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before try ``attempt + 1``: the server's ``Retry-After``, else exponential backoff."""
    if retry_after is not None:
        return retry_after
    return min(0.25 * 2**attempt, 8.0) * (1 + random.random() / 4)


def request(
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    token: str | bool | None = None,
    attempts: int = 3,
    timeout: float = 30.0,
    repo_id: str | None = None,
    revision: str | None = None,
    path: str | None = None,
) -> HTTPResponse:
    """Send one request (retried on 408/429/5xx and network errors) and return the open response.

    ``token``: a string, None for the configured one, or False for none. ``body`` is bytes or a file object
    (then pass its Content-Length in ``headers``). ``repo_id``/``revision``/``path`` only shape error messages.
    """
    if is_offline():
        raise HubConnectionError(
            f"HF_HUB_OFFLINE is set, so no request goes to {endpoint()}; unset it to reach the hub"
        )
    token = get_token() if token is None else (token or None)
    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    for attempt in range(attempts):
        if attempt and hasattr(body, "seek"):
            body.seek(0)
        req = urllib.request.Request(url, data=body, headers=all_headers, method=method)
        try:
            return _OPENER.open(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            retry = e.code in RETRY_STATUSES
            if not retry or attempt == attempts - 1:
                error = _error_for(e, repo_id, revision, path, attempt + 1 if retry else 1)
                error.retryable, error.retry_after = retry, _retry_after(e)  # for a caller that retries
                raise error from None
            time.sleep(retry_delay(attempt, _retry_after(e)))
        except (TimeoutError, urllib.error.URLError, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, socket.gaierror) or attempt == attempts - 1:
                after = f" after {attempt + 1} attempts" if attempt else ""
                raise HubConnectionError(
                    f"cannot reach the hub at {endpoint()}{after} ({reason}); check HF_ENDPOINT and your "
                    "network, or set HF_HUB_OFFLINE=1 to use the cache only"
                ) from None
            time.sleep(retry_delay(attempt))
    raise AssertionError("unreachable")


def request_json(method: str, url: str, *, payload: Any = None, **kwargs) -> Any:
    """A JSON request and its decoded JSON answer."""
    body = None if payload is None else json.dumps(payload).encode()
    headers = (
        {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        if body
        else kwargs.pop("headers", {})
    )
    with request(method, url, body=body, headers=headers, **kwargs) as response:
        return json.loads(response.read() or b"null")


def next_link(response: HTTPResponse) -> str | None:
    """The ``Link: <url>; rel="next"`` page the hub paginates lists with."""
    for part in (response.headers.get("Link") or "").split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            return target.strip().strip("<>")
    return None


def paginate(url: str, **kwargs) -> list:
    items: list = []
    next_url: str | None = url
    while next_url:
        with request("GET", next_url, **kwargs) as response:
            items.extend(json.loads(response.read()))
            next_url = next_link(response)
    return items
