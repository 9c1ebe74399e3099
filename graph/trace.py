"""Provenance: trace each statement of an answer to the subtask outputs and passages behind it.

Deterministic, offline and model-free. A statement (a sentence or a list item of the answer)
is matched lexically against the sentences of the results the synthesizer read; from a
matched result the trace steps upstream through the plan's `inputs` (summary -> section
writer -> research finding), and the passages the matched research findings cite are
resolved against the corpus, or the web results the research outputs carry. A statement
that matches nothing above the threshold gets `subtasks: []`: unsupported, an honest signal.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple, TypedDict

from foreman.core.text import keywords, sentences
from foreman.workers.tools.corpus import Passage, load_corpus
from foreman.workers.tools.web_search import is_web_id

# Score: the IDF-weighted share of the statement's content words (stemmed, stopwords out)
# found in one source sentence. Weighting by rarity (BM25's IDF over all the results'
# sentences) keeps common words ("heat", "pump") from carrying a fabricated sentence over the
# line, and words no result contains count the most against it. On the heat-pump report,
# copies score 1.0, rewordings 0.65-1.0, invented sentences on the same topic 0.1-0.3.
THRESHOLD = 0.5
MARGIN = 0.05  # matches this close to the best are equally good (copies of one sentence)
MAX_DEPTH = 3  # upstream steps; summary -> writer -> research needs two
EXCERPT_CHARS = 240
# What the synthesizer adds itself rather than draws from the results.
SKIP_SECTIONS = frozenset({"sources", "gaps", "not waited for"})  # the last: quorums
NOTICES = ("> **Offline extractive mode", "> **Run aborted", "> **Budget reached")

_HEADING = re.compile(r"^#{1,6}\s+(.*?)[\s#]*$")
_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s+(.*)$")
_TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|[\s:|-]*$")
_MARKUP = re.compile(r"^(?:!\[[^\]]*\]\([^)]*\)\s*$|<|&lt;)")  # an image or HTML, raw or escaped
# A sentence ends at . ! or ? and the citation markers after it, before a capital or the end.
_SENTENCE = re.compile(r"\S.*?(?:[.!?](?:\s*\[[^\[\]]+\])*(?=\s+[A-Z0-9\"'(*“_]|\s*$)|$)", re.S)
_BRACKET = re.compile(r"\[([^\[\]]+)\]")
_ID = re.compile(r"^(?:web:[0-9a-f]{6,}|[\w.\-]+#[\w.\-]+)$")


class SourceMatch(TypedDict):
    """A subtask result a statement matches, with the sentence of it that matched."""

    id: str
    worker: str
    score: float
    excerpt: str
    via: str | None
    """The subtask this one was reached through upstream; None for a direct source."""


class Citation(TypedDict):
    """A cited passage: a corpus paragraph, a web result, or `missing` from both."""

    id: str
    source: Literal["corpus", "web", "missing"]
    title: str
    excerpt: str
    url: str | None


class StatementTrace(TypedDict):
    """One statement of the answer (as written, markers kept) and where it came from."""

    statement: str
    section: str
    subtasks: list[SourceMatch]
    citations: list[Citation]


class _Unit(NamedTuple):
    """One sentence or list item of one subtask's text."""

    record: str
    text: str
    terms: frozenset[str]


def cited_ids(text: str) -> list[str]:
    """Passage ids in citation markers: `[doc#p3]`, `[web:ab12cd34ef]`, `[a#p1, b#p2]`."""
    found: list[str] = []
    for group in _BRACKET.findall(text):
        parts = [p.strip() for p in re.split(r"[,;]", group)]
        if all(_ID.match(p) for p in parts):
            found += [p for p in parts if p not in found]
    return found


def _plain(text: str) -> str:
    """The text without citation markers and Markdown emphasis, for matching."""
    text = _BRACKET.sub(lambda m: "" if cited_ids(m.group(0)) else m.group(1), text)
    return re.sub(r"\*+|__|`", "", text).strip()


