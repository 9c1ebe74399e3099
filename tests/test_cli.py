"""The `foreman` command line, run in-process with Typer's runner (offline provider)."""

import json

import pytest
from typer.testing import CliRunner

from foreman.cli import app

REQUEST = "Write a report on residential heat pumps: how they work and running costs"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("FOREMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FOREMAN_DB", f"sqlite:{tmp_path / 'cli.sqlite'}")
    for var in (
        "FOREMAN_PLANNER_MODEL",
        "FOREMAN_WORKER_MODEL",
        "FOREMAN_VALIDATOR_MODEL",
        "FOREMAN_SYNTHESIZER_MODEL",
    ):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), catch_exceptions=False, input=input)

    return invoke


def test_help_explains_commands(cli):
    out = cli("--help").output
    for word in ("run", "resume", "threads", "show", "Exit codes"):
        assert word in out
    run_help = cli("run", "--help").output
    assert "--review-plan" in run_help and "--db" in run_help and "ROLE=PROVIDER:MODEL" in run_help


def test_run_prints_answer_and_audit_trail(cli, tmp_path):
    result = cli("run", REQUEST, "--thread", "t1")
    assert result.exit_code == 0, result.output
    assert "Offline extractive mode" in result.output
    assert "Audit trail" in result.output
    audit = json.loads((tmp_path / "home" / "runs" / "t1" / "audit.json").read_text())
    assert audit["status"] == "done" and audit["results"]["w2"]["status"] == "accepted"
    shown = cli("show", "t1", "--format", "json")
    assert json.loads(shown.output)["plan_version"] == 1
    md = cli("show", "t1", "--format", "md").output
    assert "## Plan v1" in md and "verdict **retry**" in md and "## Usage by model" in md
    assert "t1" in cli("threads").output


def test_review_pause_bad_answer_then_approve(cli):
    paused = cli("run", REQUEST, "--thread", "t2", "--review-plan")
    assert paused.exit_code == 3
    assert "foreman resume t2" in paused.output
    bad = cli("resume", "t2", "--answer", '{"action": "maybe"}')
    assert bad.exit_code == 2
    assert "not valid" in bad.output and "approve" in bad.output
    assert "waiting: plan_review" in cli("threads").output  # the thread is untouched
    done = cli("resume", "t2", "--answer", '{"action": "approve"}')
    assert done.exit_code == 0, done.output
    assert "status done" in done.output


def test_bad_model_spec_and_unknown_provider(cli, monkeypatch):
    bad = cli("run", REQUEST, "--model", "planner")
    assert bad.exit_code == 2 and "ROLE=PROVIDER:MODEL" in bad.output
    monkeypatch.delenv("NOWHERE_BASE_URL", raising=False)
    unknown = cli("run", REQUEST, "--thread", "t3", "--model", "planner=nowhere:big")
    assert unknown.exit_code == 2
    assert "NOWHERE_BASE_URL" in unknown.output


def test_missing_thread_and_corpus(cli, tmp_path):
    assert cli("resume", "nope").exit_code == 2
    missing = cli("run", REQUEST, "--corpus", str(tmp_path / "absent"))
    assert missing.exit_code == 2 and "corpus folder not found" in missing.output


def test_questions_answered_in_the_terminal(cli):
    rejected_then_approved = "reject\ndrop running costs\n\n"
    result = cli(
        "run", REQUEST, "--thread", "t4", "--review-plan", "--ask", input=rejected_then_approved
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Plan v") == 2  # reviewed twice: before and after the rejection
    shown = json.loads(cli("show", "t4", "--format", "json").output)
    assert shown["plan_version"] == 2
    assert not any(
        "running costs" in s["objective"] for s in shown["plan_history"][-1]["plan"]["subtasks"]
    )


def test_leaving_a_question_for_later(cli):
    paused = cli("run", REQUEST, "--thread", "t5", "--review-plan", "--ask", input="later\n")
    assert paused.exit_code == 3
    resumed = cli("resume", "t5", "--ask", input="approve\n")
    assert resumed.exit_code == 0 and "status done" in resumed.output


@pytest.mark.postgres
def test_run_and_list_on_postgres(cli):
    import uuid

    from tests.test_durability import PG_URL

    thread = f"cli-{uuid.uuid4().hex[:8]}"
    result = cli("run", REQUEST, "--thread", thread, "--db", PG_URL, "--no-ask")
    assert result.exit_code == 0, result.output
    listed = cli("threads", "--db", PG_URL).output
    assert thread in listed and "done" in listed
    shown = json.loads(cli("show", thread, "--db", PG_URL, "--format", "json").output)
    assert shown["status"] == "done"
