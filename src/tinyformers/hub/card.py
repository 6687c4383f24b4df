"""Model cards: README.md with the YAML front matter the hub indexes (license, task, library, base model, ...).

``model_card`` writes one from a ``config.json`` dict when a pushed folder has none; ``front_matter`` reads the
simple YAML subset cards use (scalars and lists) back.
"""

from __future__ import annotations

import json
import os
import re

# Head class name suffix -> the hub's pipeline_tag (what "search by task" filters on).
TASK_OF_HEAD = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("Model", "feature-extraction"),
)
CARD_KEYS = ("license", "library_name", "pipeline_tag", "base_model", "tags", "datasets", "metrics")
_PLAIN = re.compile(r"^[A-Za-z0-9][\w./+-]*$")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _is_hub_id(name: str | None) -> bool:
    """A name that means a hub repo (not a local folder that happens to look like one)."""
    return bool(name and _HUB_ID.match(name) and not os.path.exists(name))


def pipeline_tag(config: dict) -> str | None:
    for architecture in config.get("architectures") or []:
        for suffix, task in TASK_OF_HEAD:
            if architecture.endswith(suffix):
                return task
    return None


def _yaml_scalar(value) -> str:
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    text = str(value)
    return (
        text
        if _PLAIN.match(text) and text.lower() not in {"yes", "no", "true", "false", "null"}
        else json.dumps(text)
    )


def render_front_matter(meta: dict) -> str:
    lines = ["---"]
    for key, value in meta.items():
        if isinstance(value, list | tuple):
            lines.append(f"{key}:")
            lines.extend(f"- {_yaml_scalar(item)}" for item in value)
        else:
            lines.append(f"{key}: {_yaml_scalar(value)}")
    return "\n".join(lines + ["---", ""])


def model_card(
    repo_id: str,
    config: dict | None = None,
    *,
    license: str | None = None,
    base_model: str | None = None,
    tags: list[str] | None = None,
    datasets: list[str] | None = None,
    metrics: list[str] | None = None,
) -> str:
    """README.md text for ``repo_id``; ``config`` is the pushed config.json (None for a tokenizer alone)."""
    config = config or {}
    model_type = config.get("model_type")
    meta = {
        "license": license,
        # The files are in transformers' format, so the hub shows transformers' loading snippet.
        "library_name": "transformers",
        "pipeline_tag": pipeline_tag(config),
        "base_model": base_model
        if base_model and _HUB_ID.match(base_model) and base_model != repo_id
        else None,
        "tags": list(dict.fromkeys(["tinyformers", *([model_type] if model_type else []), *(tags or [])])),
        "datasets": list(datasets or []) or None,
        "metrics": list(metrics or []) or None,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    architecture = (config.get("architectures") or [None])[0]
    what = f"A {model_type} model ({architecture})" if architecture else "A tokenizer"
    shape = ", ".join(
        f"{label} {config[key]}"
        for key, label in (
            ("num_hidden_layers", "layers"),
            ("hidden_size", "hidden size"),
            ("vocab_size", "vocab"),
        )
        if key in config
    )
    body = [
        f"# {repo_id.split('/')[-1]}",
        "",
        f"{what} published with tinyformers{': ' + shape if shape else ''}."
        + (
            f" Fine-tuned from [{meta['base_model']}](../{meta['base_model']})."
            if "base_model" in meta
            else ""
        ),
        "",
        "## Use",
        "",
        "```python",
        "from tinyformers import AutoModel, AutoTokenizer",
        "",
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")',
        f'model = AutoModel.from_pretrained("{repo_id}")',
        "```",
        "",
        "The files follow transformers' format, so `transformers` loads them the same way.",
        "",
    ]
    return render_front_matter(meta) + "\n" + "\n".join(body)


def front_matter(text: str) -> tuple[dict, str]:
    """README.md's YAML front matter (the simple subset model cards use: scalars and lists) and the body."""
    if not text.startswith("---"):
        return {}, text
    head, _, body = text[3:].partition("\n---")
    data: dict = {}
    key = None
    for line in head.splitlines():
        if line.startswith("- ") and key is not None:
            data[key] = (data[key] if isinstance(data.get(key), list) else []) + [_unquote(line[2:])]
        elif ":" in line and not line.startswith(" "):
            key, _, value = line.partition(":")
            key = key.strip()
            data[key] = _unquote(value) or []
    return data, body


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"') and value.endswith('"') and len(value) > 1:
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value.strip("'\"")


def first_paragraph(markdown: str) -> str:
    """The first prose paragraph: headings, code blocks, tables, lists and HTML skipped."""
    lines, in_code = [], False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
            continue
        prose = stripped and not in_code and not stripped.startswith(("#", "<", "|", "- ", "* ", "!["))
        if prose:
            lines.append(stripped)
        elif lines:
            break
    return " ".join(lines)


def card_summary(text: str) -> dict:
    """License, language, library, task, tags, number of datasets and a one-paragraph summary of a card."""
    meta, body = front_matter(text)
    card = {
        k: meta[k] for k in ("license", "language", "library_name", "pipeline_tag", "tags") if meta.get(k)
    }
    if meta.get("datasets"):
        card["datasets"] = len(meta["datasets"]) if isinstance(meta["datasets"], list) else 1
    card["summary"] = first_paragraph(body)[:400]
    return card