def split_statements(markdown: str) -> Iterator[tuple[str, str]]:
    """Yield (section heading, statement) for the sentences and list items of `markdown`.

    Headings, code blocks, images, HTML, table rules, the synthesizer's notices and its
    Sources, Gaps and Not waited for sections are skipped. A list item or table row is one
    statement; prose is split into sentences, each keeping the citation markers that follow
    it.
    """
    section, skipping, in_code, prose = "", False, False, ""
    for line in markdown.splitlines() + [""]:  # the blank line flushes the last paragraph
        text = line.strip()
        item = _ITEM.match(text)
        if prose and (not text or _HEADING.match(text) or item or text.startswith(("|", "```"))):
            yield from ((section, m.group(0).strip()) for m in _SENTENCE.finditer(prose))
            prose = ""
        if text.startswith("```"):
            in_code = not in_code
        elif heading := _HEADING.match(text):
            section = heading.group(1)
            skipping = section.lower() in SKIP_SECTIONS
        elif in_code or skipping or not text or text.startswith(NOTICES) or _MARKUP.match(text):
            continue
        elif item or (text.startswith("|") and not _TABLE_RULE.match(text)):
            row = " · ".join(cell.strip() for cell in text.strip("|").split("|"))
            yield section, item.group(1) if item else row
        elif not _TABLE_RULE.match(text):
            prose = f"{prose} {text.lstrip('> ')}".strip()


def _score(terms: frozenset[str], unit: _Unit, idf: Mapping[str, float], unseen: float) -> float:
    shared = terms & unit.terms
    total = sum(idf.get(t, unseen) for t in terms)
    return sum(idf.get(t, unseen) for t in shared) / total if total else 0.0


