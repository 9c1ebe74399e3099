"""The offline default provider does the real job: retrieval, cited findings, a report."""

import re

from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.core.schemas import Subtask
from foreman.orchestration.conflicts import find_conflicts
from foreman.workers.base import WorkerInput
from foreman.workers.research import relevance
from foreman.workers.tools.corpus import RELEVANT, load_corpus

DEMO = (
    "Write a report on residential heat pumps: how they work, efficiency, running costs, "
    "cold-climate performance and environmental impact."
)


async def test_offline_report_end_to_end(thread):
    app = build_graph().compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"request": DEMO}, thread, context=Context())
    values = app.get_state(thread).values
    assert out["status"] == "done"
    assert "Offline extractive mode" in out["answer"]
    assert len(values["plan"]["subtasks"]) == 11
    assert all(r["status"] == "accepted" for r in values["results"].values())
    verdicts = [a["verdict"] for r in values["results"].values() for a in r["attempts"]]
    assert verdicts.count("accept") == 11
    # every finding rests on a passage that addresses its subtask's objective (its aspect:
    # the report's topic is the subtask's context)
    corpus = load_corpus(Context().corpus_dir)
    plan = {s["id"]: s for s in values["plan"]["subtasks"]}
    for sid, rec in values["results"].items():
        if rec["worker"] == "research":
            inp = WorkerInput(subtask=Subtask.model_validate(plan[sid]))
            assert plan[sid]["context"] == "residential heat pumps"
            for finding in rec["output"]["findings"]:
                for cite in finding["citations"]:
                    p = corpus.by_id[cite]
                    assert relevance(corpus, inp, f"{p.title} {p.text}") >= RELEVANT
    # every citation in the answer points at a real passage, and sources are listed
    cited = set(re.findall(r"\[([a-z0-9-]+#p\d+)\]", out["answer"]))
    assert len(cited) >= 6 and cited <= set(corpus.by_id)
    assert "## Sources" in out["answer"]
    # usage is counted per model and per subtask (zero cost offline)
    assert values["usage"]["offline"]["calls"] > 11
    assert values["usage"]["offline"]["cost_usd"] == 0.0


async def test_offline_mode_declines_what_the_corpus_has_nothing_on(thread, tmp_path):
    (tmp_path / "doc.md").write_text("# Gardening\n\nTomatoes need sun and water.\n")
    app = build_graph().compile(checkpointer=InMemorySaver())
    ctx = Context(corpus_dir=str(tmp_path))
    out = await app.ainvoke(
        {"request": "Write a report on quantum chromodynamics"}, thread, context=ctx
    )
    values = app.get_state(thread).values
    assert out["status"] == "unanswered" and not values.get("results")
    assert "Offline mode cannot answer this" in out["answer"] and "Tomatoes" not in out["answer"]
    assert values["plan"]["approach"] == "decline"


async def test_a_research_subtask_on_something_the_corpus_lacks_says_so(thread, tmp_path):
    # on the corpus's topic, so it is planned; but one aspect is not in any document
    (tmp_path / "doc.md").write_text(
        "# Tomatoes\n\nTomatoes need sun and water every day.\n\n"
        "Tomato plants grow well in pots and need stakes.\n"
    )
    app = build_graph().compile(checkpointer=InMemorySaver())
    ctx = Context(corpus_dir=str(tmp_path))
    request = "Write a report on tomatoes: watering, and pests and diseases"
    out = await app.ainvoke({"request": request}, thread, context=ctx)
    results = app.get_state(thread).values["results"]
    assert results["r1"]["status"] == "accepted"  # watering: in the document
    assert results["r2"]["status"] == results["r3"]["status"] == "not_found"
    assert "nothing that addresses" in results["r2"]["error"]
    assert out["status"] == "partial" and "Answered in part" in out["answer"]
    gaps = out["answer"].split("## Gaps")[1]
    assert "pests of tomatoes (r2): not found" in gaps  # the answer names what it lacks
    assert "diseases of tomatoes (r3): not found" in gaps
    assert "stakes" not in out["answer"]  # nothing off the point was passed off as pests


def test_conflicting_figures_are_flagged():
    corpus = load_corpus(Context().corpus_dir)
    scop = next(p for p in corpus.passages if "typical air-source SCOP is about 3.0" in p.text)
    spf = next(p for p in corpus.passages if "median seasonal performance factor" in p.text)
    claims = [
        {"text": s, "citations": [p.id]}
        for p in (scop, spf) for s in re.split(r"(?<=\.)\s+", p.text)
        if "3.0" in s or "was 4.0" in s
    ]  # fmt: skip
    lines = find_conflicts([{"findings": claims}])
    assert len(lines) == 1
    assert "3.0" in lines[0] and "4.0" in lines[0] and scop.id in lines[0] and spf.id in lines[0]


def test_same_figures_are_not_conflicts():
    same = [{"text": "Typical air-source heat pump seasonal efficiency is 3.0 in homes",
             "citations": ["a#p1"]},
            {"text": "Typical air-source heat pump seasonal efficiency is 3.0 in most homes",
             "citations": ["b#p1"]}]  # fmt: skip
    assert find_conflicts([{"findings": same}]) == []


def statements(markdown: str) -> list[str]:
    """The cited statements of an answer, normalised (words only)."""
    found = re.findall(r"([^\[\]\n]+?)\s*(?:\[[^\[\]\s]+#p\d+\]\s*)+", markdown)
    return [" ".join(re.findall(r"\w+", s.lower())) for s in found if len(s.split()) >= 4]


async def test_the_report_says_each_statement_once_and_the_summary_sums_up(thread):
    app = build_graph().compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"request": DEMO}, thread, context=Context())
    said = statements(out["answer"])
    assert len(said) == len(set(said)), [s for s in said if said.count(s) > 1]
    summary = out["answer"].split("## Summary", 1)[1].split("\n## ", 1)[0]
    body = out["answer"].split("## Summary", 1)[1].split("\n## ", 1)[1]
    points = statements(summary)
    assert len(points) >= 4  # a point per section (five asked for)
    for point in points:  # in brief: no summary point is a sentence the body repeats
        assert point not in statements(body)
        assert len(point.split()) <= 18  # 16 words, as written; "8-12 °C" counts 2 here


async def test_over_the_subtask_limit_aspects_are_merged_not_dropped(thread):
    app = build_graph().compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"request": DEMO}, thread, context=Context(max_subtasks=5))
    plan = app.get_state(thread).values["plan"]
    assert len(plan["subtasks"]) <= 5 and not plan["left_out"]
    objectives = " ".join(s["objective"] for s in plan["subtasks"])
    for aspect in ("how they work", "efficiency", "running costs", "cold-climate", "environment"):
        assert aspect in objectives, aspect  # every aspect asked for has a subtask
    assert out["status"] in ("done", "partial")
