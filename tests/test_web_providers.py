"""Tavily (langchain-tavily) against a fake API on loopback, DuckDuckGo (ddgs) with its client
scripted, and web search without the web extra.

langchain-tavily's `TavilySearch` POSTs the query as JSON to `<api url>/search` with the key
as a bearer token and reads `results` (`url`, `title`, `content`); it returns HTTP errors as
an `{"error": ...}` value and no results as text, which the provider turns into a
`WebSearchError` and an empty list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from foreman.workers.tools import web_search
from foreman.workers.tools.web_search import WebSearchError, get_web_search, web_id

WITHOUT_EXTRAS = Path(__file__).parent / "support" / "without_extras.py"
ROWS = [
    {"url": "https://a.example/heat", "title": "Heat pumps", "content": "They move heat."},
    {"url": "https://b.example/cop", "title": "COP", "content": "Around 3 in winter."},
]


@dataclass
class FakeTavily:
    url: str = ""
    status: int = 200
    results: list[dict[str, Any]] = field(default_factory=lambda: list(ROWS))
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def tavily(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTavily]:
    fake = FakeTavily()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.seen.append({"path": self.path, "auth": self.headers["Authorization"], **body})
            if fake.status != 200:
                self.send_response(fake.status)
                self.end_headers()
                return
            data = json.dumps({"query": body["query"], "results": fake.results}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    import langchain_tavily._utilities as utilities

    monkeypatch.setattr(utilities, "TAVILY_API_URL", fake.url)
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
    get_web_search.cache_clear()
    yield fake
    get_web_search.cache_clear()
    server.shutdown()
    server.server_close()


async def test_tavily_results_through_the_partner_package(tavily: FakeTavily):
    results = await get_web_search("tavily").search("heat pumps", 3)
    assert [(r.url, r.title, r.snippet) for r in results] == [
        (row["url"], row["title"], row["content"]) for row in ROWS
    ]
    assert [r.id for r in results] == [web_id(row["url"]) for row in ROWS]
    (asked,) = tavily.seen
    assert asked["path"] == "/search" and asked["auth"] == "Bearer tvly-test"
    assert asked["query"] == "heat pumps" and asked["max_results"] == 3


async def test_tavily_http_errors_are_search_errors(tavily: FakeTavily):
    tavily.status = 401
    with pytest.raises(WebSearchError, match=r"^tavily: Error 401: Unauthorized"):
        await get_web_search("tavily").search("heat pumps", 3)


async def test_tavily_without_results_is_an_empty_list(tavily: FakeTavily):
    tavily.results = []
    assert await get_web_search("tavily").search("heat pumps", 3) == []


async def test_tavily_unreachable_is_a_search_error(tavily: FakeTavily, monkeypatch):
    import langchain_tavily._utilities as utilities

    monkeypatch.setattr(utilities, "TAVILY_API_URL", "http://127.0.0.1:1")
    with pytest.raises(WebSearchError, match=r"^tavily: ClientConnectorError"):
        await get_web_search("tavily").search("heat pumps", 3)


async def test_duckduckgo_calls_ddgs_off_the_event_loop(monkeypatch):
    from ddgs.ddgs import DDGS  # the class `ddgs.DDGS` stands in for until first used

    loop_thread = threading.get_ident()
    calls: list[tuple[str, int | None, bool]] = []

    def text(self: Any, query: str, max_results: int | None = None, **kw: Any) -> list[Any]:
        calls.append((query, max_results, threading.get_ident() == loop_thread))
        return [{"href": r["url"], "title": r["title"], "body": r["content"]} for r in ROWS]

    monkeypatch.setattr(DDGS, "text", text)
    get_web_search.cache_clear()
    results = await get_web_search("duckduckgo").search("heat pumps", 2)
    assert [(r.url, r.title, r.snippet) for r in results] == [
        (row["url"], row["title"], row["content"]) for row in ROWS
    ]
    assert calls == [("heat pumps", 2, False)]


async def test_duckduckgo_rate_limits_are_search_errors(monkeypatch):
    from ddgs.ddgs import DDGS
    from ddgs.exceptions import RatelimitException

    def text(self: Any, query: str, **kw: Any) -> list[Any]:
        raise RatelimitException("202 Ratelimit")

    monkeypatch.setattr(DDGS, "text", text)
    monkeypatch.setattr(web_search, "TIMEOUT_S", 5.0)
    get_web_search.cache_clear()
    with pytest.raises(WebSearchError, match=r"^duckduckgo: RatelimitException: 202 Ratelimit"):
        await get_web_search("duckduckgo").search("heat pumps", 2)


@pytest.mark.parametrize("spec", ["searx:http://127.0.0.1:8888", "tavily", "duckduckgo"])
def test_without_the_web_extra_each_provider_names_it(spec: str):
    code = (
        "from foreman.core.extras import MissingExtra\n"
        "from foreman.workers.tools.web_search import get_web_search\n"
        "try:\n"
        f"    get_web_search({spec!r})\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, str(WITHOUT_EXTRAS), "web", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TAVILY_API_KEY": "tvly-test"},
    )
    assert done.returncode == 0, done.stderr
    expected = "web search needs the web extra: pip install 'foreman-agents[web]'"
    assert done.stdout.strip() == expected
