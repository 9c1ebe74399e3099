"""Offline engines: rule-based planning and extractive writing from the prompt's data.

Each engine takes the system and human text of a structured-output call and returns the
arguments of the requested schema. They read the tagged sections Foreman's prompts contain
(`<request>`, `<passages>`, `<inputs>`, ...), so they see exactly what a real model sees.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from foreman.core.offline.follow_ups import IN_DEPTH, follow_up_plan
from foreman.core.offline.planning import plan_from_request, revise_plan
from foreman.core.text import keywords, overlap, query_keywords, sentences, tag, tag_blocks

SENTENCE_RELEVANCE = 0.2
TITLE_WEIGHT = 0.6
_CITED = re.compile(r"(?P<text>[^\[\]\n]+?)\s*(?P<cites>(?:\[[^\[\]\s]+\]\s*)+)")


def plan(system: str, human: str) -> dict[str, Any]:
    """Plan (or revise a plan) by rules from the request and the worker list."""
    listed = re.findall(r"^\s*- ([A-Za-z_][\w-]*): (.*)$", system, re.M)
    workers = [name for name, _ in listed]
    limit = re.search(r"At most (\d+) subtasks", system)
    max_subtasks = int(limit.group(1)) if limit else 12
    current = tag(human, "current_plan")
    if current and current.strip() not in ("", "none"):
        failed = {a.get("subtask", ""): body for a, body in tag_blocks(human, "failure")}
        if failed:
            return revise_plan(json.loads(current), failed, workers)
        # the plan that answered the turn before: a follow-up revises it
        if revised := follow_up_plan(json.loads(current), tag(human, "request")):
            return revised
    documents = tag_blocks(tag(human, "sources"), "document")
    vocabulary = (
        {t for attrs, words in documents for t in keywords(f"{attrs.get('title', '')} {words}")}
        if "<sources>" in human
        else None  # a prompt without the block: nothing to check against
    )
    return plan_from_request(
        tag(human, "request"),
        tag(human, "feedback"),
        workers,
        max_subtasks,
        vocabulary=vocabulary,
        sender=tag(human, "verified_sender") == "yes",
        descriptions=dict(listed),
    )


def _weighted(terms: list[str], texts: list[str]) -> Callable[[str], float]:
    """Score texts by the query terms they contain, rare terms (across `texts`) weighing most."""
    stems = [set(keywords(t)) for t in texts]
    weight = {t: math.log(1 + len(texts) / (1 + sum(t in s for s in stems))) for t in terms}
    total = sum(weight.values()) or 1.0

    def score(text: str) -> float:
        present = set(keywords(text))
        return sum(w for t, w in weight.items() if t in present) / total

    return score


def research_findings(system: str, human: str) -> dict[str, Any]:
    """Extract the sentences of the retrieved passages that address the objective."""
    passages = tag_blocks(tag(human, "passages"), "passage")
    texts = [s for _, body in passages for s in sentences(body)]
    # what a sentence must address: the objective (less the words of its context: a section
    # on noise is about noise, whatever the report's topic), or what a person clarified
    context = set(keywords(tag(human, "context")))
    objective = tag(human, "objective").replace(IN_DEPTH, "")
    aims = [query_keywords(objective), query_keywords(tag(human, "clarification"))]
    aims[0] = [t for t in aims[0] if t not in context] or aims[0]
    scorers = [_weighted(terms, texts) for terms in aims if terms]

    def score(sentence: str) -> float:
        return max((s(sentence) for s in scorers), default=0.0)

    ranked: list[list[tuple[float, str, str]]] = []
    all_scores = [score(s) for _, body in passages for s in sentences(body)]
    # A sentence is kept when it addresses the objective nearly as well as the best one does:
    # a passage can be on topic while most of its sentences are about something else. Asked
    # for more documents, each relevant passage's best sentence that addresses it at all.
    breadth = "distinct documents" in tag(human, "feedback")
    # "in depth" (a follow-up asked to expand): every relevant sentence, up to twice as many
    deep = IN_DEPTH in tag(human, "objective")
    per_passage, most = (3, 12) if deep else (2, 6)
    bar = (
        SENTENCE_RELEVANCE
        if breadth or deep
        else max(SENTENCE_RELEVANCE, 0.5 * max(all_scores, default=0.0))
    )
    for attrs, body in passages:
        # A document whose title is the objective ("How heat pumps work") is about it in
        # every sentence, whether or not the sentence repeats the title's words.
        titled = TITLE_WEIGHT * score(attrs.get("title", ""))
        scored = [(max(score(s), titled), s, attrs["id"]) for s in sentences(body)]
        ranked.append(sorted((x for x in scored if x[0] >= bar), key=lambda x: -x[0])[:per_passage])
    claims: list[dict[str, Any]] = []
    for depth in range(per_passage):  # best sentence of every passage first, then the next
        for best in ranked:
            if depth < len(best) and len(claims) < most:
                _, text, pid = best[depth]
                claims.append({"text": text, "citations": [pid]})
    if not claims:
        objective = tag(human, "objective")
        return {
            "status": "not_found",
            "error": f"no sentence of the passages retrieved addresses “{objective}”",
            "findings": [],
            "summary": "",
        }
    docs = {c["citations"][0].split("#")[0] for c in claims}
    return {
        "status": "done",
        "findings": claims,
        "summary": f"{len(claims)} findings from {len(docs)} document(s).",
    }


def _cited_statements(markdown: str) -> list[tuple[str, list[str]]]:
    out = []
    for line in markdown.splitlines():
        for m in _CITED.finditer(line.lstrip("-*> ").strip()):
            text = m.group("text").strip(" .;")
            cites = re.findall(r"\[([^\[\]\s]+)\]", m.group("cites"))
            if len(text.split()) >= 4:
                out.append((text, cites))
    return out


def _title_from_objective(objective: str) -> str:
    m = re.search(r"section on (.+?)(?: of | for |\.|$)", objective, re.I)
    if m:
        return m.group(1).strip().capitalize()
    if "summary" in objective.lower():
        return "Summary"
    return " ".join(objective.split()[:6]).rstrip(".").capitalize()


def section(system: str, human: str) -> dict[str, Any]:
    """Assemble a report section from the cited statements of the inputs."""
    objective = tag(human, "objective")
    inputs = tag_blocks(tag(human, "inputs"), "input")
    is_summary = "summary" in objective.lower()
    context = set(keywords(tag(human, "context")))
    aim = objective.replace(IN_DEPTH, "")
    terms = [t for t in keywords(aim) if t not in context] or keywords(aim)
    chosen: list[tuple[str, list[str]]] = []
    for _, body in inputs:
        statements = _cited_statements(body)
        if is_summary:  # a key point per section, in brief: not a copy of its sentence
            chosen.extend((_key_point(t), c) for t, c in statements[:1])
        else:  # upstream research is already vetted and in relevance order; keep what
            # names the aspect, else its best statements
            named = [st for st in statements if overlap(terms, st[0]) > 0]
            if IN_DEPTH in objective:  # expanded: the rest of the vetted research as well
                chosen.extend((named + [st for st in statements if st not in named])[:12])
            else:
                chosen.extend((named or statements)[:6])
    unique = list({t: (t, c) for t, c in reversed(chosen)}.values())[::-1]
    if not unique:
        return {
            "status": "failed",
            "error": "the inputs contain no cited statements to write from",
            "title": _title_from_objective(objective),
            "markdown": "",
            "claims": [],
        }
    paragraphs = [unique[i : i + 3] for i in range(0, len(unique), 3)]
    body = "\n\n".join(
        " ".join(
            f"{t}{'' if t.endswith('…') else '.'} " + " ".join(f"[{c}]" for c in cites)
            for t, cites in para
        ).strip()
        for para in paragraphs
    )
    return {
        "status": "done",
        "title": _title_from_objective(objective),
        "markdown": body,
        "claims": [{"text": t, "citations": c} for t, c in unique],
    }


_CLAUSE_BREAK = re.compile(r",? (?:which|so|but|because|while|although|whereas|and so) |; | — ")
KEY_POINT_WORDS = 16


def _key_point(sentence: str) -> str:
    """The gist of a sentence for a summary: its main clause, at most KEY_POINT_WORDS words."""
    words = sentence.split()
    for m in _CLAUSE_BREAK.finditer(sentence):
        head = sentence[: m.start()].split()
        if 6 <= len(head) < len(words):
            words = head
            break
    short = " ".join(words[:KEY_POINT_WORDS]).rstrip(",;:")
    return short + ("…" if len(words) > KEY_POINT_WORDS else "")


def answer(system: str, human: str) -> dict[str, Any]:
    """Answer from the inputs only; without inputs the offline mode declines honestly."""
    objective = tag(human, "objective") or human
    inputs = tag_blocks(tag(human, "inputs"), "input")
    terms = keywords(objective)
    statements = [s for _, body in inputs for s in _cited_statements(body)]
    if not statements:
        plain = [s for _, body in inputs for s in sentences(body)]
        statements = [(s, []) for s in plain]
    ranked = sorted(statements, key=lambda s: -overlap(terms, s[0]))[:5]
    if not ranked:
        return {
            "status": "failed",
            "error": "offline mode answers only from documents and upstream results, and this "
            "subtask has none; configure an LLM provider for free-form subtasks",
            "text": "",
        }
    text = " ".join(f"{t}." + "".join(f" [{c}]" for c in cites) for t, cites in ranked)
    return {"status": "done", "text": text}


def report(system: str, human: str) -> dict[str, Any]:
    """Assemble the final report from the results, summary first, conflicts flagged."""
    from foreman.core.offline.planning import topic_and_aspects

    # the plan's goal names the report's topic; a follow-up's request ("expand ...") does not
    goal = re.match(r"A cited report on (.+?):", tag(human, "goal"))
    topic = goal.group(1) if goal else topic_and_aspects(tag(human, "request"))[0]
    results = tag_blocks(tag(human, "results"), "result")
    if results and all(attrs.get("worker") == "response" for attrs, _ in results):
        drafts = "\n\n".join(text for _, text in results)
        return {"title": "Reply to the customer", "markdown": f"# Draft reply\n\n{drafts}"}
    summary = [r for r in results if r[0].get("title", "").lower() == "summary"]
    body = [r for r in results if r not in summary]
    parts = [f"# {topic[:1].upper() + topic[1:]}"]
    seen: set[str] = set()  # a statement is said once, in the first section that makes it
    for attrs, text in summary + body:
        if text := _without_repeats(text, seen):
            parts.append(f"## {attrs.get('title') or attrs.get('id')}\n\n{text}")
    conflicts = tag(human, "conflicts")
    if conflicts:
        parts.append(f"## Possible conflicts between sources\n\n{conflicts}")
    gaps = tag(human, "gaps")
    if gaps:
        parts.append(f"## Gaps\n\n{gaps}")
    return {"title": topic, "markdown": "\n\n".join(parts)}


def _without_repeats(markdown: str, seen: set[str]) -> str:
    """A section's paragraphs without the statements an earlier section made (`seen`).

    Only cited prose is compared; a section with code in it is kept as it is.
    """
    if "```" in markdown:
        return markdown
    paragraphs = []
    for para in markdown.split("\n\n"):
        kept = []
        for m in _CITED.finditer(para):
            key = " ".join(keywords(m.group("text")))
            if key and key in seen:
                continue
            seen.add(key)
            kept.append(m.group(0).strip())
        if not _CITED.search(para):  # no cited statements: prose kept as it is
            kept = [para.strip()]
        if kept:
            paragraphs.append(" ".join(kept))
    return "\n\n".join(p for p in paragraphs if p)


def verdict(system: str, human: str) -> dict[str, Any]:
    """Accept when the output covers enough of the objective's key terms (not its context's)."""
    context = set(keywords(tag(human, "context")))
    terms = [t for t in keywords(tag(human, "objective")) if t not in context]
    output = tag(human, "output")
    # what the cited documents are about counts too: a statement cited from
    # "how-heat-pumps-work" is about how heat pumps work, whatever its own words
    cited = " ".join(c.replace("-", " ") for c in re.findall(r"\[([\w-]+)#p\d+\]", output))
    covered = overlap(terms, f"{output} {cited}")
    if covered >= 0.3 or not terms:
        return {"accept": True, "feedback": ""}
    present = set(keywords(output))
    missing = [t for t in terms if t not in present]
    return {"accept": False, "feedback": f"the output does not address: {', '.join(missing)}"}


def code_submission(system: str, human: str) -> dict[str, Any]:
    """Offline mode does not write code: it says so, and the subtask fails with that reason."""
    return {
        "status": "failed",
        "error": "offline mode does not write code; configure a model for the code worker "
        "(FOREMAN_WORKER_MODEL or worker_models)",
        "files": [],
    }


def review_report(system: str, human: str) -> dict[str, Any]:
    """A rule-based review: failing or missing tests and placeholders are findings."""
    findings: list[dict[str, Any]] = []
    inputs = tag_blocks(tag(human, "inputs"), "input")
    for attrs, body in inputs:
        subject = attrs.get("id", "")
        if "tests: FAILED" in body:
            findings.append({"subject": subject, "severity": "blocker", "issue": "its tests fail"})
        elif "```python" in body and "def test_" not in body:
            findings.append(
                {"subject": subject, "severity": "major", "issue": "the code has no tests"}
            )
        for marker in ("TODO", "NotImplementedError", "FIXME"):
            if marker in body:
                findings.append(
                    {
                        "subject": subject,
                        "severity": "major",
                        "issue": f"unfinished code ({marker})",
                    }
                )
                break
    approved = not findings
    summary = (
        f"Checked {len(inputs)} input(s) by rule (offline): tests present and passing, "
        "no placeholders."
        if approved
        else f"{len(findings)} finding(s) in {len({f['subject'] for f in findings})} input(s)."
    )
    return {"status": "done", "approved": approved, "findings": findings, "summary": summary}
