"""Web search in the research worker, against a fake SearxNG served on loopback.

langchain-community's `SearxSearchWrapper.aresults` sends `GET <host>?q=...&format=json
&language=en` and reads `url`, `title`, `content`, `engines` and `category` of each result
(missing keys raise), so the fake answers exactly that shape on `/search`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.workers import research
from foreman.workers.base import WorkerInput
from foreman.workers.tools import web_search
from foreman.workers.tools.web_search import get_web_search, web_id
from tests.conftest import scripted_context
from tests.support.ports import free_port

OBJECTIVE = "Research the running costs of residential heat pumps"
RESULTS = [
    {
        "url": "https://energy.example.org/heat-pump-running-costs",
        "title": "Heat pump running costs explained",
        "content": "Residential heat pumps running costs fell by 12% after the 2024 tariff "
        "reform for homes on heat pump tariffs.",
    },
    {
        "url": "https://news.example.com/heat-pumps/bills",
        "title": 'Bills for "heat pump" homes',
        "content": "Owners of residential heat pumps report running costs about 300 euros "
        "a year lower than with gas boilers.",
    },
]
WEB_IDS = [web_id(r["url"]) for r in RESULTS]


@dataclass
class FakeSearx:
    """A SearxNG stand-in: what it was asked, and how it answers (`mode`)."""

    port: int
    mode: str = "ok"  # ok | error (HTTP 500) | garbage (200, not JSON) | hang
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def spec(self) -> str:
        return f"searx:http://127.0.0.1:{self.port}"


@pytest.fixture
def searx() -> Iterator[FakeSearx]:
    fake = FakeSearx(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            fake.requests.append({"path": url.path, **query})
            if fake.mode == "hang":  # answer nothing until the test is over
                fake.release.wait(5)
                return None
            if fake.mode == "error":
                return self._send(500, "text/plain", b"internal error")
            if fake.mode == "garbage":
                return self._send(200, "text/html", b"<html>not json</html>")
            if url.path != "/search" or query.get("format") != ["json"]:
                return self._send(403, "text/plain", b"json format not enabled")
            results = [
                {**r, "engines": ["fake"], "category": "general", "score": 1.0} for r in RESULTS
            ]
            body = {"query": query["q"][0], "results": results}
            self._send(200, "application/json", json.dumps(body).encode())

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


def worker_input(objective: str = OBJECTIVE, feedback: list[str] | None = None) -> WorkerInput:
    return WorkerInput.model_validate(
        {
            "subtask": {"id": "r1", "worker": "research", "objective": objective},
            "feedback": feedback or [],
        }
    )


async def run_research(ctx: Context, inp: WorkerInput | None = None) -> dict[str, Any]:
    out = await research.build().ainvoke(
        {"input": (inp or worker_input()).model_dump(mode="json")}, context=ctx
    )
    return dict(out["output"])


def cited(output: dict[str, Any]) -> set[str]:
    return {c for f in output["findings"] for c in f["citations"]}


def test_web_ids_are_stable_hashes_of_the_url():
    url = RESULTS[0]["url"]
    assert web_id(url) == "web:" + hashlib.sha256(url.encode()).hexdigest()[:10]
    assert re.fullmatch(r"web:[0-9a-f]{10}", web_id(url))
    assert web_id(url) != web_id(RESULTS[1]["url"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bing", "unknown web search 'bing'.*searx:URL, tavily or duckduckgo"),
        ("searx:", "searx needs the instance URL"),
        ("searx:localhost:8888", "searx needs the instance URL"),
        ("tavily", "TAVILY_API_KEY"),
        ("tavily:extra", "takes no argument"),
    ],
)
def test_bad_specs_raise_clear_errors(spec, message, monkeypatch):
    monkeypatch.delenv("SEARX_HOST", raising=False)
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    with pytest.raises(ValueError, match=message):
        get_web_search(spec)


async def test_searx_search_does_not_block_the_event_loop(searx):
    """`langgraph dev` rejects blocking calls in async nodes; blockbuster is its detector."""
    blockbuster = pytest.importorskip("blockbuster")
    provider = await asyncio.to_thread(get_web_search, searx.spec)
    with blockbuster.blockbuster_ctx():
        results = await provider.search("heat pumps", 5)
    assert [r.url for r in results] == [r["url"] for r in RESULTS]
    assert [r.id for r in results] == WEB_IDS


def test_providers_are_built_once_per_spec(monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
    assert get_web_search("tavily") is get_web_search("tavily")
    assert get_web_search("searx:http://127.0.0.1:1") is not get_web_search("tavily")


async def test_web_results_become_passages_that_findings_cite(searx, models):
    ctx = scripted_context(web_search=searx.spec)
    output = await run_research(ctx)
    # what the wrapper asked the server
    assert [r["path"] for r in searx.requests] == ["/search"]
    assert searx.requests[0]["format"] == ["json"]
    assert "heat" in searx.requests[0]["q"][0] and "costs" in searx.requests[0]["q"][0]
    # the model sees web passages like corpus ones, untrusted text neutralised
    prompt = models["worker"].calls_for("ResearchFindings")[0].prompt
    assert re.search(r'<passage id="[a-z0-9-]+#p\d+" title="[^"]*">', prompt)
    for r, pid in zip(RESULTS, WEB_IDS, strict=True):
        title = r["title"].replace('"', "'")
        assert f'<passage id="{pid}" title="{title}" url="{r["url"]}">' in prompt
    # sources keep url and snippet; the offline engine cites the web passages
    web_sources = [s for s in output["sources"] if s["id"].startswith("web:")]
    assert web_sources == [
        {"id": pid, "title": r["title"], "url": r["url"], "text": r["content"]}
        for r, pid in zip(RESULTS, WEB_IDS, strict=True)
    ]
    assert set(WEB_IDS) <= cited(output)
    assert any("#p" in c for c in cited(output))  # the corpus is still searched
    assert "web_error" not in output
    assert research.check_findings(output, worker_input(), ctx) == []


async def test_check_rejects_web_ids_not_retrieved_in_this_attempt(searx):
    ctx = Context(web_search=searx.spec)
    output = await run_research(ctx)
    invented = "web:0123456789"
    elsewhere = web_id("https://elsewhere.example.net/")  # real-looking, never retrieved
    output["findings"].append({"text": "Made up.", "citations": [invented, elsewhere]})
    problems = research.check_findings(output, worker_input(), ctx)
    n = len(output["findings"])
    assert problems == [
        f"finding {n} cites {invented!r}, which is not one of the web results retrieved for "
        "this attempt",
        f"finding {n} cites {elsewhere!r}, which is not one of the web results retrieved for "
        "this attempt",
    ]


def test_breadth_counts_each_url_as_a_document():
    sources = [{"id": pid, "title": r["title"], "url": r["url"], "text": r["content"]}
               for r, pid in zip(RESULTS, WEB_IDS, strict=True)]  # fmt: skip
    findings = [
        {"text": "A.", "citations": [WEB_IDS[0]]},
        {"text": "B.", "citations": [WEB_IDS[1]]},
    ]
    two = {"findings": findings, "sources": sources, "docs_available": 5}
    # web-only citations: the corpus is not even read
    ctx = Context(corpus_dir="/nonexistent")
    assert research.check_findings(two, worker_input(), ctx) == []
    one = {**two, "findings": two["findings"][:1]}
    assert research.check_findings(one, worker_input(), ctx) == [
        f"all findings come from one document ({WEB_IDS[0]}); cite at least two distinct "
        "documents that address the objective"
    ]
    # and a result that does not address the objective does not count
    off = [{**sources[0], "title": "Gardening", "text": "Tomatoes need sun."}, *sources[1:]]
    assert research.check_findings({**two, "sources": off}, worker_input(), ctx) == [
        f"finding 1 cites {WEB_IDS[0]!r}, which does not address the objective"
    ]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error", "Searx API returned an error"),
        ("garbage", "JSONDecodeError: Expecting value"),
        ("down", "ClientConnectorError: Cannot connect to host"),
        ("hang", "no answer within 0.3s"),
    ],
)
async def test_a_failing_web_search_leaves_corpus_findings(searx, mode, reason, monkeypatch):
    monkeypatch.setattr(web_search, "TIMEOUT_S", 0.3)
    searx.mode = mode
    spec = f"searx:http://127.0.0.1:{free_port()}" if mode == "down" else searx.spec
    ctx = Context(web_search=spec)
    output = await run_research(ctx)
    assert output["status"] == "done"
    assert cited(output) and all("#p" in c for c in cited(output))
    assert not any(s["id"].startswith("web:") for s in output["sources"])
    assert output["web_error"].startswith(f"{spec}: {reason}")
    assert research.check_findings(output, worker_input(), ctx) == []


async def test_web_results_alone_answer_when_the_corpus_has_nothing(searx, tmp_path):
    (tmp_path / "doc.md").write_text("# Gardening\n\nTomatoes need sun and water.\n")
    ctx = Context(web_search=searx.spec, corpus_dir=str(tmp_path))
    output = await run_research(ctx)
    assert output["status"] == "done"
    assert cited(output) == set(WEB_IDS)
    assert research.check_findings(output, worker_input(), ctx) == []


async def test_nothing_anywhere_says_so_and_reports_the_web_error(searx, tmp_path):
    (tmp_path / "doc.md").write_text("# Gardening\n\nTomatoes need sun and water.\n")
    searx.mode = "error"
    output = await run_research(Context(web_search=searx.spec, corpus_dir=str(tmp_path)))
    assert output["status"] == "not_found"
    assert "and the web search have nothing that addresses" in output["error"]
    assert "Searx API returned an error" in output["web_error"]


async def test_offline_run_cites_web_results(searx):
    app = build_graph().compile(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": uuid.uuid4().hex}}
    request = "Write a report on residential heat pumps: running costs"
    out = await app.ainvoke({"request": request}, thread, context=Context(web_search=searx.spec))
    assert out["status"] == "done"
    results = app.get_state(thread).values["results"]
    assert all(r["status"] == "accepted" for r in results.values())
    assert set(re.findall(r"\[(web:[0-9a-f]{10})\]", out["answer"])) & set(WEB_IDS)
    # The Sources section lists each cited web result by its URL.
    sources = out["answer"].split("## Sources", 1)[1]
    cited_web = set(re.findall(r"\[(web:[0-9a-f]{10})\]", sources))
    assert cited_web and all(re.search(rf"\[{w}\] .+ — https?://", sources) for w in cited_web)
