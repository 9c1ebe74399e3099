"""Audit trail entries, live progress events, and exports to JSON and Markdown."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langgraph.config import get_config, get_stream_writer

from foreman.core.context import Context, settings_of
from foreman.core.state import AuditEvent, Usage, sum_usage
from foreman.orchestration.trace import trace_to_markdown


def event(kind: str, subtask: str | None = None, **detail: Any) -> AuditEvent:
    """Build one audit entry stamped with the current time."""
    entry: AuditEvent = {"at": time.time(), "kind": kind, "detail": detail}
    if subtask is not None:
        entry["subtask"] = subtask
    return entry


def settings_update(state: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """Record the Context a node runs with in `settings`, when the thread has not yet.

    A run resumed with other settings (`foreman resume --model ...`, another assistant) gets
    an audit entry naming what changed.
    """
    now = settings_of(ctx)
    before = state.get("settings")
    if before == now:
        return {}
    update: dict[str, Any] = {"settings": now}
    if before:
        changed = {k: [before.get(k), v] for k, v in now.items() if before.get(k) != v}
        update["audit"] = [event("settings", changed=changed)]
    return update


def with_settings(state: Mapping[str, Any], ctx: Context, update: dict[str, Any]) -> dict[str, Any]:
    """A node's update plus the `settings` record (see `settings_update`)."""
    recorded = settings_update(state, ctx)
    audit = recorded.pop("audit", []) + list(update.get("audit") or [])
    merged = {**update, **recorded}
    if audit:
        merged["audit"] = audit
    return merged


