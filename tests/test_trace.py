"""Provenance: every statement of an answer traced to subtask outputs and cited passages."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.core.state import USABLE
from foreman.examples import EXAMPLES
from foreman.orchestration.trace import (
    THRESHOLD,
    cited_ids,
    coverage,
    split_statements,
    trace_answer,
    trace_to_markdown,
)
from foreman.workers.tools.corpus import load_corpus
from foreman.workers.tools.web_search import web_id

DATA = Context().corpus_dir
OFFLINE: dict[str, Any] = dict(
    planner_model="offline",
    worker_model="offline",
    validator_model="offline",
    synthesizer_model="offline",
)


# --- the real offline report example, run through the graph --------------------------------


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The offline `report` example run end to end, and the trace of its answer."""
    # No store: records keep their text and output, as the synthesizer has them once loaded.
    app = build_graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    ctx = Context(**OFFLINE)
    request = EXAMPLES["report"].request
    out = asyncio.run(app.ainvoke({"request": request}, config, context=ctx))
    assert out["status"] == "done", out.get("error")
    values = app.get_state(config).values
    records = {k: r for k, r in values["results"].items() if r["status"] in USABLE}
    subtasks = values["plan"]["subtasks"]
    trace = trace_answer(out["answer"], records, subtasks, ctx.corpus_dir)
    return {
        "answer": out["answer"],
        "records": records,
        "plan": {s["id"]: s for s in subtasks},
        "trace": trace,
        "corpus": load_corpus(ctx.corpus_dir),
    }


def test_report_statements_are_traced(report: dict[str, Any]) -> None:
    trace = report["trace"]
    cov = coverage(trace)
    assert cov["statements"] >= 20
    assert cov["share"] >= 0.8, cov["unsupported"]
    # Headings, the offline notice and the Sources list are not statements.
    statements = [t["statement"] for t in trace]
    assert not any(s.startswith(("#", ">")) or "Offline extractive mode" in s for s in statements)
    sources = report["answer"].split("## Sources", 1)[1]
    assert not any(s in sources for s in statements)
    assert {t["section"] for t in trace} >= {"Summary", "How they work", "Efficiency"}
    # Stored in graph state: it must survive a JSON round trip unchanged.
    assert json.loads(json.dumps(trace)) == trace


def test_report_citations_resolve_to_the_passages_that_hold_the_text(
    report: dict[str, Any],
) -> None:
    corpus = report["corpus"]
    checked = 0
    for t in report["trace"]:
        ids = [c["id"] for c in t["citations"]]
        assert set(cited_ids(t["statement"])) <= set(ids)  # the statement's own markers
        for cite in t["citations"]:
            assert cite["source"] == "corpus", cite
            passage = corpus.by_id[cite["id"]]
            assert cite["title"] == passage.title
            assert cite["excerpt"].rstrip("…") in passage.text
        # The research finding the statement was traced to is in a passage it cites.
        for sub in t["subtasks"]:
            if sub["worker"] == "research":
                finding = sub["excerpt"].rstrip("…").split(" [")[0].rstrip(".")
                assert any(finding in corpus.by_id[i].text for i in ids), (finding, ids)
                checked += 1
    assert checked >= 20


def test_report_statement_traces_to_its_section_writer_its_research_and_the_passage(
    report: dict[str, Any],
) -> None:
    records, plan = report["records"], report["plan"]
    writer_by_title = {
        r["output"]["title"]: k
        for k, r in records.items()
        if r["worker"] == "writer" and plan[k]["inputs"]
    }
    chains = 0
    for t in report["trace"]:
        writer = writer_by_title.get(t["section"])
        if writer is None or t["section"] == "Summary":
            continue
        (research,) = plan[writer]["inputs"]
        findings = records[research]["output"]["findings"]
        finding = next((f for f in findings if f["text"].rstrip(".") in t["statement"]), None)
        if finding is None:
            continue
        subs = {s["id"]: s for s in t["subtasks"]}
        # The section writer is the direct source (not the other sections that copy the
        # same sentence); its research input is reached through it.
        assert [s["id"] for s in t["subtasks"] if s["via"] is None] == [writer]
        assert subs[writer]["score"] == 1.0
        assert subs[research]["via"] == writer and subs[research]["worker"] == "research"
        assert set(finding["citations"]) <= {c["id"] for c in t["citations"]}
        chains += 1
    assert chains >= 15


def test_report_summary_traces_through_two_steps(report: dict[str, Any]) -> None:
    summary = [t for t in report["trace"] if t["section"] == "Summary"]
    assert summary
    for t in summary:
        workers = {s["id"]: (s["worker"], s["via"]) for s in t["subtasks"]}
        assert workers["summary"] == ("writer", None)
        assert any(w == "writer" and via == "summary" for w, via in workers.values())
        assert any(w == "research" and via not in (None, "summary") for w, via in workers.values())


