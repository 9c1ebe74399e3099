"""Research worker: BM25 search over the local corpus, optionally the web, then cited findings."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import Field

from foreman.core.context import Context
from foreman.core.models import ainvoke_structured
from foreman.core.prompts import render, untrusted
from foreman.core.schemas import Claim, WorkerStatus
from foreman.core.state import empty_usage
from foreman.core.text import (
    STOPWORDS,
    escape_attr,
    keywords,
    overlap,
    set_aside_instructions,
    without_how_much,
)
from foreman.workers.base import WorkerInput, WorkerState, request_prompt
from foreman.workers.spec import WorkerSpec
from foreman.workers.tools.corpus import RELEVANT, Corpus, load_corpus
from foreman.workers.tools.web_search import WebSearchError, get_web_search, is_web_id

NAME = "research"
FOCUSED_K = 4
BROAD_K = 6
DEEP_K = 8  # an objective "in depth" (a follow-up asked to expand a section)
_IN_DEPTH = re.compile(r",?\s*\bin (?:more )?depth\b", re.I)


class ResearchFindings(WorkerStatus):
    """Findings that answer the objective, each citing the passages it comes from."""

    findings: list[Claim] = Field(default_factory=list, description="Cited findings.")
    summary: str = Field(default="", description="One line on what was found.")


class ResearchState(WorkerState, total=False):
    """Research worker state: adds the passages retrieved for the objective."""

    passages: list[dict[str, Any]]
    """Retrieved passages: id, doc, title, text, and score (corpus) or url (web)."""
    docs_available: int
    """How many distinct documents matched the query at all (a web result counts as one)."""
    web_error: str
    """Why the web search failed, when it did; the worker goes on with the corpus."""


def _query(inp: WorkerInput) -> str:
    """What to search for: the objective and a person's clarification."""
    text = f"{_IN_DEPTH.sub('', inp.subtask.objective)} {inp.clarification or ''}"
    text = without_how_much(text)
    return " ".join(w for w in re.findall(r"[\w\-]+", text) if w.lower() not in STOPWORDS)


def _about(inp: WorkerInput) -> list[str]:
    """What retrieved text must address: the objective, or what a person clarified.

    Words of the subtask's `context` do not count: a section on noise in a report on
    residential heat pumps must be about noise, whether or not it says "residential".
    """
    objective = _IN_DEPTH.sub("", inp.subtask.objective)
    context = set(re.findall(r"[\w\-]+", inp.subtask.context.lower()))
    if context:
        words = re.findall(r"[\w\-]+", objective)
        rest = " ".join(w for w in words if w.lower() not in context)
        objective = rest if keywords(rest) else objective
    return [objective, *([inp.clarification] if inp.clarification else [])]


def relevance(corpus: Corpus, inp: WorkerInput, text: str) -> float:
    """How well `text` addresses the subtask (`Corpus.relevance`, the best of `_about`)."""
    return max(corpus.relevance(about, text) for about in _about(inp))


def addresses(ctx: Context, inp: WorkerInput, text: str) -> float:
    """`relevance` against the run's corpus; without one (web only), the words' share."""
    try:
        return relevance(load_corpus(ctx.corpus_dir), inp, text)
    except FileNotFoundError:
        return max(overlap(keywords(about), text) for about in _about(inp))


def _wants_breadth(inp: WorkerInput) -> bool:
    return any("document" in f.lower() for f in inp.feedback)


def _wants_depth(inp: WorkerInput) -> bool:
    return bool(_IN_DEPTH.search(inp.subtask.objective))


