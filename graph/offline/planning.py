"""Rule-based planning for the offline provider: outline, research per section, write, sum up."""

from __future__ import annotations

import re
from typing import Any

from graph.text import keywords

DEFAULT_ASPECTS = ["how it works", "costs and benefits", "limitations and risks"]
_LEAD = re.compile(
    r"^(?:please\s+)?(?:write|prepare|produce|draft|create|compile|give me|make|research|"
    r"explain|describe|summari[sz]e|analy[sz]e|compare)?\s*"
    r"(?:me\s+)?(?:a|an|the)?\s*(?:short|brief|detailed|concise|cited)?\s*"
    r"(?:research\s+)?(?:report|overview|briefing|summary|analysis|review|memo)?\s*"
    r"(?:on|about|of|into|for)?\s+",
    re.I,
)
_SPLIT_TAIL = re.compile(r":|\s+(?:covering|including|focusing on|with sections on)\s+", re.I)


def topic_and_aspects(request: str) -> tuple[str, list[str]]:
    """Split a request into its topic and the aspects it asks about."""
    text = " ".join(request.split()).rstrip(".?! ")
    head, *tail = _SPLIT_TAIL.split(text, maxsplit=1)
    topic = _LEAD.sub("", head, count=1).strip() or head.strip()
    aspects: list[str] = []
    if tail:
        parts = re.split(r",|;|\band\b", tail[0])
        aspects = [p.strip(" .") for p in parts if len(p.strip(" .")) > 2]
    return topic, aspects


def _apply_feedback(aspects: list[str], feedback: str) -> list[str]:
    """Apply a reviewer's 'add ...' / 'drop ...' requests to the outline."""
    out = list(aspects)
    for sentence in re.split(r"[.;\n]", feedback):
        s = sentence.strip()
        if m := re.match(r"(?:please\s+)?add(?: a)?(?: section)?(?: on| about)?\s+(.+)", s, re.I):
            out.append(m.group(1).strip())
        elif m := re.match(r"(?:please\s+)?(?:drop|remove|skip|omit)\s+(?:the\s+)?(.+)", s, re.I):
            gone = set(keywords(m.group(1))) - {"section"}
            out = [a for a in out if not gone & set(keywords(a))]
    return out


_SUPPORT_LEAD = re.compile(
    r"^\s*(?:(?:a |the )?customer(?:'s)? (?:message|email|ticket|writes|asks)|support ticket|"
    r"reply to (?:this|the) customer)[^:]*:\s*",
    re.I,
)
_DATA = re.compile(r"\.(?:csv|sqlite|db)\b|\bdata ?set\b", re.I)
SUPPORT_WORKERS = {"classify", "lookup", "policy", "response"}


def support_plan(message: str, sender: str = "") -> dict[str, Any]:
    """Triage the message, look up and check policy in parallel, then draft the reply."""
    quoted = message.strip().strip('"“”')
    if sender:  # the account writing matters: orders are discussed with their owner only
        quoted = f"(from {sender}) {quoted}"
    return {
        "goal": "Answer the customer's message correctly under the shop's policy.",
        "subtasks": [
            {
                "id": "classify",
                "worker": "classify",
                "objective": f"Classify this customer message: {quoted}",
                "expected_output": "Intent, urgency, and the identifiers in the message.",
                "acceptance_criteria": ["identifiers are copied from the message"],
                "feeds_answer": False,
            },
            {
                "id": "lookup",
                "worker": "lookup",
                "objective": f"Look up the account and orders this message is about: {quoted}",
                "inputs": ["classify"],
                "expected_output": "The customer's account and the orders mentioned.",
                "feeds_answer": False,
            },
            {
                "id": "policy",
                "worker": "policy",
                "objective": f"Find the policy rules that apply to this request: {quoted}",
                "inputs": ["classify"],
                "expected_output": "The applicable rules, quoted.",
                "acceptance_criteria": ["every quote is the rule's own words"],
                "feeds_answer": False,
            },
            {
                "id": "response",
                "worker": "response",
                "objective": f"Draft the reply to this customer message: {quoted}",
                "inputs": ["lookup", "policy"],
                "expected_output": "A reply ready to send, applying the rules to the order.",
                "acceptance_criteria": ["uses only looked-up orders and quoted rules"],
            },
        ],
    }


