"""Synthesis: one answer from the accepted results, conflicts flagged, within a context budget."""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from foreman.core.context import Context
from foreman.core.models import ANSWER_TAG, ainvoke_text
from foreman.core.prompts import render, untrusted
from foreman.core.schemas import Plan, Subtask
from foreman.core.state import USABLE, RunStatus, State, SubtaskRecord, Usage, empty_usage
from foreman.core.text import clip_sentences, estimate_tokens
from foreman.orchestration import quorum
from foreman.orchestration.audit import emit, event, total_usage
from foreman.orchestration.budget import call_refusal
from foreman.orchestration.conflicts import find_conflicts
from foreman.orchestration.conversation import answer_message
from foreman.orchestration.outputs import DEPENDENCY_FIELDS, load_all
from foreman.orchestration.plan_validation import fingerprints
from foreman.orchestration.records import current_plan, current_records
from foreman.orchestration.trace import coverage, trace_answer
from foreman.workers.base import citations_in
from foreman.workers.tools.corpus import load_corpus

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


NOT_WAITED_FOR = "Not waited for"  # the answer's section on members a quorum left out

# A whole answer wrapped in a code fence, as models sometimes send Markdown.
FENCED = re.compile(r"\A```(?:markdown|md)?[ \t]*\n(?P<body>.*)\n```\Z", re.S | re.I)


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


def _gap_line(sub: Subtask, rec: SubtaskRecord | None) -> str:
    """One line of what the answer lacks, and why."""
    what = f"{sub.objective.rstrip('.')} ({sub.id})"
    if rec is None:
        return f"- {what}: not done (what it needed was not available)"
    why = rec["error"] or rec["status"]
    if rec["status"] == "not_found":
        return f"- {what}: not found: {why}"
    return f"- {what}: {rec['status']}: {why}"


def _unneeded_line(plan: Plan, sub: Subtask, rec: SubtaskRecord | None) -> str:
    """One line on a subtask its group's quorum made unnecessary, and why."""
    what = f"{sub.objective.rstrip('.')} ({sub.id})"
    if rec is not None and rec["status"] == quorum.CANCELLED:
        return f"- {what}: {rec['error'] or 'cancelled'}"
    group = str(sub.group)
    why = f": {rec['error']}" if rec is not None and rec["error"] else ""
    status = rec["status"] if rec is not None else "not run"
    return (
        f"- {what}: {status}{why}; not needed, the quorum of {quorum.needed(plan, group)} "
        f"of group {group} was met without it"
    )


class SynthesisRefused(RuntimeError):
    """The synthesizer's call would pass the run's budget; the message says by how much."""


def _status(
    state: State, plan: Plan, answered: bool, missing: bool, refused: bool = False
) -> RunStatus:
    if state.get("aborted"):
        return "aborted"
    if state.get("status") == "over_budget" or refused:  # stopped, or refused before spending
        return "over_budget"
    if plan.approach == "decline" or not answered:
        return "unanswered"
    return "partial" if missing else "done"


