"""The hub's web page, plain HTML from the server: choose a model (search, task, sort by downloads), read its card.

``/`` lists models; ``/{namespace}/{name}`` shows the rendered model card with the task, downloads, the model
type from config.json and the files with their sizes. No JavaScript: a form and links.
"""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

from . import cards
from .deps import hub, iso, readable_repo, viewer
from .storage import RepoQuery

router = APIRouter()
PAGE = 50
SORT_LABELS = {"downloads": "most downloads", "likes": "most likes", "lastModified": "recently updated"}
# CommonMark without raw HTML: a card cannot inject markup or scripts into the page.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
a { color: #0645ad; text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; } td, th { padding: .3em .6em; border-bottom: 1px solid #ddd; }
th { text-align: left; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.facts span { display: inline-block; margin-right: 1.5em; } .card { border-top: 1px solid #ccc; margin-top: 1.5em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; } form * { margin-right: .5em; }
"""


def human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<style>{STYLE}</style></head><body><p><a href="/">tinyformers hub</a></p>{body}</body></html>'
    )


def _option(value: str, label: str, selected: str | None) -> str:
    chosen = " selected" if value == selected else ""
    return f'<option value="{escape(value)}"{chosen}>{escape(label)}</option>'


@router.get("/", response_class=HTMLResponse)
def index(request: Request):
    params = request.query_params
    search, task = params.get("search", "").strip(), params.get("task") or None
    sort = params.get("sort") if params.get("sort") in SORT_LABELS else "downloads"
    try:
        offset = max(int(params.get("offset") or 0), 0)
    except ValueError:
        offset = 0
    store, caller = hub(request).store, viewer(request).name
    repos = store.list_repos(
        RepoQuery(
            search=search or None, pipeline_tag=task, sort=sort, offset=offset, limit=PAGE + 1, viewer=caller
        )
    )
    tasks = store.pipeline_tags("model", caller)
    form = (
        '<form method="get" action="/">'
        f'<input type="search" name="search" value="{escape(search)}" placeholder="Search models" autofocus>'
        '<select name="task">'
        + _option("", "all tasks", task or "")
        + "".join(_option(t, t, task) for t in tasks)
        + '</select><select name="sort">'
        + "".join(_option(k, v, sort) for k, v in SORT_LABELS.items())
        + '</select><button type="submit">Search</button></form>'
    )
    rows = "".join(
        f'<tr><td><a href="/{escape(r.repo_id)}">{escape(r.repo_id)}</a></td>'
        f"<td>{escape(r.meta.get('pipeline_tag') or '')}</td><td class=num>{r.downloads:,}</td>"
        f"<td class=num>{r.likes:,}</td><td>{iso(r.last_modified)[:10]}</td></tr>"
        for r in repos[:PAGE]
    )
    table = (
        '<table id="models"><thead><tr><th>model</th><th>task</th><th class=num>downloads</th><th class=num>likes</th>'
        f"<th>updated</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p id="models">No model matches.</p>'
    )
    more = ""
    if len(repos) > PAGE:
        query = {"search": search, "task": task or "", "sort": sort, "offset": offset + PAGE}
        more = f'<p><a rel="next" href="/?{urlencode(query)}">next page</a></p>'
    return page("Models - tinyformers hub", f"<h1>Models</h1>{form}{table}{more}")


@router.get("/{namespace}/{name}", response_class=HTMLResponse)
def model_page(request: Request, namespace: str, name: str):
    repo = readable_repo(request, "model", namespace, name)
    service = hub(request)
    sha = service.resolve(repo, "main")
    files = service.store.files(repo, sha)
    meta = repo.meta
    body_md = ""
    if "README.md" in files and (raw := service.read_small(files["README.md"])) is not None:
        _, body_md, _ = cards.split_front_matter(raw.decode("utf-8", errors="replace"))
    card = MARKDOWN.render(body_md) if body_md.strip() else "<p>This model has no model card.</p>"
    config_type = None
    if "config.json" in files and (raw := service.read_small(files["config.json"])) is not None:
        try:
            config_type = json.loads(raw).get("model_type")
        except (ValueError, AttributeError):
            config_type = None
    licence = (meta.get("card_data") or {}).get("license")
    facts = [
        ("task", meta.get("pipeline_tag") or "-"),
        ("model type", config_type or "-"),
        ("library", meta.get("library_name") or "-"),
        ("downloads", f"{repo.downloads:,}"),
        ("likes", f"{repo.likes:,}"),
        ("license", licence if isinstance(licence, str) else "-"),
        ("updated", iso(repo.last_modified)[:10]),
    ]
    facts_html = "".join(
        f'<span id="{escape(k.replace(" ", "-"))}">{escape(k)}: <b>{escape(str(v))}</b></span>'
        for k, v in facts
    )
    file_rows = "".join(
        f'<tr><td><a href="/{escape(repo.repo_id)}/resolve/{sha}/{escape(quote(e.path))}">{escape(e.path)}</a></td>'
        f"<td class=num>{human_size(e.size)}</td></tr>"
        for e in files.values()
    )
    total = human_size(sum(e.size for e in files.values()))
    body = (
        f"<h1>{escape(repo.repo_id)}</h1><p class=facts>{facts_html}</p>"
        f'<h2>Files</h2><table id="files"><thead><tr><th>file</th><th class=num>size</th></tr></thead>'
        f"<tbody>{file_rows}</tbody><tfoot><tr><td>total</td><td class=num>{total}</td></tr></tfoot></table>"
        f'<div class="card" id="card">{card}</div>'
    )
    return page(f"{repo.repo_id} - tinyformers hub", body)
