"""Finds statements from different sources that give different figures for the same thing."""

from __future__ import annotations

import re
from itertools import combinations
from typing import Any

from foreman.core.text import keywords

# Ratios (3.0, 4.2) and percentages: the figures sources disagree on in comparable terms.
# Temperatures, prices and counts mostly describe different situations, not the same fact.
_FIGURE = re.compile(r"(?<![\d\-–])(\d+(?:\.\d+)?)(?![\d\-–])\s*(%)?")
MAX_LINES = 5


def _figures(text: str) -> set[tuple[float, str]]:
    out = set()
    for value, unit in _FIGURE.findall(text.replace(",", "")):
        if unit or "." in value:  # bare integers are mostly counts and years
            out.add((float(value), unit or ""))
    return out


def _source(citations: list[str]) -> str:
    return citations[0].split("#")[0] if citations else ""


def find_conflicts(outputs: list[dict[str, Any] | None], min_shared: int = 4) -> list[str]:
    """Cited claims from different documents that disagree on a figure.

    Two claims conflict when they share at least `min_shared` content words and give
    figures in the same unit that differ by more than 15%. Returns Markdown bullet lines.
    """
    claims: dict[str, list[str]] = {}
    for out in outputs:
        for item in (out or {}).get("findings", []) + (out or {}).get("claims", []):
            if item.get("citations"):
                claims.setdefault(item["text"].strip().rstrip(". "), item["citations"])
    lines = []
    for (a, ca), (b, cb) in combinations(claims.items(), 2):
        if _source(ca) == _source(cb):
            continue
        shared = set(keywords(re.sub(r"\d", " ", a))) & set(keywords(re.sub(r"\d", " ", b)))
        if len(shared) < min_shared:
            continue
        fa, fb = _figures(a), _figures(b)
        for va, ua in fa:
            clash = [vb for vb, ub in fb if ub == ua and abs(va - vb) > 0.15 * max(va, vb)]
            if clash and not any(vb == va for vb, ub in fb if ub == ua):
                cite_a = " ".join(f"[{c}]" for c in ca)
                cite_b = " ".join(f"[{c}]" for c in cb)
                lines.append(f"- “{a}” {cite_a} — but “{b}” {cite_b}")
                break
        if len(lines) >= MAX_LINES:
            break
    return lines