INVENTED = [
    "Heat pumps are reliable and efficient machines.",
    "Experts agree that heat pumps will replace every boiler in Europe by 2030.",
    "The efficiency of a heat pump is lower in winter.",
]


def test_report_invented_statements_on_the_topic_are_unsupported(report: dict[str, Any]) -> None:
    # On-topic words ("heat pump", "efficiency", "boiler") are in every result; what the
    # invented sentences add is not. A reworded real finding still traces.
    reworded = "Servicing a heat pump costs about USD 150-250 a year."
    answer = report["answer"].replace(
        "## Efficiency\n\n", "## Efficiency\n\n" + " ".join(INVENTED + [reworded]) + "\n\n"
    )
    trace = trace_answer(answer, report["records"], list(report["plan"].values()), DATA)
    by_text = {t["statement"]: t for t in trace}
    assert [by_text[s]["subtasks"] for s in INVENTED] == [[], [], []]
    assert coverage(trace)["traced"] == coverage(report["trace"])["traced"] + 1
    paraphrase = by_text[reworded]
    research = [s for s in paraphrase["subtasks"] if s["worker"] == "research"]
    assert research and all(s["score"] >= THRESHOLD for s in paraphrase["subtasks"])
    assert "running-costs#p7" in [c["id"] for c in paraphrase["citations"]]


def test_report_trace_markdown(report: dict[str, Any]) -> None:
    md = trace_to_markdown(report["trace"])
    cov = coverage(report["trace"])
    assert md.startswith("## Provenance")
    assert f"{cov['traced']} of {cov['statements']} statements traced" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert len(rows) == cov["statements"]
    assert "Cited passages:" in md and "(corpus)" in md


# --- hand-made answers ---------------------------------------------------------------------

DOC = """# Garden Soils
Source: Allotment Quarterly, 2024

Clay soils hold water well but drain slowly, and they compact when worked wet.

Sandy soils warm up quickly in spring and are easy to dig at any time of year.
They lose nutrients fast because rain washes them out.
"""
WEB_URL = "https://example.org/compost"
WEB = web_id(WEB_URL)


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "soils.md").write_text(DOC, encoding="utf-8")
    findings = [
        {
            "text": "Clay soils hold water well but drain slowly, and compact when worked wet.",
            "citations": ["soils#p1"],
        },
        {
            "text": "Sandy soils lose nutrients fast because rain washes them out.",
            "citations": ["soils#p2"],
        },
        {"text": "Sandy soils warm up quickly in spring.", "citations": ["soils#p2"]},
        {
            "text": "Compost improves the structure of both clay and sandy soils.",
            "citations": [WEB],
        },
    ]
    research = {
        "id": "r1",
        "worker": "research",
        "text": "\n".join(
            f"- {f['text']} " + " ".join(f"[{c}]" for c in f["citations"]) for f in findings
        ),
        "output": {
            "findings": findings,
            "sources": [
                {"id": WEB, "title": "Composting basics", "url": WEB_URL, "text": "Compost..."}
            ],
        },
    }
    section = (
        "Clay soils drain slowly and get compacted if dug while wet. [soils#p1] "
        "Adding compost improves the structure of clay and sandy soils. [" + WEB + "] "
        "Sandy soils warm up quickly in spring. [soils#p2]"
    )
    writer = {
        "id": "w1",
        "worker": "writer",
        "text": section,
        "output": {"title": "Soil types", "markdown": section, "claims": []},
    }
    plan = [
        {"id": "r1", "inputs": [], "feeds_answer": False},
        {"id": "w1", "inputs": ["r1"], "feeds_answer": True},
    ]
    return {"records": {"r1": research, "w1": writer}, "plan": plan, "dir": str(tmp_path)}


ANSWER = f"""> **Offline extractive mode.** Planned and written by rules; no model wrote this.

# Soils

## Soil types

Clay soils drain slowly and get compacted if dug while wet. [soils#p1] Adding compost \
improves the structure of clay and sandy soils. [{WEB}]

- Moon dust makes an excellent substitute for potting mix in greenhouses. [ghost#p9]

## Sources

- [soils#p1] Garden Soils — Allotment Quarterly, 2024
"""


def test_corpus_ids_match_the_documents(case: dict[str, Any]) -> None:
    # The fixture's ids are the corpus's own (the file is soils.md): keep them honest.
    assert set(load_corpus(case["dir"]).by_id) == {"soils#p1", "soils#p2"}


