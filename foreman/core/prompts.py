"""Loads prompt templates from `prompts/` (package data: `foreman.prompts`)."""

from __future__ import annotations

from functools import lru_cache
from string import Template

from foreman.core.resources import PROMPTS_DIR


@lru_cache(maxsize=64)
def _template(name: str) -> Template:
    return Template((PROMPTS_DIR / f"{name}.md").read_text(encoding="utf-8"))


# Read every template at import: nodes render prompts on the event loop, where file reads
# would block (`langgraph dev` rejects blocking calls in async nodes).
for _path in PROMPTS_DIR.glob("*.md"):
    _template(_path.stem)


def render(name: str, **values: object) -> str:
    """Render `prompts/<name>.md`, substituting `$placeholders` (missing ones stay as is)."""
    return _template(name).safe_substitute({k: str(v) for k, v in values.items()})


def untrusted(text: str) -> str:
    """Neutralise angle brackets in data so it cannot close or open prompt tags."""
    return text.replace("<", "&lt;").replace(">", "&gt;")