def search_corpus(state: ResearchState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Retrieve the passages that address the objective (more documents when asked for)."""
    inp = WorkerInput.model_validate(state["input"])
    corpus = load_corpus(runtime.context.corpus_dir)
    query = _query(inp)
    about = _about(inp)
    if _wants_breadth(inp):
        hits = corpus.search(query, k=BROAD_K, per_doc=2, min_relevance=RELEVANT, about=about)
    elif _wants_depth(inp):
        hits = corpus.search(query, k=DEEP_K, min_relevance=RELEVANT, about=about)
    else:
        hits = corpus.search(query, k=FOCUSED_K, min_relevance=RELEVANT, about=about)
    relevant = corpus.search(query, k=50, min_relevance=RELEVANT, about=about)
    available = {h.passage.doc for h in relevant}
    passages = [
        {
            "id": h.passage.id,
            "doc": h.passage.doc,
            "title": h.passage.title,
            "text": h.passage.text,
            "score": round(h.score, 3),
        }
        for h in hits
    ]
    return {"passages": passages, "docs_available": len(available)}


async def search_web(state: ResearchState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Add web results as passages when `web_search` is set; a failed search is only noted."""
    spec = runtime.context.web_search.strip()
    if not spec:
        return {}
    inp = WorkerInput.model_validate(state["input"])
    # Building the provider imports and configures its client: not on the loop.
    provider = await asyncio.to_thread(get_web_search, spec)
    k = BROAD_K if _wants_breadth(inp) else FOCUSED_K
    try:
        results = await provider.search(_query(inp), k)
    except WebSearchError as exc:
        return {"web_error": str(exc)}
    corpus = load_corpus(runtime.context.corpus_dir)
    web = [
        {"id": r.id, "doc": r.id, "title": r.title, "text": r.snippet, "url": r.url}
        for r in results
        if relevance(corpus, inp, f"{r.title} {r.snippet}") >= RELEVANT
    ]
    return {
        "passages": state.get("passages", []) + web,
        "docs_available": state.get("docs_available", 0) + len(web),
    }


def route_after_search(state: ResearchState) -> Literal["extract_findings", "report_nothing"]:
    """Skip the model when nothing relevant was retrieved (the worker says so instead)."""
    return "extract_findings" if state.get("passages") else "report_nothing"


def report_nothing(state: ResearchState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Nothing retrieved addresses the objective: say so plainly, invent nothing."""
    inp = WorkerInput.model_validate(state["input"])
    where = f"the documents in {runtime.context.corpus_dir}"
    if runtime.context.web_search.strip():
        where += " and the web search"
    output = ResearchFindings(
        status="not_found",
        error=f"{where} have nothing that addresses “{inp.subtask.objective.rstrip('.')}”",
    ).model_dump()
    if "web_error" in state:
        output["web_error"] = state["web_error"]
    return {"output": output, "usage": empty_usage(), "model": "-"}


def _passage_block(p: dict[str, Any]) -> str:
    attrs = f'id="{p["id"]}" title="{escape_attr(untrusted(p["title"]))}"'
    if "url" in p:
        attrs += f' url="{escape_attr(untrusted(p["url"]))}"'
    return f"<passage {attrs}>{untrusted(p['text'])}</passage>"


def _source(p: dict[str, Any]) -> dict[str, Any]:
    if "url" in p:  # the snippet is all there is to check a web citation against later
        return {"id": p["id"], "title": p["title"], "url": p["url"], "text": p["text"]}
    return {"id": p["id"], "title": p["title"], "score": p["score"]}


async def extract_findings(state: ResearchState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the worker model for cited findings from the retrieved passages."""
    inp = WorkerInput.model_validate(state["input"])
    spec = runtime.context.model_for_worker(NAME)
    shown, flagged = [], []
    for p in state["passages"]:
        text, removed = set_aside_instructions(p["text"])
        flagged += [{"id": p["id"], "text": r} for r in removed]
        if text:
            shown.append({**p, "text": text})
    passages = "\n".join(_passage_block(p) for p in shown)
    findings, usage = await ainvoke_structured(
        spec,
        ResearchFindings,
        [SystemMessage(render("research")), HumanMessage(request_prompt(inp, passages))],
        method=runtime.context.structured_output_method,
        role="research worker",
    )
    output = findings.model_dump()
    output["sources"] = [_source(p) for p in shown]
    if flagged:  # kept for the audit trail, never shown to the model as content
        output["flagged"] = flagged
    output["docs_available"] = state.get("docs_available", 0)
    if "web_error" in state:
        output["web_error"] = state["web_error"]
    return {"output": output, "usage": usage, "model": spec}


def render_findings(output: dict[str, Any]) -> str:
    """Markdown bullet list of findings with their citation markers."""
    lines = [
        f"- {f['text'].rstrip('.')}. " + " ".join(f"[{c}]" for c in f["citations"])
        for f in output.get("findings", [])
    ]
    return "\n".join(lines)


def _document(passage_id: str) -> str:
    """What the breadth rule counts: the corpus document, or the URL of a web result."""
    return passage_id if is_web_id(passage_id) else passage_id.split("#")[0]


def check_findings(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Research rules: every finding cites a retrieved passage that exists; breadth of sources.

    A web passage exists only as a result of this attempt's search, so a `web:` citation must
    be among this output's sources; a corpus citation must also exist in the corpus.
    """
    problems: list[str] = []
    findings = output.get("findings", [])
    if not findings:
        return ["no findings were returned"]
    retrieved = {s["id"] for s in output.get("sources", [])}
    cited = {c for f in findings for c in f.get("citations", [])}
    in_corpus = load_corpus(ctx.corpus_dir).by_id if any(not is_web_id(c) for c in cited) else {}
    for i, f in enumerate(findings, start=1):
        if not f.get("citations"):
            problems.append(f"finding {i} cites no passage")
        for cite in f.get("citations", []):
            if is_web_id(cite):
                if cite not in retrieved:
                    problems.append(
                        f"finding {i} cites {cite!r}, which is not one of the web results "
                        "retrieved for this attempt"
                    )
            elif cite not in in_corpus:
                problems.append(f"finding {i} cites {cite!r}, which does not exist in the corpus")
            elif cite not in retrieved:
                problems.append(f"finding {i} cites {cite!r}, which was not retrieved for it")
    # A finding must rest on a passage that addresses the objective; BM25 also ranks
    # passages that only share a word with it.
    texts = {
        s["id"]: f"{s.get('title', '')} {s.get('text', '')}" for s in output.get("sources", [])
    }
    texts |= {c: f"{in_corpus[c].title} {in_corpus[c].text}" for c in cited if c in in_corpus}
    for i, f in enumerate(findings, start=1):
        for cite in f.get("citations", []):
            if cite in texts and addresses(ctx, inp, texts[cite]) < RELEVANT:
                problems.append(f"finding {i} cites {cite!r}, which does not address the objective")
    # Breadth counts relevant documents only: an off-topic one would meet it by citing noise.
    docs = {_document(c) for c in cited}
    if len(docs) < 2 <= int(output.get("docs_available", 0)):
        problems.append(
            f"all findings come from one document ({', '.join(docs)}); cite at least two "
            "distinct documents that address the objective"
        )
    return problems


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the research worker subgraph."""
    builder = StateGraph(ResearchState, context_schema=Context)
    builder.add_node(search_corpus)
    builder.add_node(search_web)
    builder.add_node(report_nothing)
    builder.add_node(extract_findings)
    builder.add_edge(START, "search_corpus")
    builder.add_edge("search_corpus", "search_web")
    builder.add_conditional_edges("search_web", route_after_search)
    builder.add_edge("report_nothing", END)
    builder.add_edge("extract_findings", END)
    return builder.compile(name="research", checkpointer=False)


def spec() -> WorkerSpec:
    """The `research` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="research",
        capability="research",
        description="searches the local document corpus (BM25), and the web when "
        "configured, and returns findings that cite the passages they come from",
        graph=build(),
        reads=("corpus_dir", "web_search"),
        output_schema=ResearchFindings,
        check=check_findings,
        render=render_findings,
    )
