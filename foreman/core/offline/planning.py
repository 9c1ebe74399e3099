"""Rule-based planning for the offline provider: outline, research per section, write, sum up."""

from __future__ import annotations

import re
from typing import Any

from foreman.core.text import keywords

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


# A customer writing about their own order: first person, and the things shops are asked.
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|my|me|we|our)\b", re.I)
_SHOP = re.compile(
    r"\border\b|\b[A-Z]\d{5}\b|refund|\breturn|deliver|arriv|parcel|package|shipping|"
    r"charged|invoice|cancel|broken|damaged|replacement|money back",
    re.I,
)
_CODE = re.compile(
    r"\b(?:write|implement|build|create|code|generate|program|develop)\b.{0,80}?"
    r"\b(?:function|class|script|program|module|library|code|api|cli|toolkit|unit tests?|"
    r"python|javascript|typescript|rust|sql query)\b|```",
    re.I | re.S,
)
_QUESTION = re.compile(
    r"^\s*(?:what|who|whom|when|where|why|how|which|is|are|was|were|do|does|did|can|could|"
    r"should|will|would)\b|\?\s*$",
    re.I,
)
_REPORT = re.compile(r"\b(?:report|overview|briefing|compare|comparison|sections?|memo)\b", re.I)
KNOWN_SHARE = 0.5  # of a request's content words the documents must use, to be on their topic


def looks_like_support(request: str) -> bool:
    """A customer's own message about an order or an account, with or without a prefix."""
    return bool(_FIRST_PERSON.search(request) and _SHOP.search(request))


def decline(request: str, why: str) -> dict[str, Any]:
    """Offline mode cannot answer this: say so, and what would help."""
    return {
        "goal": " ".join(request.split())[:200],
        "approach": "decline",
        "rationale": why,
        "answer": f"Offline mode cannot answer this: {why}. Configure a model to go beyond "
        "that (e.g. `--model planner=openai:gpt-4.1 --model worker=openai:gpt-4.1-mini`, or "
        "FOREMAN_PLANNER_MODEL and FOREMAN_WORKER_MODEL; README, Providers).",
        "subtasks": [],
    }


def known_share(request: str, vocabulary: set[str]) -> float:
    """The share of the request's content words that the documents use."""
    terms = [t for t in keywords(request) if any(c.isalpha() for c in t)]
    if not terms:
        return 0.0
    return sum(t in vocabulary for t in terms) / len(terms)


def question_plan(question: str) -> dict[str, Any]:
    """One search of the documents; its findings are the answer (no writer, no synthesis)."""
    text = " ".join(question.split())
    return {
        "goal": text,
        "approach": "plan",
        "rationale": "One question the documents cover: one research subtask, whose cited "
        "findings answer it.",
        "subtasks": [
            {
                "id": "answer",
                "worker": "research",
                "objective": text,
                "expected_output": "The sentences of the documents that answer the question.",
                "acceptance_criteria": ["every finding cites a passage that addresses it"],
            }
        ],
    }


BUILT_IN = frozenset({"research", "writer", "llm", "code", "reviewer", "data"} | SUPPORT_WORKERS)
ROUTE_SHARED = 2  # content words a part must share with a worker's description (or its name)


def _parts(request: str) -> list[str]:
    """A request's parts: its lines, list items and sentences."""
    parts = []
    for line in re.split(r"\n+|;\s+", request):
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line)
        parts += [p.strip() for p in re.split(r"(?<=[.?!])\s+(?=[A-Z0-9])", line) if p.strip()]
    return parts


def _route(part: str, declared: dict[str, str]) -> str | None:
    """The declared worker a part of the request is for: named, or sharing the most words."""
    said = part.casefold()
    named = [n for n in declared if re.sub(r"[_-]", " ", n).casefold() in said]
    if named:
        return named[0]
    words = set(keywords(part))
    best = max(
        declared,
        key=lambda n: len(words & set(keywords(f"{re.sub(r'[_-]', ' ', n)} {declared[n]}"))),
    )
    shared = words & set(keywords(f"{re.sub(r'[_-]', ' ', best)} {declared[best]}"))
    return best if len(shared) >= ROUTE_SHARED else None


def addressed(part: str, worker: str) -> str:
    """What a part of the request asks `worker`, without the words that address it.

    "Ask the heat expert: How do heat pumps work?" asks the heat expert "How do heat pumps
    work?"; "Convert 3 miles with the unit converter." asks it "Convert 3 miles.".
    """
    name = r"[\s_-]+".join(re.escape(w) for w in re.split(r"[_-]", worker))
    who = rf"(?:the\s+)?{name}(?:\s+(?:agent|worker|server))?"
    text = re.sub(rf"^(?:please\s+)?(?:ask|tell|have|get)\s+{who}(?:\s*[:,]\s*|\s+to\s+|\s+)",
                  "", part, count=1, flags=re.I)  # fmt: skip
    text = re.sub(rf"\s+(?:with|using|via|through|by)\s+{who}(?=[.?!]?$)", "", text, flags=re.I)
    return text[:1].upper() + text[1:] if text.strip() else part


