"""Optional web search for the research worker (the web extra).

`Context.web_search` (env `FOREMAN_WEB_SEARCH`) names the provider:

- `searx:http://host:8888`: a SearxNG instance with the JSON format enabled
  (`search.formats: [html, json]` in its `settings.yml`); `/search` is added to a bare host.
  Through langchain-community's `SearxSearchWrapper`: SearxNG has no maintained partner
  package, and that wrapper still works (langchain-community itself is frozen).
- `tavily`: the Tavily API through its maintained partner package, `langchain-tavily`; the
  key comes from `TAVILY_API_KEY`.
- `duckduckgo`: DuckDuckGo through `ddgs` (the maintained successor of duckduckgo-search),
  called directly: there is no partner package, and langchain-community's wrapper only
  forwarded to it.

A wrong spec or a missing key raises `ValueError` when the provider is built, and a missing
package `MissingExtra` (an `ImportError`) naming the web extra; a failing search at run time
raises `WebSearchError`, which the worker records and survives.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from foreman.core.extras import import_extra

SPECS = "searx:URL, tavily or duckduckgo"
TIMEOUT_S = 15.0

# `(query, k)` -> the wrapper's result dicts (`link`/`url`, `title`, `snippet`/`content`).
RawSearch = Callable[[str, int], Awaitable[list[dict[str, Any]]]]

# What a provider raises when the service misbehaves: refused or dropped connections and
# HTTP errors (OSError, and aiohttp's errors for the providers that use it), error statuses
# and bodies that are not JSON (the searx wrapper raises ValueError for both), and JSON
# without the fields the wrapper indexes (KeyError, or TypeError when `results` is missing).
_SERVICE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError)


def _extra(module: str) -> Any:
    """Import a module the web extra installs, or say that the extra is missing."""
    return import_extra(module, "web search", "web")


class WebSearchError(RuntimeError):
    """A web search failed at run time (HTTP error, timeout, malformed answer)."""


@dataclass(frozen=True)
class WebResult:
    """One search result."""

    url: str
    title: str
    snippet: str

    @property
    def id(self) -> str:
        """Stable passage id: the same URL gets the same id in every run."""
        return web_id(self.url)


def web_id(url: str) -> str:
    """Passage id of a web result: `web:` and the first 10 hex digits of sha256(url)."""
    return "web:" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:10]


def is_web_id(passage_id: str) -> bool:
    """Whether a passage id names a web result rather than a corpus passage."""
    return passage_id.startswith("web:")


def _describe(exc: BaseException) -> str:
    if type(exc) is ValueError:  # the searx wrapper's ValueError(message, <unread body>)
        text = " ".join(a for a in exc.args if isinstance(a, str))
    else:
        text = str(exc)
    text = text.strip().rstrip(":").strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text and name != "ValueError" else text or name


@dataclass(frozen=True)
class WebSearch:
    """A configured provider: `await search(query, k)` returns up to `k` results."""

    spec: str
    raw: RawSearch
    errors: tuple[type[BaseException], ...] = _SERVICE_ERRORS

    async def search(self, query: str, k: int, timeout_s: float | None = None) -> list[WebResult]:
        """Search the web; raises `WebSearchError` when the provider fails or times out."""
        timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                rows = await self.raw(query, k)
        except TimeoutError as exc:
            raise WebSearchError(f"{self.spec}: no answer within {timeout_s:g}s") from exc
        except self.errors as exc:
            raise WebSearchError(f"{self.spec}: {_describe(exc)}") from exc
        return _normalise(rows)[:k]


def _normalise(rows: Iterable[dict[str, Any]]) -> list[WebResult]:
    """Results as `WebResult`s, one per URL; drops the wrappers' "no result" placeholders.

    The providers name the fields differently: `link`/`snippet` (searx), `url`/`content`
    (Tavily), `href`/`body` (ddgs).
    """
    out: dict[str, WebResult] = {}
    for row in rows:
        url = str(row.get("link") or row.get("url") or row.get("href") or "").strip()
        if not url or url in out:
            continue
        title = str(row.get("title") or url).strip()
        snippet = str(row.get("snippet") or row.get("content") or row.get("body") or "").strip()
        out[url] = WebResult(url=url, title=title, snippet=snippet)
    return list(out.values())


def _searx(spec: str, arg: str) -> WebSearch:
    aiohttp = _extra("aiohttp")
    searx = _extra("langchain_community.utilities.searx_search")

    host = arg or os.environ.get("SEARX_HOST", "")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"web search searx needs the instance URL, e.g. searx:http://localhost:8888 "
            f"(got {host!r})"
        )
    if parts.path in ("", "/"):  # SearxNG answers JSON on /search; / only redirects there
        host = urlunsplit(parts._replace(path="/search"))
    wrapper = searx.SearxSearchWrapper(searx_host=host)

    async def raw(query: str, k: int) -> list[dict[str, Any]]:
        return await wrapper.aresults(query, num_results=k)

    return WebSearch(spec, raw, errors=(*_SERVICE_ERRORS, aiohttp.ClientError))


def _tavily(spec: str, arg: str) -> WebSearch:
    aiohttp = _extra("aiohttp")
    tavily = _extra("langchain_tavily")

    key = os.environ.get("TAVILY_API_KEY", "")
    if not key:
        raise ValueError("web search tavily needs an API key in TAVILY_API_KEY")

    @lru_cache(maxsize=4)
    def tool(k: int) -> Any:  # the partner tool takes max_results when it is built only
        return tavily.TavilySearch(tavily_api_key=key, max_results=k)

    async def raw(query: str, k: int) -> list[dict[str, Any]]:
        found = await tool(k).ainvoke({"query": query})
        if isinstance(found, str):  # its ToolException, returned as text: no results
            return []
        if "error" in found:  # the tool returns what its HTTP call raised, as a value
            error = found["error"]
            # A bare Exception("Error 401: ...") is an HTTP error status; anything else
            # that is not a service error (a bug) still propagates.
            if type(error) is Exception:
                raise ValueError(str(error)) from error
            raise error
        return list(found.get("results") or [])

    return WebSearch(spec, raw, errors=(*_SERVICE_ERRORS, aiohttp.ClientError))


def _duckduckgo(spec: str, arg: str) -> WebSearch:
    ddgs = _extra("ddgs")
    errors = _extra("ddgs.exceptions")

    async def raw(query: str, k: int) -> list[dict[str, Any]]:
        # ddgs is synchronous only: keep its HTTP calls off the event loop. Results of any
        # date (no timelimit): research wants them all.
        return await asyncio.to_thread(ddgs.DDGS().text, query, max_results=k)

    # ddgs reports rate limits, timeouts and "no results" as DDGSException.
    return WebSearch(spec, raw, errors=(*_SERVICE_ERRORS, errors.DDGSException))


_PROVIDERS: dict[str, Callable[[str, str], WebSearch]] = {
    "searx": _searx,
    "tavily": _tavily,
    "duckduckgo": _duckduckgo,
}


@lru_cache(maxsize=8)
def get_web_search(spec: str) -> WebSearch:
    """The provider named by `spec`, built once per spec.

    Imports and constructs the provider's client, which reads files: call it from a thread
    (`asyncio.to_thread`) in async code.

    Raises:
        ValueError: the spec is unknown, or the provider's key is missing.
        MissingExtra: the web extra (the provider's package) is not installed.
    """
    spec = spec.strip()
    name, _, arg = spec.partition(":")
    factory = _PROVIDERS.get(name.strip().lower())
    if factory is None:
        raise ValueError(f"unknown web search {spec!r} in FOREMAN_WEB_SEARCH: use {SPECS}")
    if arg and factory is not _searx:
        raise ValueError(f"web search {name} takes no argument (got {spec!r}); use {SPECS}")
    return factory(spec, arg.strip())
