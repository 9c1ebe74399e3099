"""Optional parts of Foreman, the extra that installs each, and what is said when one is missing.

`pip install foreman-agents` installs what the offline examples need (SQLite, the BM25
corpus of `.md`/`.txt` files, the CLI). The rest comes with an extra (`pyproject.toml`):

- `postgres`: a `postgresql://` database (checkpointer, store, thread locks).
- `data`: pandas and matplotlib, which the data worker's scripts import in the sandbox.
- `web`: web search for the research worker (Tavily, DuckDuckGo, SearxNG).
- `docs`: PDF and HTML files in a corpus, read through langchain-community's loaders.
- `mcp`: `kind = "mcp"` workers over MCP servers' tools (langchain-mcp-adapters).
- `a2a`: `kind = "a2a"` workers, remote agents speaking the A2A protocol (a2a-sdk).

Code that uses one imports it where it is used, through `require` or `import_extra`, so a
missing extra is one clear sentence naming it rather than a `ModuleNotFoundError` from deep
inside a library.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from types import ModuleType

DIST = "foreman-agents"

# What each extra brings that Foreman imports (`require` checks these).
MODULES: dict[str, tuple[str, ...]] = {
    "postgres": (
        "psycopg",
        "psycopg_pool",
        "langgraph.checkpoint.postgres",
        "langgraph.store.postgres",
    ),
    "data": ("pandas", "matplotlib"),
    "web": ("aiohttp", "langchain_tavily", "ddgs", "langchain_community"),
    "docs": ("langchain_community", "pypdf", "bs4", "markdownify"),
    "mcp": ("mcp", "langchain_mcp_adapters"),
    "a2a": ("a2a",),
}


class MissingExtra(ImportError):
    """An optional part of Foreman was used without the extra that installs it."""

    def __init__(self, what: str, extra: str) -> None:
        """Say what needs which extra, and the command that installs it.

        Args:
            what: The feature, as the sentence's subject ("PostgreSQL", "PDF files").
            extra: The name of the extra in `pyproject.toml`.
        """
        self.extra = extra
        super().__init__(f"{what} needs the {extra} extra: pip install '{DIST}[{extra}]'")


def has_module(name: str) -> bool:
    """Whether `name` can be imported, without importing it (its parents are imported).

    A module blocked in `sys.modules` (set to None) or by an import hook counts as missing.
    """
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require(what: str, extra: str, modules: Sequence[str] | None = None) -> None:
    """Raise `MissingExtra` unless every module of `extra` (or of `modules`) can be imported.

    Args:
        what: The feature, as the message's subject.
        extra: The extra that installs it.
        modules: The modules to check; default: all that `extra` brings (`MODULES`).

    Raises:
        MissingExtra: one of them is not installed.
    """
    needed = MODULES[extra] if modules is None else modules
    if not all(has_module(name) for name in needed):
        raise MissingExtra(what, extra)


def require_postgres() -> None:
    """Refuse a PostgreSQL database when the postgres extra is not installed.

    Raises:
        MissingExtra: psycopg or LangGraph's PostgreSQL checkpointer is not installed.
    """
    require("PostgreSQL", "postgres")


def import_extra(module: str, what: str, extra: str) -> ModuleType:
    """Import `module`, which `extra` installs.

    Raises:
        MissingExtra: the module, or a package it imports, is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise MissingExtra(what, extra) from exc