def test_fabricated_statement_is_unsupported(case: dict[str, Any]) -> None:
    trace = trace_answer(ANSWER, case["records"], case["plan"], case["dir"])
    assert [t["statement"].split(" [")[0] for t in trace] == [
        "Clay soils drain slowly and get compacted if dug while wet.",
        "Adding compost improves the structure of clay and sandy soils.",
        "Moon dust makes an excellent substitute for potting mix in greenhouses.",
    ]
    moon = trace[2]
    assert moon["subtasks"] == []
    assert moon["citations"] == [
        {"id": "ghost#p9", "source": "missing", "title": "", "excerpt": "", "url": None}
    ]
    cov = coverage(trace)
    assert (cov["statements"], cov["traced"]) == (3, 2)
    assert cov["unsupported"] == [moon["statement"]]
    assert "**unsupported**" in trace_to_markdown(trace)


def test_writer_statement_traces_to_research_finding_and_passage(case: dict[str, Any]) -> None:
    clay = trace_answer(ANSWER, case["records"], case["plan"], case["dir"])[0]
    assert [(s["id"], s["via"]) for s in clay["subtasks"]] == [("w1", None), ("r1", "w1")]
    research = clay["subtasks"][1]
    assert THRESHOLD <= research["score"] < 1.0  # reworded by the writer, still matched
    assert research["excerpt"].startswith("Clay soils hold water well")
    (cite,) = clay["citations"]
    assert (cite["id"], cite["source"], cite["title"]) == ("soils#p1", "corpus", "Garden Soils")
    assert cite["excerpt"] == DOC.splitlines()[3]


def test_statement_only_in_an_upstream_result_traces_to_it(case: dict[str, Any]) -> None:
    # Like the synthesizer's conflict lines: drawn from research the answer did not read.
    answer = "Sandy soils lose nutrients quickly because rain washes them out."
    (sandy,) = trace_answer(answer, case["records"], case["plan"], case["dir"])
    assert [(s["id"], s["via"]) for s in sandy["subtasks"]] == [("r1", None)]
    (cite,) = sandy["citations"]
    assert cite["id"] == "soils#p2"
    assert cite["excerpt"] == "They lose nutrients fast because rain washes them out."


def test_web_citation_resolves_to_its_url(case: dict[str, Any]) -> None:
    compost = trace_answer(ANSWER, case["records"], case["plan"], case["dir"])[1]
    assert [s["id"] for s in compost["subtasks"]] == ["w1", "r1"]
    (cite,) = compost["citations"]
    assert cite["source"] == "web" and cite["url"] == WEB_URL
    assert cite["title"] == "Composting basics"


def test_direct_sources_are_the_results_that_feed_the_answer(case: dict[str, Any]) -> None:
    # The sentence is in the research output and, copied, in the writer's section; the
    # synthesizer read only the writer, so the research is reached through it.
    (warm,) = trace_answer("Sandy soils warm up quickly in spring.", *case.values())
    assert [(s["id"], s["via"], s["score"]) for s in warm["subtasks"]] == [
        ("w1", None, 1.0),
        ("r1", "w1", 1.0),
    ]
    plan = [{k: v for k, v in s.items() if k != "feeds_answer"} for s in case["plan"]]
    (warm,) = trace_answer(
        "Sandy soils warm up quickly in spring.", case["records"], plan, case["dir"]
    )
    # Nothing marked as feeding the answer: every result is a direct source, as in synthesis.
    assert [(s["id"], s["via"]) for s in warm["subtasks"]] == [("r1", None), ("w1", None)]


def test_split_statements_keeps_markers_with_their_sentence() -> None:
    md = (
        "# T\n\nHeat pumps move heat. [a#p1] They run on power [b#p2, c#p3]. COP is 3.5 here.\n\n"
        "1. First item with e.g. a dot\n| col | val |\n|---|---|\n| x | 2.5 |\n\n"
        "```\ncode. Not a statement.\n```\n![chart](plot.png)\n&lt;details&gt;\n<br>\n\n"
        "> **Budget reached**: some subtasks were not run.\n\n## Gaps\n\n- r9: failed\n"
    )
    assert list(split_statements(md)) == [
        ("T", "Heat pumps move heat. [a#p1]"),
        ("T", "They run on power [b#p2, c#p3]."),
        ("T", "COP is 3.5 here."),
        ("T", "First item with e.g. a dot"),
        ("T", "col · val"),
        ("T", "x · 2.5"),
    ]
    assert cited_ids("see [b#p2, c#p3] and [link text] and [web:0123456789]") == [
        "b#p2",
        "c#p3",
        "web:0123456789",
    ]