async def synthesize(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write the final answer: the planner's own, the one usable result, or a synthesis.

    A synthesizer model is called only when there is something to merge: a direct answer or
    a decline is the planner's text, a single result that covers the request is the answer
    as it is, and when nothing usable was found the answer says so without a model.
    """
    ctx = runtime.context
    plan = current_plan(state)
    records: dict[str, SubtaskRecord] = {}
    budget_note = ""
    spare: set[str] = set()
    usable: list[tuple[Subtask, SubtaskRecord]] = []
    chosen: list[tuple[Subtask, SubtaskRecord]] = []
    gaps = [f"- {part}: left out of the plan" for part in plan.left_out]
    unneeded: dict[str, str] = {}  # members of groups that met their quorum without them
    if plan.approach == "plan":
        loaded = await load_all(
            current_records(state, fingerprints(plan)), fields=DEPENDENCY_FIELDS
        )
        records = cast(dict[str, SubtaskRecord], loaded)
        replaced = {s.replaces for s in plan.subtasks if s.replaces}
        usable = [
            (s, records[s.id])
            for s in plan.subtasks
            if s.id in records and records[s.id]["status"] in USABLE and records[s.id]["text"]
        ]
        usable = [(s, r) for s, r in usable if s.id not in replaced]  # a fix stands in for it
        chosen = [(s, r) for s, r in usable if s.feeds_answer] or usable
        spare = quorum.spare(plan, {sid: r["status"] for sid, r in records.items()})
        gaps += [
            _gap_line(s, records.get(s.id))
            for s in plan.subtasks
            if s.id not in replaced
            and s.id not in spare
            and (s.id not in records or records[s.id]["status"] not in ("accepted", "supplied"))
        ]
        unneeded = {
            s.id: _unneeded_line(plan, s, records.get(s.id)) for s in plan.subtasks if s.id in spare
        }
    conflicts = find_conflicts([r["output"] for _, r in usable])
    usage = empty_usage()
    condensed = False
    how: str
    if plan.approach != "plan":
        how, body = plan.approach, plan.answer.strip()
    elif not chosen:
        how, body = "nothing_found", _nothing_found(state["request"], gaps)
    elif len(chosen) == 1 and not gaps and not conflicts:
        how, body = "single_result", chosen[0][1]["text"].strip()
    else:
        how = "synthesized"
        try:
            body, usage, condensed = await _synthesized(state, ctx, chosen, conflicts, gaps)
        except SynthesisRefused as refused:
            # the results as the workers wrote them: no call past the budget
            how, budget_note = "assembled", str(refused)
            body = "\n\n".join(f"## {_title(s, r)}\n\n{r['text'].strip()}" for s, r in chosen)
    parts = [body]
    sources = await asyncio.to_thread(
        _sources, body, ctx.corpus_dir, [r["output"] for _, r in usable]
    )
    if sources:
        parts.append(f"## Sources\n\n{sources}")
    if unneeded:  # said by Foreman, not the model: the reader learns what was not awaited
        parts.append(
            f"## {NOT_WAITED_FOR}\n\nInterchangeable sources the answer did not wait for, "
            "once enough of their group were accepted:\n\n" + "\n".join(unneeded.values())
        )
    status = _status(
        state,
        plan,
        answered=bool(chosen) or plan.approach == "direct",
        missing=bool(gaps),
        # a member its group's quorum did without does not make the run over budget
        refused=bool(budget_note)
        or any(r["status"] == "over_budget" and i not in spare for i, r in records.items()),
    )
    if status == "aborted":
        parts.insert(0, "> **Run aborted** by a reviewer: " + "; ".join(state["aborted"]))
    elif status == "over_budget" and budget_note:
        parts.insert(
            0,
            "> **Budget reached**: the results are given as the workers wrote them; "
            f"synthesizing them was refused before spending ({budget_note}).",
        )
    elif status == "over_budget":
        parts.insert(
            0, "> **Budget reached**: some subtasks were not run or not finished; see Gaps."
        )
    elif status == "partial":
        parts.insert(
            0,
            "> **Answered in part**: some of what was asked could not be found or done; see Gaps.",
        )
    if _offline(state, ctx, how):
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
    emit("phase", name="answer", how=how, status=status)
    return {
        "answer": answer,
        "messages": [answer_message(answer, status)],
        "trace": trace,
        "status": status,
        "usage": {ctx.synthesizer_model: usage} if usage["calls"] else {},
        "audit": [
            event(
                "synthesis",
                how=how,
                model_called=how == "synthesized",
                results=[s.id for s, _ in chosen],
                conflicts=len(conflicts),
                not_waited_for=list(unneeded),
                condensed=condensed,
                status=status,
                traced=coverage(trace)["share"],
            )
        ],
    }


def _offline(state: State, ctx: Context, how: str) -> bool:
    """Whether the offline provider wrote this answer (it says so at the top)."""
    used = set(state.get("usage") or {})
    if how == "synthesized":
        used.add(ctx.synthesizer_model)
    return any(spec.split(":")[0] == "offline" for spec in used)


def _nothing_found(request: str, gaps: list[str]) -> str:
    """The answer when no result can be used: what was asked and what could not be found."""
    lines = "\n".join(gaps) or "- no part of it could be done"
    return (
        "# Not answered\n\nNothing that answers this request could be found or done:\n\n"
        f"{lines}\n\nNo answer is given rather than one that is not about what you asked."
    )


async def _synthesized(
    state: State,
    ctx: Context,
    chosen: list[tuple[Subtask, SubtaskRecord]],
    conflicts: list[str],
    gaps: list[str],
) -> tuple[str, Usage, bool]:
    """Ask the synthesizer model to merge the chosen results; (markdown, usage, condensed).

    Raises:
        StructuredOutputError: the model returned no text in `max_synthesis_attempts` calls.
    """
    texts, condensed = condense({s.id: r["text"] for s, r in chosen}, ctx.synthesis_context_tokens)
    results = "\n".join(
        f'<result id="{s.id}" worker="{r["worker"]}" title="{untrusted(_title(s, r))}">\n'
        f"{untrusted(texts[s.id])}\n</result>"
        for s, r in chosen
    )
    emit("phase", name="synthesis", results=len(chosen), condensed=condensed)
    messages = [
        SystemMessage(render("synthesizer")),
        HumanMessage(
            render(
                "synthesizer_request",
                request=untrusted(state["request"]),
                goal=untrusted(str((state.get("plan") or {}).get("goal", ""))),
                results=results,
                conflicts="\n".join(conflicts),
                gaps=untrusted("\n".join(gaps)),
            )
        ),
    ]
    if why := call_refusal(ctx, total_usage(state), ctx.synthesizer_model, messages):
        raise SynthesisRefused(why)
    # Prose, not a structured call: streamed with `stream_mode="messages"`, its chunks
    # tagged `foreman:answer` (README, Streaming the answer).
    text, usage = await ainvoke_text(
        ctx.synthesizer_model,
        messages,
        attempts=ctx.max_synthesis_attempts,
        role="synthesizer",
        config={
            "run_name": "synthesizer · answer",
            "tags": [ANSWER_TAG],
            "metadata": {
                "plan_version": state.get("plan_version", 1),
                "results": [s.id for s, _ in chosen],
            },
        },
    )
    fenced = FENCED.match(text)
    return (fenced.group("body") if fenced else text).strip(), usage, condensed
