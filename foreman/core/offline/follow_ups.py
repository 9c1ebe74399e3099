"""Offline planning of a conversation's follow-up: revise the report plan that was answered.

"Expand the noise section", "add a section on installation", "leave out running costs":
each changes the sections it names and keeps every other subtask exactly as it was, so the
orchestrator reuses their results (a subtask's fingerprint is its spec and its inputs'). A
message that is not such a follow-up gets `None`, and is planned afresh.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from foreman.core.text import keywords

_POLITE = (
    r"^\W*(?:(?:please|now|ok(?:ay)?|thanks|great|and)[,!.]?\s+)*(?:(?:can|could|would) you\s+)?"
)
_EXPAND = re.compile(
    _POLITE + r"(?:expand(?: on)?|elaborate on|go (?:deeper|into more detail) (?:on|into)|"
    r"say more about|tell me more about|give more detail on|more (?:detail )?(?:on|about)|"
    r"deepen)\s+(?P<what>.+)",
    re.I,
)
_ADD = re.compile(_POLITE + r"(?:also\s+)?(?:add|include|cover)\s+(?:also\s+)?(?P<what>.+)", re.I)
_DROP = re.compile(_POLITE + r"(?:drop|remove|leave out|cut|skip|omit)\s+(?P<what>.+)", re.I)
_FILLER = re.compile(
    r"\b(?:the|a|an|another|new|section|sections|part|parts|paragraph|bit|on|about|"
    r"too|as well|also|please|report)\b|[^\w\s-]",
    re.I,
)
_RESEARCH = re.compile(
    r"^Find (?:evidence|more evidence)(?: in depth)? on (?P<aspect>.+) of (?P<topic>.+)\.$"
)
_WRITE = re.compile(
    r"^Write the report section on (?P<aspect>.+) of (?P<topic>.+?)(?:, in depth)?\.$"
)
IN_DEPTH = "in depth"


def _subject(text: str) -> str:
    """What a follow-up names: "the noise section." -> "noise"."""
    return " ".join(_FILLER.sub(" ", text).split())


def _sections(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's sections: aspect, topic and the research/writer subtasks of each."""
    by_id = {s["id"]: s for s in plan.get("subtasks", [])}
    found = []
    for sub in plan.get("subtasks", []):
        m = _RESEARCH.match(sub["objective"])
        if not m:
            continue
        writers = [
            w
            for w in by_id.values()
            if w.get("inputs") == [sub["id"]] and _WRITE.match(w["objective"])
        ]
        found.append(
            {
                "aspect": m.group("aspect"),
                "topic": m.group("topic"),
                "research": sub,
                "writer": writers[0] if writers else None,
            }
        )
    return found


def _matching(sections: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
    wanted = set(keywords(subject))
    scored = [(len(wanted & set(keywords(s["aspect"]))), s) for s in sections]
    best = max((n for n, _ in scored), default=0)
    return [s for n, s in scored if n and n == best]


def _summary(plan: dict[str, Any]) -> dict[str, Any] | None:
    return next((s for s in plan.get("subtasks", []) if s["id"] == "summary"), None)


def _next_index(plan: dict[str, Any]) -> int:
    numbers = [
        int(m.group(1)) for s in plan["subtasks"] if (m := re.fullmatch(r"[rw](\d+)", s["id"]))
    ]
    return max(numbers, default=0) + 1


def _add_section(plan: dict[str, Any], aspect: str, topic: str, like: dict[str, Any]) -> None:
    i = _next_index(plan)
    research = copy.deepcopy(like["research"])
    research.update(id=f"r{i}", objective=f"Find evidence on {aspect} of {topic}.", inputs=[])
    new = [research]
    if like["writer"] is not None:
        writer = copy.deepcopy(like["writer"])
        writer.update(
            id=f"w{i}",
            objective=f"Write the report section on {aspect} of {topic}.",
            inputs=[f"r{i}"],
        )
        new.append(writer)
    summary = _summary(plan)
    at = plan["subtasks"].index(summary) if summary else len(plan["subtasks"])
    plan["subtasks"][at:at] = new
    if summary is not None:
        summary["inputs"] = [*summary["inputs"], new[-1]["id"]]


def follow_up_plan(previous: dict[str, Any], request: str) -> dict[str, Any] | None:
    """The previous report plan revised as `request` asks, or None if it is not a follow-up.

    Example:
        >>> plan = follow_up_plan(report, "Expand the noise section")
        >>> # r2/w2 (noise) now research and write in depth; every other subtask is as it was
    """
    plan = copy.deepcopy(previous)  # edited in place below
    plan.pop("answer", None)
    sections = _sections(plan)
    if not sections:
        return None
    topic = sections[0]["topic"]
    if m := _DROP.match(request):
        chosen = _matching(sections, _subject(m.group("what")))
        if not chosen or len(chosen) == len(sections):
            return None
        gone = {s["research"]["id"] for s in chosen} | {
            s["writer"]["id"] for s in chosen if s["writer"] is not None
        }
        plan["subtasks"] = [s for s in plan["subtasks"] if s["id"] not in gone]
        if summary := _summary(plan):
            summary["inputs"] = [i for i in summary["inputs"] if i not in gone]
        did = f"left out {', '.join(s['aspect'] for s in chosen)}"
    elif m := _EXPAND.match(request):
        subject = _subject(m.group("what"))
        chosen = _matching(sections, subject)
        if not chosen:
            _add_section(plan, subject, topic, sections[0])
            did = f"added {subject} (no section was on it)"
        else:
            for s in chosen:
                s["research"]["objective"] = (
                    f"Find evidence {IN_DEPTH} on {s['aspect']} of {s['topic']}."
                )
                if s["writer"] is not None:
                    s["writer"]["objective"] = (
                        f"Write the report section on {s['aspect']} of {s['topic']}, {IN_DEPTH}."
                    )
            did = f"expanded {', '.join(s['aspect'] for s in chosen)}"
    elif m := _ADD.match(request):
        subject = _subject(m.group("what"))
        if not subject or _matching(sections, subject):
            return None
        _add_section(plan, subject, topic, sections[0])
        did = f"added {subject}"
    else:
        return None
    aspects = [s["aspect"] for s in _sections(plan)]
    plan.update(
        goal=f"A cited report on {topic}: {', '.join(aspects)}.",
        approach="plan",
        rationale=f"A follow-up to the report: {did}; every other subtask is kept as it was, "
        "so its result is reused.",
        left_out=[],
    )
    return plan