def _clip(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


class _Tracer:
    """The results' sentences, indexed once; matches statements against them."""

    def __init__(
        self,
        records: Mapping[str, Mapping[str, Any]],
        plan: Sequence[Mapping[str, Any]],
        corpus_dir: str,
    ) -> None:
        self.records = {k: r for k, r in records.items() if r.get("text")}
        specs = {str(s["id"]): s for s in plan}
        self.inputs = {k: list(specs.get(k, {}).get("inputs") or []) for k in self.records}
        # The synthesizer reads the results that feed the answer, or all when none is marked.
        fed = [k for k in self.records if specs.get(k, {}).get("feeds_answer")]
        self.direct = fed or list(self.records)
        self.units = {
            k: [_Unit(k, s, frozenset(keywords(_plain(s)))) for _, s in split_statements(r["text"])]
            for k, r in self.records.items()
        }
        df = Counter(t for us in self.units.values() for u in us for t in u.terms)
        n = sum(len(us) for us in self.units.values())
        self.idf = {t: math.log((n - d + 0.5) / (d + 0.5) + 1) for t, d in df.items()}
        self.unseen = math.log(n + 1.5)  # the IDF of a term no sentence has
        self.web = {
            s["id"]: s
            for r in self.records.values()
            for s in (r.get("output") or {}).get("sources", [])
            if "url" in s
        }
        try:
            self.corpus: dict[str, Passage] = load_corpus(corpus_dir).by_id
        except FileNotFoundError:  # no corpus: citations resolve to web results or `missing`
            self.corpus = {}

    def best(
        self, terms: frozenset[str], ids: Sequence[str], section: str = ""
    ) -> list[tuple[float, _Unit]]:
        """The best sentence of each result in `ids`, those within MARGIN of the top score."""
        best: dict[str, tuple[float, _Unit]] = {}
        for unit in (u for rid in ids for u in self.units.get(rid, [])):
            score = _score(terms, unit, self.idf, self.unseen)
            if score >= THRESHOLD and score > best.get(unit.record, (0.0,))[0]:
                best[unit.record] = (score, unit)
        top = max((s for s, _ in best.values()), default=0.0)
        kept = sorted(
            (v for v in best.values() if v[0] >= top - MARGIN), key=lambda v: (-v[0], v[1].record)
        )
        # A copied sentence can sit in several results; the one titled like the answer's
        # section (the synthesizer's `## Title`) is the one it was taken from.
        titled = [v for v in kept if section and self._title(v[1].record) == section.lower()]
        return titled or kept

    def _title(self, rid: str) -> str:
        return str((self.records[rid].get("output") or {}).get("title") or "").lower()

    def trace(self, section: str, statement: str) -> StatementTrace:
        """Direct sources first, then their upstream sources, then the citations."""
        terms = frozenset(keywords(_plain(statement)))
        others = [k for k in self.records if k not in self.direct]
        direct = self.best(terms, self.direct, section) or self.best(terms, others, section)
        frontier: list[tuple[tuple[float, _Unit], str | None]] = [(m, None) for m in direct]
        found: list[SourceMatch] = []
        cites = cited_ids(statement)
        seen = {u.record for (_, u), _ in frontier}
        for depth in range(MAX_DEPTH + 1):  # breadth-first, one plan step per round
            upstream: list[tuple[tuple[float, _Unit], str | None]] = []
            for (score, unit), via in frontier:
                rec = self.records[unit.record]
                found.append(
                    SourceMatch(
                        id=unit.record,
                        worker=str(rec.get("worker", "")),
                        score=round(score, 3),
                        excerpt=_clip(unit.text),
                        via=via,
                    )
                )
                if "findings" in (rec.get("output") or {}):  # a research finding's passages
                    cites += [c for c in cited_ids(unit.text) if c not in cites]
                ids = [i for i in self.inputs[unit.record] if i not in seen]
                if depth < MAX_DEPTH and ids:
                    # Upstream the question is where this sentence came from, not the statement.
                    upstream += [(m, unit.record) for m in self.best(unit.terms, ids)]
            seen |= {u.record for (_, u), _ in upstream}
            frontier = upstream
        return StatementTrace(
            statement=statement,
            section=section,
            subtasks=found,
            citations=[self.resolve(c, terms) for c in cites],
        )

    def resolve(self, cid: str, terms: frozenset[str]) -> Citation:
        """A citation with its text: the passage's sentence closest to the statement."""
        if cid in self.web:
            title, text, url = (str(self.web[cid].get(k, "")) for k in ("title", "text", "url"))
            return Citation(id=cid, source="web", title=title, excerpt=_clip(text), url=url)
        passage = None if is_web_id(cid) else self.corpus.get(cid)
        if passage is None:
            return Citation(id=cid, source="missing", title="", excerpt="", url=None)
        closest = max(
            sentences(passage.text) or [passage.text], key=lambda s: len(terms & set(keywords(s)))
        )
        return Citation(
            id=cid, source="corpus", title=passage.title, excerpt=_clip(closest), url=None
        )


def trace_answer(
    answer: str,
    records: Mapping[str, Mapping[str, Any]],
    plan_subtasks: Sequence[Mapping[str, Any]],
    corpus_dir: str,
) -> list[StatementTrace]:
    """Trace every statement of `answer` to the results and passages it came from.

    Args:
        answer: The final answer (Markdown) as the synthesizer returned it.
        records: The usable subtask records the synthesizer used, by id; `worker`, `text`
            and `output` are read.
        plan_subtasks: The plan's subtasks as dicts; `id`, `inputs` and `feeds_answer` are read.
        corpus_dir: Folder of the corpus that resolves `doc#pN` citations.

    Returns:
        One JSON-serialisable trace per statement, in answer order.
    """
    tracer = _Tracer(records, plan_subtasks, corpus_dir)
    return [tracer.trace(section, s) for section, s in split_statements(answer)]


def coverage(trace: Sequence[StatementTrace]) -> dict[str, Any]:
    """How many statements were traced, their share, and the unsupported statements."""
    unsupported = [t["statement"] for t in trace if not t["subtasks"]]
    n = len(trace)
    share = (n - len(unsupported)) / n if n else 1.0
    return {
        "statements": n,
        "traced": n - len(unsupported),
        "share": round(share, 3),
        "unsupported": unsupported,
    }


def _cell(text: str, limit: int) -> str:
    return _clip(text, limit).replace("|", "\\|")


def trace_to_markdown(trace: Sequence[StatementTrace]) -> str:
    """The trace for the audit export: coverage, one table row per statement, cited passages."""
    cov = coverage(trace)
    lines = [
        "## Provenance",
        "",
        f"{cov['traced']} of {cov['statements']} statements traced ({cov['share']:.0%}); "
        f"{len(cov['unsupported'])} unsupported.",
        "",
        "| # | Statement | From | Cites |",
        "|---|---|---|---|",
    ]
    cited: dict[str, Citation] = {}
    for i, t in enumerate(trace, start=1):
        origin = "; ".join(
            f"{s['id']} {s['score']:.2f}" + (f" via {s['via']}" if s["via"] else "")
            for s in t["subtasks"]
        )
        cited.update((c["id"], c) for c in t["citations"])
        ids = ", ".join(c["id"] for c in t["citations"])
        lines.append(
            f"| {i} | {_cell(_plain(t['statement']), 90)} | {origin or '**unsupported**'} | {ids} |"
        )
    if cited:
        lines += ["", "Cited passages:", ""]
        for cid, c in sorted(cited.items()):
            where = c["url"] or c["title"] or "not in the corpus nor the web results"
            quote = f" — “{_cell(c['excerpt'], 160)}”" if c["excerpt"] else ""
            lines.append(f"- `{cid}` ({c['source']}) {_cell(where, 120)}{quote}")
    return "\n".join(lines)
