"""Research worker: BM25 search over the local corpus, then findings with citations."""

from __future__ import annotations

import re
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import Field

from graph.context import Context
from graph.models import ainvoke_structured
from graph.prompts import render, untrusted
from graph.schemas import Claim, WorkerStatus
from graph.state import empty_usage
from graph.text import STOPWORDS
from workers.base import WorkerInput, WorkerState, request_prompt
from workers.corpus import load_corpus

NAME = "research"
FOCUSED_K = 4
BROAD_K = 6


class ResearchFindings(WorkerStatus):
    """Findings that answer the objective, each citing the passages it comes from."""

    findings: list[Claim] = Field(default_factory=list, description="Cited findings.")
    summary: str = Field(default="", description="One line on what was found.")


class ResearchState(WorkerState, total=False):
    """Research worker state: adds the passages retrieved for the objective."""

    passages: list[dict[str, Any]]
    """Retrieved passages: id, doc, title, text, score."""
    docs_available: int
    """How many distinct documents matched the query at all."""


def _query(inp: WorkerInput) -> str:
    text = f"{inp.subtask.objective} {inp.clarification or ''}"
    return " ".join(w for w in re.findall(r"[\w\-]+", text) if w.lower() not in STOPWORDS)


def search_corpus(state: ResearchState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Retrieve passages; broaden to more documents when the validator asked for it."""
    inp = WorkerInput.model_validate(state["input"])
    corpus = load_corpus(runtime.context.corpus_dir)
    query = _query(inp)
    wants_breadth = any("document" in f.lower() for f in inp.feedback)
    hits = (
        corpus.search(query, k=BROAD_K, per_doc=2)
        if wants_breadth
        else corpus.search(query, k=FOCUSED_K)
    )
    available = {h.passage.doc for h in corpus.search(query, k=50)}
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
    update: dict[str, Any] = {"passages": passages, "docs_available": len(available)}
    if not passages:
        update["output"] = ResearchFindings(
            status="needs_clarification",
            question=f"The corpus has nothing matching “{inp.subtask.objective}”. "
            "What should I search for instead?",
        ).model_dump()
        update["usage"] = empty_usage()
        update["model"] = "-"
    return update


def route_after_search(state: ResearchState) -> Literal["extract_findings", "__end__"]:
    """Skip the model when retrieval found nothing (the worker asks a question instead)."""
    return "__end__" if "output" in state else "extract_findings"


async def extract_findings(state: ResearchState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the worker model for cited findings from the retrieved passages."""
    inp = WorkerInput.model_validate(state["input"])
    spec = runtime.context.model_for_worker(NAME)
    passages = "\n".join(
        f'<passage id="{p["id"]}" title="{untrusted(p["title"])}">{untrusted(p["text"])}</passage>'
        for p in state["passages"]
    )
    findings, usage = await ainvoke_structured(
        spec,
        ResearchFindings,
        [SystemMessage(render("research")), HumanMessage(request_prompt(inp, passages))],
        method=runtime.context.structured_output_method,
    )
    output = findings.model_dump()
    output["sources"] = [
        {"id": p["id"], "title": p["title"], "score": p["score"]} for p in state["passages"]
    ]
    output["docs_available"] = state.get("docs_available", 0)
    return {"output": output, "usage": usage, "model": spec}


def render_findings(output: dict[str, Any]) -> str:
    """Markdown bullet list of findings with their citation markers."""
    lines = [
        f"- {f['text'].rstrip('.')}. " + " ".join(f"[{c}]" for c in f["citations"])
        for f in output.get("findings", [])
    ]
    return "\n".join(lines)


def check_findings(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Research rules: every finding cites a retrieved passage that exists; breadth of sources."""
    problems: list[str] = []
    findings = output.get("findings", [])
    if not findings:
        return ["no findings were returned"]
    corpus = load_corpus(ctx.corpus_dir)
    retrieved = {s["id"] for s in output.get("sources", [])}
    for i, f in enumerate(findings, start=1):
        if not f.get("citations"):
            problems.append(f"finding {i} cites no passage")
        for cite in f.get("citations", []):
            if cite not in corpus.by_id:
                problems.append(f"finding {i} cites {cite!r}, which does not exist in the corpus")
            elif cite not in retrieved:
                problems.append(f"finding {i} cites {cite!r}, which was not retrieved for it")
    docs = {c.split("#")[0] for f in findings for c in f.get("citations", [])}
    if len(docs) < 2 <= int(output.get("docs_available", 0)):
        problems.append(
            f"all findings come from one document ({', '.join(docs)}); "
            "cite at least two distinct documents"
        )
    return problems


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the research worker subgraph."""
    builder = StateGraph(ResearchState, context_schema=Context)
    builder.add_node(search_corpus)
    builder.add_node(extract_findings)
    builder.add_edge(START, "search_corpus")
    builder.add_conditional_edges("search_corpus", route_after_search)
    builder.add_edge("extract_findings", END)
    return builder.compile(name="research", checkpointer=False)
