"""Synthesis: one answer from the accepted results, conflicts flagged, within a context budget."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from graph.audit import emit, event
from graph.conflicts import find_conflicts
from graph.context import Context
from graph.models import ainvoke_structured_reasking
from graph.outputs import DEPENDENCY_FIELDS, load_all
from graph.plan_validation import fingerprints
from graph.prompts import render, untrusted
from graph.schemas import Subtask
from graph.state import USABLE, State, SubtaskRecord
from graph.text import clip_sentences, estimate_tokens
from graph.trace import coverage, trace_answer
from graph.validator import current_plan, current_records
from workers.base import citations_in
from workers.corpus import load_corpus

OFFLINE_NOTICE = (
    "> **Offline extractive mode.** Planned and written by rules from what the workers "
    "found ({sources}); no language model wrote this text. Set `FOREMAN_*_MODEL` "
    "(see README) to use an LLM provider."
)
SOURCE_KINDS = {
    "research": "sentences of the documents in `{corpus}`",
    "lookup": "the shop database",
    "policy": "the policy document",
    "data": "scripts run on the dataset",
}


class Report(BaseModel):
    """The final answer."""

    title: str = Field(description="Title of the answer.")
    markdown: str = Field(description="The answer in Markdown, citations kept.")


def condense(texts: dict[str, str], budget: int) -> tuple[dict[str, str], bool]:
    """Clip outputs, each to its share of `budget` tokens, when together they exceed it."""
    sizes = {k: estimate_tokens(v) for k, v in texts.items()}
    total = sum(sizes.values())
    if total <= budget:
        return texts, False
    return {
        k: clip_sentences(v, max(40, budget * sizes[k] // max(total, 1))) for k, v in texts.items()
    }, True


def _title(sub: Subtask, rec: SubtaskRecord) -> str:
    return str((rec.get("output") or {}).get("title") or sub.id)


def _sources(answer: str, corpus_dir: str, outputs: list[dict[str, Any] | None]) -> str:
    """The cited passages: corpus documents by title, web results by URL."""
    web = {s["id"]: s for o in outputs for s in (o or {}).get("sources", []) if "url" in s}
    try:
        corpus = load_corpus(corpus_dir)
        known = set(corpus.by_id)
    except FileNotFoundError:
        corpus, known = None, set()
    cited = sorted(
        c for c in citations_in(outputs) if f"[{c}]" in answer and (c in known or c in web)
    )
    lines = []
    for cid in cited:
        if cid in web:
            lines.append(f"- [{cid}] {web[cid].get('title', '')} — {web[cid]['url']}")
        elif corpus is not None:
            p = corpus.by_id[cid]
            origin = f" — {p.source}" if p.source else ""
            lines.append(f"- [{cid}] {p.title}{origin}")
    return "\n".join(lines)


async def synthesize(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Merge the accepted results into the final answer."""
    ctx = runtime.context
    plan = current_plan(state)
    records = current_records(state, fingerprints(plan))
    loaded = await load_all(records, fields=DEPENDENCY_FIELDS)
    records = cast(dict[str, SubtaskRecord], loaded)
    usable = [
        (s, records[s.id])
        for s in plan.subtasks
        if s.id in records and records[s.id]["status"] in USABLE and records[s.id]["text"]
    ]
    # A fix's result stands in for the result it replaces.
    replaced = {s.replaces for s, _ in usable if s.replaces}
    usable = [(s, r) for s, r in usable if s.id not in replaced]
    chosen = [(s, r) for s, r in usable if s.feeds_answer] or usable
    gaps = [
        f"- {s.id} ({s.objective}): {records[s.id]['status'] if s.id in records else 'not run'}"
        f"{' — ' + (records[s.id]['error'] or '') if s.id in records else ''}"
        for s in plan.subtasks
        if s.id not in records or records[s.id]["status"] not in ("accepted", "supplied")
    ]
    texts, condensed = condense({s.id: r["text"] for s, r in chosen}, ctx.synthesis_context_tokens)
    conflicts = find_conflicts([r["output"] for _, r in usable])
    results = "\n".join(
        f'<result id="{s.id}" worker="{r["worker"]}" title="{untrusted(_title(s, r))}">\n'
        f"{untrusted(texts[s.id])}\n</result>"
        for s, r in chosen
    )
    emit("phase", name="synthesis", results=len(chosen), condensed=condensed)
    report, usage = await ainvoke_structured_reasking(
        ctx.synthesizer_model,
        Report,
        [
            SystemMessage(render("synthesizer")),
            HumanMessage(
                render(
                    "synthesizer_request",
                    request=untrusted(state["request"]),
                    results=results,
                    conflicts="\n".join(conflicts),
                    gaps="\n".join(gaps),
                )
            ),
        ],
        attempts=ctx.max_synthesis_attempts,
        method=ctx.structured_output_method,
        role="synthesizer",
    )
    parts = [report.markdown.strip()]
    sources = await asyncio.to_thread(
        _sources, report.markdown, ctx.corpus_dir, [r["output"] for _, r in usable]
    )
    if sources:
        parts.append(f"## Sources\n\n{sources}")
    status = "done"
    if state.get("aborted"):
        status = "aborted"
        parts.insert(0, "> **Run aborted** by a reviewer: " + "; ".join(state["aborted"]))
    elif state.get("status") == "over_budget":
        status = "over_budget"
        parts.insert(0, "> **Budget reached**: some subtasks were not run; see Gaps.")
    if ctx.synthesizer_model.split(":")[0] == "offline":
        kinds = {r["worker"] for r in records.values()}
        found = [v.format(corpus=ctx.corpus_dir) for k, v in SOURCE_KINDS.items() if k in kinds]
        parts.insert(0, OFFLINE_NOTICE.format(sources="; ".join(found) or "no sources"))
    answer = "\n\n".join(p for p in parts if p)
    trace = await asyncio.to_thread(
        trace_answer,
        answer,
        {s.id: r for s, r in usable},
        [s.model_dump() for s in plan.subtasks],
        ctx.corpus_dir,
    )
    return {
        "answer": answer,
        "trace": trace,
        "status": status,
        "usage": {ctx.synthesizer_model: usage},
        "audit": [
            event(
                "synthesis",
                results=[s.id for s, _ in chosen],
                conflicts=len(conflicts),
                condensed=condensed,
                status=status,
                traced=coverage(trace)["share"],
            )
        ],
    }
