"""Bad input to the CLI: a clear message, exit 2, and nothing changed anywhere."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HEAT_PUMPS
from tests.support.ports import free_port


def thread_count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "checkpoints" not in tables:
            return 0
        return conn.execute("SELECT COUNT(DISTINCT thread_id) FROM checkpoints").fetchone()[0]


@pytest.mark.parametrize("db", ["runs.sqlite", "mysql://x@127.0.0.1/db", "sqlite:", "bare"])
def test_a_db_that_is_not_sqlite_or_postgres_is_refused(
    cli: Any, tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("run", HEAT_PUMPS, "--db", db, "--quiet")
    assert result.exit_code == 2
    assert "is not a database: use sqlite:PATH" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no file made of a bare word


def test_an_unreachable_database_is_a_message(cli: Any) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    result = cli("run", HEAT_PUMPS, "--db", url, "--quiet")
    assert result.exit_code == 2
    assert "cannot open the database" in result.output and "Traceback" not in result.output
    assert cli("threads", "--db", url).exit_code == 2


@pytest.mark.parametrize("thread", ["../../escape", "..", "a/b", "/abs", ".hidden", "x" * 200])
def test_thread_ids_cannot_leave_the_runs_folder(cli: Any, tmp_path: Path, thread: str) -> None:
    result = cli("run", HEAT_PUMPS, "--thread", thread, "--quiet")
    assert result.exit_code == 2 and "is not allowed" in result.output
    assert thread_count(tmp_path / "cli.sqlite") == 0
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(
    "option",
    [
        ("--max-parallel", "0"),
        ("--max-parallel", "-1"),
        ("--max-tokens", "-5"),
        ("--max-cost", "-0.5"),
        ("--max-subtasks", "0"),
    ],
)
def test_budgets_and_limits_that_mean_nothing_are_refused(
    cli: Any, tmp_path: Path, option: tuple[str, str]
) -> None:
    result = cli("run", HEAT_PUMPS, *option, "--quiet")
    assert result.exit_code == 2, result.output
    assert option[0] in result.output
    assert thread_count(tmp_path / "cli.sqlite") == 0


@pytest.mark.parametrize(
    "model",
    ["planner=nowhere:big", "worker=", "nonsense=offline", "writer=", "planner=:x"],
)
def test_a_bad_model_leaves_no_thread_behind(cli: Any, tmp_path: Path, model: str) -> None:
    os.environ.pop("NOWHERE_BASE_URL", None)
    result = cli("run", HEAT_PUMPS, "--thread", "m1", "--model", model, "--quiet")
    assert result.exit_code == 2, result.output
    assert thread_count(tmp_path / "cli.sqlite") == 0
    assert not (tmp_path / "home" / "runs" / "m1").exists()


def test_a_thread_that_exists_is_not_started_again(cli: Any) -> None:
    assert cli("run", HEAT_PUMPS, "--thread", "e1", "--quiet").exit_code == 0
    before = json.loads(cli("show", "e1", "--format", "json").output)
    again = cli("run", "Another request entirely", "--thread", "e1", "--quiet")
    assert again.exit_code == 2 and "already has a run" in again.output
    after = json.loads(cli("show", "e1", "--format", "json").output)
    assert after["checkpoints"] == before["checkpoints"]


def test_resuming_a_run_whose_planning_failed_is_not_success(cli: Any, models: Any) -> None:
    cyclic = {"goal": "g", "subtasks": [
        {"id": "a", "worker": "llm", "objective": "x", "inputs": ["b"]},
        {"id": "b", "worker": "llm", "objective": "y", "inputs": ["a"]}]}  # fmt: skip
    models["planner"].on("Plan", "<request>", cyclic)
    first = cli("run", HEAT_PUMPS, "--thread", "p1", "--model", "planner=scripted:planner")
    assert first.exit_code == 1
    again = cli("resume", "p1")
    assert again.exit_code == 1
    assert "ended failed" in again.output and "did not produce a valid plan" in again.output


def test_delete_and_expire_remove_the_audit_files(cli: Any, tmp_path: Path) -> None:
    runs = tmp_path / "home" / "runs"
    for thread in ("d1", "d2"):
        assert cli("run", HEAT_PUMPS, "--thread", thread, "--quiet").exit_code == 0
        assert (runs / thread / "audit.json").exists()
    deleted = cli("delete", "d1")
    assert deleted.exit_code == 0 and "its audit files" in deleted.output
    assert not (runs / "d1").exists() and (runs / "d2").exists()
    expired = cli("expire", "--older-than", "0s")
    assert expired.exit_code == 0 and "d2" in expired.output
    assert not (runs / "d2").exists()


def test_a_corpus_with_a_fifo_and_unreadable_files_is_read_without_them(
    cli: Any, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    source = Path(__file__).resolve().parent.parent / "data" / "corpus" / "running-costs.md"
    (corpus / "running-costs.md").write_text(source.read_text() + "\nA NUL\x00 here.\n")
    os.mkfifo(corpus / "pipe.md")  # reading it would wait for a writer forever
    (corpus / "gone.md").symlink_to(tmp_path / "nowhere.md")
    (corpus / "folder.md").mkdir()
    (corpus / "mem.md").symlink_to("/proc/self/mem")  # a regular file that cannot be read
    result = cli("run", "Write a report on heat pump running costs", "--corpus", str(corpus),
                 "--thread", "c1", "--quiet", "--no-ask")  # fmt: skip
    assert result.exit_code in (0, 5), result.output  # 5: aspects one document cannot cover
    assert "running-costs#p" in result.output

    from foreman.workers.tools.corpus import load_corpus

    skipped = load_corpus(corpus).skipped
    assert sorted(Path(s.split(":")[0]).name for s in skipped) == [
        "folder.md", "gone.md", "mem.md", "pipe.md"]  # fmt: skip


@pytest.mark.parametrize("answer", ["null", "[" * 5000 + "]" * 5000, "[" * 40 + "]" * 40])
def test_answers_of_no_use_are_refused_and_the_run_stays_paused(cli: Any, answer: str) -> None:
    assert cli("run", HEAT_PUMPS, "--thread", "q1", "--review-plan", "--no-ask").exit_code == 3
    result = cli("resume", "q1", "--answer", answer, "--no-ask")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "paused, waiting: plan_review" in cli("threads").output
    assert cli("resume", "q1", "--answer", '{"action": "approve"}').exit_code == 0


async def test_an_answer_too_deep_to_keep_is_asked_again(tmp_path: Path) -> None:
    """Through the API a deep answer reaches the saver, whose serializer cannot keep it."""
    from langgraph.types import Command

    from foreman import Context, build_graph
    from foreman.checkpointers import open_persistence

    deep: dict[str, Any] = {}
    node = deep
    for _ in range(3000):
        node["a"] = {}
        node = node["a"]
    config: Any = {"configurable": {"thread_id": "deep"}}
    ctx = Context(review_plan=True)
    async with open_persistence(f"sqlite:{tmp_path / 'db.sqlite'}") as (saver, store):
        app = build_graph().compile(checkpointer=saver, store=store)
        await app.ainvoke({"request": HEAT_PUMPS}, config, context=ctx)
        await app.ainvoke(Command(resume={"action": "edit", "plan": deep}), config, context=ctx)
        [again] = (await app.aget_state(config)).interrupts
        assert "nested too deeply" in again.value["error"]
    async with open_persistence(f"sqlite:{tmp_path / 'db.sqlite'}") as (saver, store):
        app = build_graph().compile(checkpointer=saver, store=store)
        out = await app.ainvoke(Command(resume={"action": "approve"}), config, context=ctx)
        assert out["status"] == "done"


def test_the_code_example_offline_is_refused_before_anything_runs(cli: Any, tmp_path: Path) -> None:
    result = cli("run", "--example", "code", "--thread", "code1")
    assert result.exit_code == 2
    assert (
        "offline mode does not write code" in result.output and "nothing was run" in result.output
    )
    assert thread_count(tmp_path / "cli.sqlite") == 0


@pytest.mark.parametrize(
    ("variable", "choices"),
    [
        ("FOREMAN_SCHEDULER", "dataflow, waves"),
        ("FOREMAN_STRUCTURED_OUTPUT", "function_calling, json_schema, json_mode"),
        ("FOREMAN_WORKER_DURABILITY", "async, exit"),
    ],
)
def test_a_setting_outside_its_choices_is_refused(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, choices: str
) -> None:
    monkeypatch.setenv(variable, "bogus")
    result = cli("run", HEAT_PUMPS, "--quiet")
    assert result.exit_code == 2
    assert f"{variable}='bogus': expected one of {choices}" in result.output
    assert "Traceback" not in result.output
    assert thread_count(tmp_path / "cli.sqlite") == 0


def test_studio_renders_the_choices_as_choices() -> None:
    from foreman import graph

    schema = graph.get_context_jsonschema()["properties"]
    assert schema["scheduler"]["enum"] == ["dataflow", "waves"]
    assert schema["structured_output_method"]["enum"] == [
        "function_calling", "json_schema", "json_mode",
    ]  # fmt: skip
    status = graph.get_output_jsonschema()["properties"]["status"]
    assert {"done", "partial", "unanswered", "over_budget"} <= set(status["enum"])