def data_plan(request: str) -> dict[str, Any]:
    """One analysis subtask: the data worker plans its own script."""
    return {
        "goal": "Answer the question from the dataset, with a table and a chart if useful.",
        "subtasks": [
            {
                "id": "analysis",
                "worker": "data",
                "objective": request.strip(),
                "expected_output": "The answer as a printed table, and a PNG plot if asked.",
                "acceptance_criteria": ["the script ran in the sandbox and printed the answer"],
            }
        ],
    }


def plan_from_request(
    request: str, feedback: str, workers: list[str], max_subtasks: int
) -> dict[str, Any]:
    """Route by the kind of request; by default a cited report, researched section by section."""
    lead = _SUPPORT_LEAD.match(request)
    if lead and SUPPORT_WORKERS <= set(workers):
        sender = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", lead.group(0))
        return support_plan(request[lead.end() :], sender.group(0) if sender else "")
    if _DATA.search(request) and "data" in workers:
        return data_plan(request)
    return report_plan(request, feedback, workers, max_subtasks)


def report_plan(
    request: str, feedback: str, workers: list[str], max_subtasks: int
) -> dict[str, Any]:
    """Outline the request, research each section in parallel, write each, then sum up."""
    topic, aspects = topic_and_aspects(request)
    aspects = _apply_feedback(aspects or list(DEFAULT_ASPECTS), feedback)
    research = "research" if "research" in workers else "llm"
    writer = "writer" if "writer" in workers else "llm"
    per_aspect = 2 if writer != research else 1
    aspects = aspects[: max(1, (max_subtasks - 1) // per_aspect)]
    subtasks: list[dict[str, Any]] = []
    sections: list[str] = []
    for i, aspect in enumerate(aspects, start=1):
        subtasks.append(
            {
                "id": f"r{i}",
                "worker": research,
                "objective": f"Find evidence on {aspect} of {topic}.",
                "inputs": [],
                "expected_output": "Findings, each citing the passages it comes from.",
                "acceptance_criteria": [
                    "every finding cites a retrieved passage",
                    "findings draw on at least two documents when the corpus has them",
                ],
                "feeds_answer": per_aspect == 1,
            }
        )
        if per_aspect == 2:
            subtasks.append(
                {
                    "id": f"w{i}",
                    "worker": writer,
                    "objective": f"Write the report section on {aspect} of {topic}.",
                    "inputs": [f"r{i}"],
                    "expected_output": "A short Markdown section with citations kept.",
                    "acceptance_criteria": ["every statement keeps a citation from its inputs"],
                }
            )
        sections.append(subtasks[-1]["id"])
    if len(sections) > 1:
        subtasks.append(
            {
                "id": "summary",
                "worker": writer,
                "objective": f"Write an executive summary of the report on {topic}, "
                "one key point per section.",
                "inputs": sections,
                "expected_output": "One paragraph, one cited point per section.",
                "acceptance_criteria": ["covers every section", "keeps citations"],
            }
        )
    return {"goal": f"A cited report on {topic}: {', '.join(aspects)}.", "subtasks": subtasks}


def revise_plan(
    current: dict[str, Any], failed: dict[str, str], workers: list[str]
) -> dict[str, Any]:
    """Revise only the failed subtasks (id: reason); the reasons are never read as orders."""
    subtasks = []
    for sub in current.get("subtasks", []):
        sub = dict(sub)
        if sub["id"] in failed:
            if sub["worker"] == "research":
                # Broaden: search on the objective's three most specific terms only.
                focus = " ".join(keywords(sub["objective"])[-3:])
                sub["objective"] = f"Find any evidence related to {focus}."
                sub["acceptance_criteria"] = ["every finding cites a retrieved passage"]
            elif sub["worker"] != "llm" and "llm" in workers:
                sub["worker"] = "llm"
            sub["objective"] = sub["objective"].rstrip()
        subtasks.append(sub)
    return {"goal": current.get("goal", ""), "subtasks": subtasks}
