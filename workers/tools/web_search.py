"""Optional web search for the research worker, through langchain-community's search wrappers.

`Context.web_search` (env `FOREMAN_WEB_SEARCH`) names the provider:

- `searx:http://host:8888`: a SearxNG instance with the JSON format enabled
  (`search.formats: [html, json]` in its `settings.yml`); `/search` is added to a bare host.
- `tavily`: the Tavily API; the key comes from `TAVILY_API_KEY`.
- `duckduckgo`: DuckDuckGo, through the `ddgs` package (`pip install ddgs`).

A wrong spec, a missing key or a missing package raises `ValueError` when the provider is
built; a failing search at run time raises `WebSearchError`, which the worker records and
survives.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import SecretStr

SPECS = "searx:URL, tavily or duckduckgo"
TIMEOUT_S = 15.0

# `(query, k)` -> the wrapper's result dicts (`link`/`url`, `title`, `snippet`/`content`).
RawSearch = Callable[[str, int], Awaitable[list[dict[str, Any]]]]

# What a provider raises when the service misbehaves: refused or dropped connections and
# HTTP errors (OSError, aiohttp), error statuses and bodies that are not JSON (the searx
# wrapper raises ValueError for both), and JSON without the fields the wrapper indexes
# (KeyError, or TypeError when `results` is missing).
_SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    aiohttp.ClientError,
    ValueError,
    KeyError,
    TypeError,
)


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
    """Results as `WebResult`s, one per URL; drops the wrappers' "no result" placeholders."""
    out: dict[str, WebResult] = {}
    for row in rows:
        url = str(row.get("link") or row.get("url") or "").strip()
        if not url or url in out:
            continue
        title = str(row.get("title") or url).strip()
        snippet = str(row.get("snippet") or row.get("content") or "").strip()
        out[url] = WebResult(url=url, title=title, snippet=snippet)
    return list(out.values())


def _searx(spec: str, arg: str) -> WebSearch:
    from langchain_community.utilities import SearxSearchWrapper

    host = arg or os.environ.get("SEARX_HOST", "")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"web search searx needs the instance URL, e.g. searx:http://localhost:8888 "
            f"(got {host!r})"
        )
    if parts.path in ("", "/"):  # SearxNG answers JSON on /search; / only redirects there
        host = urlunsplit(parts._replace(path="/search"))
    wrapper = SearxSearchWrapper(searx_host=host)

    async def raw(query: str, k: int) -> list[dict[str, Any]]:
        return await wrapper.aresults(query, num_results=k)

    return WebSearch(spec, raw)


def _tavily(spec: str, arg: str) -> WebSearch:
    from langchain_community.utilities.tavily_search import TavilySearchAPIWrapper

    key = os.environ.get("TAVILY_API_KEY", "")
    if not key:
        raise ValueError("web search tavily needs an API key in TAVILY_API_KEY")
    wrapper = TavilySearchAPIWrapper(tavily_api_key=SecretStr(key))

    async def raw(query: str, k: int) -> list[dict[str, Any]]:
        try:
            return await wrapper.results_async(query, max_results=k)
        except Exception as exc:
            # Its async call raises a bare Exception("Error 401: ...") on HTTP errors: make
            # those service errors; anything more specific (a bug) still propagates.
            if type(exc) is not Exception:
                raise
            raise ValueError(str(exc)) from exc

    return WebSearch(spec, raw)


def _duckduckgo(spec: str, arg: str) -> WebSearch:
    # langchain-community's wrapper imports `ddgs` (the successor of duckduckgo-search).
    if importlib.util.find_spec("ddgs") is None:
        raise ValueError("web search duckduckgo needs the ddgs package: pip install ddgs")
    from ddgs.exceptions import DDGSException
    from langchain_community.utilities import DuckDuckGoSearchAPIWrapper

    # The wrapper defaults to results of the past year; research wants any date.
    wrapper = DuckDuckGoSearchAPIWrapper(time=None)

    async def raw(query: str, k: int) -> list[dict[str, Any]]:
        # The wrapper is synchronous only: keep its HTTP calls off the event loop.
        return await asyncio.to_thread(wrapper.results, query, k)

    # ddgs reports rate limits, timeouts and "no results" as DDGSException.
    return WebSearch(spec, raw, errors=(*_SERVICE_ERRORS, DDGSException))


_PROVIDERS: dict[str, Callable[[str, str], WebSearch]] = {
    "searx": _searx,
    "tavily": _tavily,
    "duckduckgo": _duckduckgo,
}


@lru_cache(maxsize=8)
def get_web_search(spec: str) -> WebSearch:
    """The provider named by `spec`, built once per spec.

    Imports and constructs the langchain-community wrapper, which reads files: call it from
    a thread (`asyncio.to_thread`) in async code.

    Raises:
        ValueError: the spec is unknown, or the provider's key or package is missing.
    """
    spec = spec.strip()
    name, _, arg = spec.partition(":")
    factory = _PROVIDERS.get(name.strip().lower())
    if factory is None:
        raise ValueError(f"unknown web search {spec!r} in FOREMAN_WEB_SEARCH: use {SPECS}")
    if arg and factory is not _searx:
        raise ValueError(f"web search {name} takes no argument (got {spec!r}); use {SPECS}")
    return factory(spec, arg.strip())
