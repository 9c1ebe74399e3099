"""The small set of validation rules a workers file may ask for (`[workers.NAME.rules]`)."""

from __future__ import annotations

import re
from typing import Any

from foreman.workers.base import WorkerInput, citations_in
from foreman.workers.declared.config import Rules

CITATION = re.compile(r"\[([^\[\]\s]+)\]")


def broken_rules(rules: Rules, text: str, output: dict[str, Any], inp: WorkerInput) -> list[str]:
    """The rules `text` (an output's rendering) breaks, each as a sentence for the worker."""
    problems: list[str] = []
    words = len(text.split())
    folded = text.casefold()
    if rules.not_empty and not text.strip():
        problems.append("the answer is empty")
    if rules.min_words and words < rules.min_words:
        problems.append(f"the answer has {words} words; at least {rules.min_words} are asked")
    if rules.max_words and words > rules.max_words:
        problems.append(f"the answer has {words} words; at most {rules.max_words} are allowed")
    problems += [
        f"the answer must mention “{p}”" for p in rules.must_include if p.casefold() not in folded
    ]
    problems += [
        f"the answer must not mention “{p}”"
        for p in rules.must_not_include
        if p.casefold() in folded
    ]
    if rules.pattern and not re.search(rules.pattern, text):
        problems.append(f"the answer does not match the pattern {rules.pattern!r}")
    if rules.keeps_citations:
        allowed = citations_in([d.output for d in inp.dependencies.values()])
        cited = set(CITATION.findall(text))
        if allowed and not cited & allowed:
            problems.append("the answer keeps none of the citations of its inputs")
        if invented := sorted(cited - allowed):
            problems.append(f"the answer cites what its inputs do not: {', '.join(invented)}")
    if rules.used_tools and not output.get("tools_called"):
        problems.append("the worker answered without a successful tool call")
    return problems
