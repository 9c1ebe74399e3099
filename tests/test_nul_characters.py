"""NUL characters in a request, a review's feedback or a corpus document, on PostgreSQL.

PostgreSQL cannot store NUL in text or JSON. Before, one NUL in a request made every later
write of the thread fail (the saver keeps short strings inline in the checkpoint's JSON),
while `foreman threads` still called the thread resumable.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command

from foreman import Context, build_graph
from foreman.checkpointers import open_persistence
from foreman.listing import list_threads
from tests.support.persistence import pg_url

pytestmark = pytest.mark.postgres
REQUEST = "Write a report on residential heat pumps: how they work and running costs"


async def test_a_nul_in_the_request_and_the_feedback_does_not_break_the_thread() -> None:
    db = pg_url()
    thread = f"nul-{uuid.uuid4().hex[:8]}"
    config: Any = {"configurable": {"thread_id": thread}}
    ctx = Context(review_plan=True)
    async with open_persistence(db) as (saver, store):
        app = build_graph().compile(checkpointer=saver, store=store)
        await app.ainvoke({"request": REQUEST.replace("heat pumps", "heat\x00 pumps")}, config,
                          context=ctx)  # fmt: skip
        assert (await app.aget_state(config)).next == ("review_plan",)
        feedback = {"action": "reject", "feedback": "drop\x00 running costs"}
        await app.ainvoke(Command(resume=feedback), config, context=ctx)
    # a new process, as a later `foreman resume` would be: everything reads back
    async with open_persistence(db) as (saver, store):
        app = build_graph().compile(checkpointer=saver, store=store)
        state = await app.aget_state(config)
        assert state.values["request"] == REQUEST.replace("heat pumps", "heat pumps")
        assert [r for r in await list_threads(saver, 500) if r.thread_id == thread]
        out = await app.ainvoke(Command(resume={"action": "approve"}), config, context=ctx)
        assert out["status"] == "done"
        objectives = " ".join(s["objective"] for s in state.values["plan"]["subtasks"])
        assert "running costs" not in objectives  # the feedback was read, NUL and all


SOURCE = Path(__file__).resolve().parent.parent / "data" / "corpus"


async def test_a_nul_in_a_corpus_document_does_not_break_the_thread(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    source = SOURCE
    for doc in ("running-costs.md", "how-heat-pumps-work.md"):
        text = (source / doc).read_text()
        (corpus / doc).write_text(text.replace("heat pump", "heat\x00pump"))
    thread = f"nul-{uuid.uuid4().hex[:8]}"
    config: Any = {"configurable": {"thread_id": thread}}
    async with open_persistence(pg_url()) as (saver, store):
        app = build_graph().compile(checkpointer=saver, store=store)
        out = await app.ainvoke(
            {"request": REQUEST}, config, context=Context(corpus_dir=str(corpus))
        )
        assert out["status"] == "done" and "\x00" not in out["answer"]
        assert "heatpump" in out["answer"]  # read, with the NUL dropped
        again = await app.aget_state(config)
        assert again.values["status"] == "done"
