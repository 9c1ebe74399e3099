"""One run, workers from everywhere: MCP over stdio and HTTP, a remote graph, a remote
Foreman and an A2A agent, each declared only in a workers file; the answer uses them all."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from tests.support.a2a_server import TranslatorServer
from tests.support.langgraph_dev import DevServer
from tests.support.mcp_fixtures import SERVER, serve_http
from tests.support.server_fixtures import OFFLINE, serve

GRAPHS = {"capitals": "./tests/support/remote_graphs.py:capitals"}
REQUEST = """Convert 26.2 miles to kilometres with the unit converter.
Count the words in "the quick brown fox jumps" with the word counter.
Ask the capitals agent: what is the capital of France?
Ask the heat expert: How do heat pumps work?
Ask the translator to translate "good morning" into French."""


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A second `langgraph dev`: a small graph and Foreman itself (offline)."""
    workdir = tmp_path_factory.mktemp("everywhere-dev")
    env = {"FOREMAN_DB": f"sqlite:{workdir / 'remote.sqlite'}", "FOREMAN_HTTP_RETRIES": "0"}
    yield from serve(workdir, env, GRAPHS, jobs=4)


def declarations(calls: Path, mcp_url: str, remote: str, agent: str) -> str:
    return f"""
[mcp_servers.units]
transport = "stdio"
command = "{sys.executable}"
args = ["{SERVER}"]
env = {{ MCP_CALL_LOG = "{calls}" }}

[mcp_servers.text_tools]
transport = "streamable_http"
url = "{mcp_url}"

[workers.unit_converter]
kind = "mcp"
capability = "conversion"
description = "converts miles to kilometres with a units server"
servers = ["units"]
tools = ["miles_to_km"]
rules = {{ used_tools = true }}

[workers.word_counter]
kind = "mcp"
capability = "text statistics"
description = "counts the words of a quoted text"
servers = ["text_tools"]
tools = ["word_count"]

[workers.capitals]
kind = "remote_graph"
capability = "geography"
description = "knows the capital cities of a few countries"
url = "{remote}"
graph = "capitals"

[workers.heat_expert]
kind = "remote_graph"
capability = "heat pump research"
description = "a Foreman of its own with documents on heat pumps"
url = "{remote}"
graph = "foreman"
input = "request"

[workers.translator]
kind = "a2a"
capability = "translation"
description = "translates short English phrases into French or Spanish"
url = "{agent}"
"""


@pytest.mark.server
async def test_one_run_uses_mcp_remote_graphs_and_an_a2a_agent(
    remote: DevServer, tmp_path: Path
) -> None:
    calls, http_calls = tmp_path / "stdio-calls.jsonl", tmp_path / "http-calls.jsonl"
    with serve_http(http_calls) as mcp_url, TranslatorServer() as agent:
        path = tmp_path / "workers.toml"
        path.write_text(declarations(calls, mcp_url, remote.url, agent.url))
        app = build_graph().compile(checkpointer=InMemorySaver())
        config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
        ctx = Context(**{**OFFLINE, "workers_file": str(path)})
        out = await app.ainvoke({"request": REQUEST}, config, context=ctx)
        values = (await app.aget_state(config)).values
    assert out["status"] == "done", out.get("answer")
    by_worker = {r["worker"]: r for r in values["results"].values()}
    assert set(by_worker) == {
        "unit_converter",
        "word_counter",
        "capitals",
        "heat_expert",
        "translator",
    }
    assert all(r["status"] == "accepted" for r in by_worker.values())
    answer = out["answer"]
    assert "26.2 miles = 42.16 km" in answer  # MCP over stdio
    assert "5 words" in answer  # MCP over streamable HTTP
    assert "The capital of France is Paris." in answer  # a remote graph
    assert "[how-heat-pumps-work#p" in answer  # a remote Foreman's cited findings
    assert "bonjour" in answer.casefold()  # an A2A agent
    # each remote's work is counted where it ran, and each tool call is in the audit
    models = {r["worker"]: r["attempts"][-1]["model"] for r in by_worker.values()}
    assert models["capitals"] == f"remote:{remote.url}/capitals"
    assert models["translator"] == f"a2a:{agent.url}"
    assert values["usage"][f"remote:{remote.url}/foreman"]["calls"] > 0
    (call,) = by_worker["unit_converter"]["attempts"][-1]["tool_calls"]
    assert call["tool"] == "miles_to_km" and call["status"] == "ok"
    assert calls.read_text().count("miles_to_km") == 1
    assert http_calls.read_text().count("word_count") == 1