def emit(kind: str, **payload: Any) -> None:
    """Send a progress event on the `custom` stream (a no-op outside a graph run)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer({"foreman": kind, "at": time.time(), **payload})


def total_usage(state: Mapping[str, Any]) -> Usage:
    """Sum of usage over every model."""
    return sum_usage((state.get("usage") or {}).values())


def to_json(state: Mapping[str, Any]) -> str:
    """The whole audit record of a run as JSON."""
    keys = (
        "request",
        "settings",
        "status",
        "error",
        "plan_version",
        "plan",
        "plan_history",
        "results",
        "clarifications",
        "usage",
        "audit",
        "answer",
        "trace",
        "checkpoints",
    )
    return json.dumps({k: state.get(k) for k in keys if k in state}, indent=2, default=str)


def _when(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def _attempt_lines(att: dict[str, Any], max_chars: int | None) -> list[str]:
    """One attempt: who, on what, cost and time, verdict; then its input and output."""
    u = att["usage"]
    fb = f" — {'; '.join(att['feedback'])}" if att["feedback"] else ""
    lines = [
        f"- attempt {att['n']}: {att['worker']} on {att['model']}, {att['duration_s']:.2f}s, "
        f"{u['input_tokens']}+{u['output_tokens']} tokens, ${u['cost_usd']:.4f}, "
        f"worker said {att['status']}, verdict **{att['verdict']}**{fb}"
    ]
    if att.get("cached") and (origin := att.get("cached_from")):
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(origin["created_at"]))
        lines.append(
            f"  - cache hit: reused the result of `{origin['subtask_id']}` in thread "
            f"`{origin['thread_id']}` ({made}), key {origin['key'][:16]}…; it cost "
            f"${origin['usage']['cost_usd']:.4f} and {origin['duration_s']:.2f}s then"
        )
    inp = att.get("input") or {}
    lines.append(f"  - input: {inp.get('objective', '')}")
    if inp.get("dependencies"):
        lines.append(f"  - dependencies: {', '.join(inp['dependencies'])}")
    if inp.get("feedback"):
        lines.append(f"  - feedback given: {'; '.join(inp['feedback'])}")
    if inp.get("clarification"):
        lines.append(f"  - clarification: {inp['clarification']}")
    if att.get("error"):
        lines.append(f"  - error: {att['error']}")
    if att.get("output") is not None:
        body = json.dumps(att["output"], indent=1, ensure_ascii=False, default=str)
        if max_chars is not None and len(body) > max_chars:
            body = body[:max_chars] + f"\n… ({len(body) - max_chars} more characters)"
        lines += ["", "  ```json", *("  " + line for line in body.splitlines()), "  ```", ""]
    return lines


ANSWERED = {
    "direct": "by the planner itself (no workers, no synthesis call)",
    "decline": "declined by the planner",
    "single_result": "the one result, as it is (no synthesis call)",
    "nothing_found": "nothing usable was found: the answer says what is missing",
    "synthesized": "merged by the synthesizer model",
}


def _decision_lines(events: list[Any]) -> list[str]:
    """How much orchestration the request got, and how its answer was made."""
    decisions = [e for e in events if e["kind"] == "decision"]
    answers = [e for e in events if e["kind"] == "synthesis" and "how" in e["detail"]]
    lines = []
    if decisions:
        d = decisions[-1]["detail"]
        lines.append(
            f"- decision: {d.get('approach')}, {d.get('subtasks')} subtask(s)"
            + (f": {d['rationale']}" if d.get("rationale") else "")
        )
        lines += [f"- merged: {m}" for m in d.get("merged") or []]
        lines += [f"- left out: {p}" for p in d.get("left_out") or []]
    if answers:
        how = answers[-1]["detail"]["how"]
        lines.append(f"- answer: {ANSWERED.get(how, how)}")
    return lines


def to_markdown(state: Mapping[str, Any], max_output_chars: int | None = None) -> str:
    """A readable audit report: plans, subtasks with every attempt, usage, events, answer.

    Every attempt shows its input and output; `max_output_chars` shortens long outputs
    (for a terminal), None keeps them whole (for the export).
    """
    out = [f"# Foreman run: {state.get('request', '')}", ""]
    total = total_usage(state)
    out += [
        f"- status: **{state.get('status', '?')}**",
        f"- tokens: {total['input_tokens']} in / {total['output_tokens']} out "
        f"in {total['calls']} calls; cost ${total['cost_usd']:.4f}",
    ]
    if state.get("error"):
        out.append(f"- error: {state['error']}")
    out += _decision_lines(state.get("audit") or [])
    if state.get("stopped"):
        out.append(f"- stopped: {state['stopped']}")
    if state.get("settings"):
        out += ["", "## Settings", ""]
        out += [f"- {k}: {v}" for k, v in state["settings"].items()]
    for version in state.get("plan_history") or []:
        out += [
            "",
            f"## Plan v{version['version']} ({version['source']}, {_when(version['at'])})",
            "",
        ]
        out.append(f"Goal: {version['plan'].get('goal', '')}")
        out.append("")
        for sub in version["plan"].get("subtasks", []):
            deps = f" ← {', '.join(sub.get('inputs', []))}" if sub.get("inputs") else ""
            group = f" (group {sub['group']})" if sub.get("group") else ""
            out.append(f"- `{sub['id']}` [{sub['worker']}]{deps}{group}: {sub['objective']}")
        for group, k in (version["plan"].get("quorums") or {}).items():
            out.append(f"- quorum: {k} of group {group}")
    out += ["", "## Subtasks", ""]
    for sid, rec in (state.get("results") or {}).items():
        u = rec["usage"]
        out.append(
            f"### `{sid}` — {rec['status']} ({rec['worker']}, plan v{rec['plan_version']}, "
            f"{u['input_tokens']}+{u['output_tokens']} tokens, ${u['cost_usd']:.4f})"
        )
        if rec.get("error"):
            out.append(f"\nError: {rec['error']}")
        if rec.get("question"):
            out.append(f"\nQuestion: {rec['question']}")
        for att in rec["attempts"]:
            out += _attempt_lines(dict(att), max_output_chars)
        out.append("")
    out += ["## Usage by model", ""]
    for model, u in (state.get("usage") or {}).items():
        out.append(
            f"- {model}: {u['calls']} calls, {u['input_tokens']} in / "
            f"{u['output_tokens']} out, ${u['cost_usd']:.4f}"
        )
    out += ["", "## Events", ""]
    for ev in state.get("audit") or []:
        who = f" `{ev['subtask']}`" if ev.get("subtask") else ""
        detail = ", ".join(f"{k}={v}" for k, v in ev["detail"].items() if k != "plan")
        out.append(f"- {_when(ev['at'])} {ev['kind']}{who} {detail}")
    out += ["", "## Answer", "", state.get("answer") or "(none)"]
    if state.get("trace"):
        out += ["", trace_to_markdown(state["trace"])]
    if state.get("checkpoints"):
        out += ["", "## Checkpoints (newest first; fork one with `foreman rerun --checkpoint`)", ""]
        for cp in state["checkpoints"]:
            nxt = ", ".join(cp["next"]) or "end"
            out.append(
                f"- `{cp['checkpoint_id']}` step {cp['step']} ({cp['source']}), "
                f"{cp['at']}, next: {nxt}"
            )
    return "\n".join(out) + "\n"


def callback_handlers() -> list[BaseCallbackHandler]:
    """The callback handlers of the running node's config (tracers, LangGraph's streams)."""
    callbacks = get_config().get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        return list(callbacks.handlers)
    return list(callbacks or [])