def routed_plan(
    request: str, declared: dict[str, str], workers: list[str], max_subtasks: int
) -> dict[str, Any] | None:
    """One subtask per part of the request a declared worker is for; None when none is.

    Parts no declared worker is for go to research, when they ask something of it.
    """
    subtasks: list[dict[str, Any]] = []
    routed = []
    for part in _parts(request):
        worker = _route(part, declared) if declared else None
        if worker is not None:
            part = addressed(part, worker)
        if worker is None:
            if "research" not in workers or len(keywords(part)) < 3:
                continue
            worker = "research"
        else:
            routed.append(worker)
        subtasks.append(
            {
                "id": f"s{len(subtasks) + 1}",
                "worker": worker,
                "objective": part,
                "expected_output": "What the part of the request asks for.",
                "acceptance_criteria": ["answers this part of the request"],
            }
        )
    if not routed:
        return None
    return {
        "goal": " ".join(request.split())[:300],
        "approach": "plan",
        "rationale": "Each part of the request goes to the declared worker it names or whose "
        f"description it shares words with ({', '.join(dict.fromkeys(routed))}); the rest "
        "is looked up in the documents.",
        "subtasks": subtasks[:max_subtasks],
    }


def plan_from_request(
    request: str,
    feedback: str,
    workers: list[str],
    max_subtasks: int,
    vocabulary: set[str] | None = None,
    sender: bool = False,
    descriptions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Decide how to handle a request by its kind, declining what offline mode cannot answer.

    The kinds: a customer's message, a dataset question, code (declined), a short question
    (one search), a report; anything the documents have nothing on is declined.

    `vocabulary` holds the stemmed words the research documents use (None: unknown, no
    check); `sender` says whether a verified sender came with the request. Workers beyond
    the built-in ones (`descriptions`: a workers file's) take the parts of the request
    they are for, first.
    """
    declared = {n: d for n, d in (descriptions or {}).items() if n not in BUILT_IN}
    if declared and (routed := routed_plan(request, declared, workers, max_subtasks)):
        return routed
    lead = _SUPPORT_LEAD.match(request)
    if SUPPORT_WORKERS <= set(workers) and (lead or sender or looks_like_support(request)):
        found = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", lead.group(0)) if lead else None
        return support_plan(
            request[lead.end() :] if lead else request, found.group(0) if found else ""
        )
    if _DATA.search(request) and "data" in workers:
        return data_plan(request)
    if _CODE.search(request):
        return decline(request, "it does not write code (the code worker needs a model)")
    if vocabulary is not None and known_share(request, vocabulary) < KNOWN_SHARE:
        return decline(
            request,
            "it answers only from its documents and data, and the documents have nothing on this",
        )
    if _QUESTION.search(request) and not _REPORT.search(request) and len(request.split()) <= 30:
        if "research" in workers:
            return question_plan(request)
    return report_plan(request, feedback, workers, max_subtasks)


def report_plan(
    request: str, feedback: str, workers: list[str], max_subtasks: int
) -> dict[str, Any]:
    """Outline the request, research each section in parallel, write each, then sum up."""
    topic, aspects = topic_and_aspects(request)
    # Aspects the request names are what each section must be about, the topic is context;
    # the default ones are generic lenses, so there the topic itself is what counts.
    context = topic if aspects else ""
    aspects = _apply_feedback(aspects or list(DEFAULT_ASPECTS), feedback)
    research = "research" if "research" in workers else "llm"
    writer = "writer" if "writer" in workers else "llm"
    per_aspect = 2 if writer != research else 1
    room = (max_subtasks - 1) // per_aspect  # one subtask is the summary
    if room < 1:  # too few subtasks for sections: one search covering every aspect
        per_aspect, room = 1, 1
    aspects = merge_aspects(aspects, room)
    subtasks: list[dict[str, Any]] = []
    sections: list[str] = []
    for i, aspect in enumerate(aspects, start=1):
        subtasks.append(
            {
                "id": f"r{i}",
                "worker": research,
                "objective": f"Find evidence on {aspect} of {topic}.",
                "context": context,
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
                    "context": context,
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
                "context": topic,
                "inputs": sections,
                "expected_output": "One paragraph, one cited point per section.",
                "acceptance_criteria": ["covers every section", "keeps citations"],
            }
        )
    return {
        "goal": f"A cited report on {topic}: {', '.join(aspects)}.",
        "approach": "plan",
        "rationale": f"{len(aspects)} aspect(s) asked for: each researched in parallel"
        + (", then written up as a section" if per_aspect == 2 else "")
        + (", and a summary across the sections." if len(sections) > 1 else "."),
        "subtasks": subtasks,
    }


def merge_aspects(aspects: list[str], groups: int) -> list[str]:
    """At most `groups` aspects, neighbours merged ("a, b and c") rather than any dropped."""
    if len(aspects) <= groups:
        return aspects
    size = -(-len(aspects) // groups)  # ceiling division
    merged = []
    for i in range(0, len(aspects), size):
        part = aspects[i : i + size]
        merged.append(", ".join(part[:-1]) + f" and {part[-1]}" if len(part) > 1 else part[0])
    return merged


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
            elif sub["worker"] in BUILT_IN and sub["worker"] != "llm" and "llm" in workers:
                # a declared worker is kept: offline, `llm` answers only from inputs, and
                # its failure would hide the declared worker's own reason
                sub["worker"] = "llm"
            sub["objective"] = sub["objective"].rstrip()
        subtasks.append(sub)
    return {"goal": current.get("goal", ""), "subtasks": subtasks}
