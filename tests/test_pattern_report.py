"""Pattern 1, research and report: an outline, research per section in parallel, one document.

The offline engines plan and write by rule over the real BM25 corpus. Run directly and
through a real ChatOpenAI over loopback HTTP (the scripted models fall back to those engines).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.workers.tools.corpus import load_corpus
from tests.support.scripted import ScriptedChatModel
from tests.support.scripted_http import run_scripted

REQUEST = "Write a report on heat pumps: efficiency, running costs and noise"
CITATION = re.compile(r"\[([a-z0-9-]+#p\d+)\]")


@pytest.mark.parametrize("transport", ["scripted", "http"])
async def test_research_and_report_pattern(
    transport: str,
    models: dict[str, ScriptedChatModel],
    thread: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = build_graph().compile(checkpointer=InMemorySaver())
    values = await run_scripted(app, REQUEST, thread, transport, models, monkeypatch)
    assert values["status"] == "done", values.get("error")

    # Plan shape: independent research per section, a writer per section, a summary.
    plan = {s["id"]: s for s in values["plan"]["subtasks"]}
    research = [s for s in plan.values() if s["worker"] == "research"]
    writers = [s for s in plan.values() if s["worker"] == "writer" and s["id"] != "summary"]
    assert len(research) == len(writers) == 3
    assert all(s["inputs"] == [] for s in research)  # in parallel
    assert sorted(w["inputs"][0] for w in writers) == sorted(r["id"] for r in research)
    assert plan["summary"]["inputs"] == [w["id"] for w in writers]

    results = values["results"]
    # Dependents received their inputs: each writer its research, the summary every section.
    for w in writers:
        assert results[w["id"]]["attempts"][-1]["input"]["dependencies"] == w["inputs"]
    # Verdicts: everything accepted; every accepted research finding cites a passage that
    # exists and that its own search retrieved.
    corpus = load_corpus(Context().corpus_dir)
    for r in research:
        rec = results[r["id"]]
        assert rec["status"] == "accepted" and rec["attempts"][-1]["verdict"] == "accept"
        retrieved = {s["id"] for s in rec["output"]["sources"]}
        for finding in rec["output"]["findings"]:
            assert set(finding["citations"]) <= retrieved <= set(corpus.by_id)
    # The answer: one document with a section per aspect, cited, with its sources listed.
    answer = values["answer"]
    for title in ("Efficiency", "Running costs", "Noise"):
        assert f"## {title}" in answer
    cited = set(CITATION.findall(answer))
    found = {c for r in research for f in results[r["id"]]["output"]["findings"]
             for c in f["citations"]}  # fmt: skip
    assert len(cited) >= 5 and cited <= found
    assert "## Sources" in answer
