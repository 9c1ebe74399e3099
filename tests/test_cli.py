"""The `foreman` command line, run in-process with Typer's runner (offline provider)."""

import json

import pytest

REQUEST = "Write a report on residential heat pumps: how they work and running costs"


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
    assert "## Plan v1" in md and "verdict **accept**" in md and "## Usage by model" in md
    assert "t1" in cli("threads").output


def test_review_pause_bad_answer_then_approve(cli):
    paused = cli("run", REQUEST, "--thread", "t2", "--review-plan")
    assert paused.exit_code == 3
    assert "foreman resume t2" in paused.output
    bad = cli("resume", "t2", "--answer", '{"action": "maybe"}')
    assert bad.exit_code == 2
    assert "not valid" in bad.output and "approve" in bad.output
    assert "paused, waiting: plan_review" in cli("threads").output  # the thread is untouched
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


@pytest.mark.parametrize("mode", ["sync", "async", "exit"])
def test_every_durability_mode_finishes_a_run(cli, mode):
    # "sync" once crashed in worker subgraphs (LangGraph waited for a checkpoint a graph
    # without a checkpointer never writes); see graph/execution.py.
    result = cli("run", REQUEST, "--thread", f"d-{mode}", "--durability", mode, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads(cli("show", f"d-{mode}", "--format", "json").output)["status"] == "done"


def test_unknown_durability_mode_is_a_usage_error(cli):
    result = cli("run", REQUEST, "--durability", "sometimes")
    assert result.exit_code == 2
    assert "--durability must be one of sync, async, exit" in result.output


def test_resume_after_a_kill_between_saved_writes_and_the_next_checkpoint(
    cli, tmp_path, monkeypatch
):
    """`next` is empty in that window; resume must still see the saved task and finish it."""
    monkeypatch.setenv("COLUMNS", "200")  # one table row per thread
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    db = f"sqlite:{tmp_path / 'cli.sqlite'}"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.blocked_checkpoint_child", db, "k1"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert "blocking the next checkpoint" in child.stdout.readline()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert "stopped at plan (resumable)" in cli("threads").output
    result = cli("resume", "k1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "already finished" not in result.output
    assert json.loads(cli("show", "k1", "--format", "json").output)["status"] == "done"


def test_an_escalation_shows_why_and_takes_a_retry(cli, models):
    models["worker"].on("Section", "section on running", {"status": "failed", "error": "too thin"})
    models["worker"].on("Answer", "section on running", {"status": "failed", "error": "too thin"})
    paused = cli("run", REQUEST, "--thread", "x1", "--no-ask", "--model", "worker=scripted:worker")
    assert paused.exit_code == 3
    assert "w2 (llm) failed: the worker reported failure: too thin" in paused.output
    assert "failed: None" not in paused.output
    assert "attempt 1: llm on scripted:worker, retry" in paused.output  # after the replan
    bad = cli("resume", "x1", "--answer", '{"action": "retry", "model": "nowhere:big"}')
    assert bad.exit_code == 2 and "the model for the retry cannot be used" in bad.output
    done = cli("resume", "x1", "--answer", '{"action": "retry", "model": "offline"}')
    assert done.exit_code == 0, done.output
    shown = json.loads(cli("show", "x1", "--format", "json").output)
    assert [a["model"] for a in shown["results"]["w2"]["attempts"]] == ["offline"]


def test_the_cli_starts_without_langgraph_or_the_models():
    """`foreman --help` needs the commands' options only; LangGraph and the models load
    when a command runs (they take seconds to import)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom foreman.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'langgraph', 'langchain_core', 'openai', 'bm25s', 'psycopg', 'pandas'})\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_listing_threads_reads_the_checkpointer_without_the_graph(tmp_path):
    """`foreman threads` opens LangGraph's saver only: no graph, models, workers or store."""
    import subprocess
    import sys

    db = tmp_path / "runs.sqlite"
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom foreman.cli import app\n"
        f"out = CliRunner().invoke(app, ['threads', '--db', 'sqlite:{db}'])\n"
        "assert out.exit_code == 0, out.output\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'openai', 'bm25s', "
        "'pandas', 'langchain_openai'} or m.startswith(('foreman.orchestration', "
        "'foreman.workers', 'foreman.core.models', 'langgraph.pregel', 'langgraph.graph')))\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ctrl_c_mid_dispatch_stops_the_run_and_resume_finishes_it(cli):
    """Ctrl-C while two workers wait on their model: `foreman run` stops within seconds,
    says how to go on, exits 130; `foreman resume` then finishes the run."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    with socket.create_server(("127.0.0.1", 0)) as model:  # accepts calls, never answers
        model.settimeout(60)
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "HANG_BASE_URL": f"http://127.0.0.1:{model.getsockname()[1]}/v1",
            "HANG_API_KEY": "test",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            env.pop(var, None)
        command = ["run", REQUEST, "--thread", "c1", "--model", "worker=hang:m", "--no-ask"]
        child = subprocess.Popen(
            [sys.executable, "-m", "foreman", *command],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # as a terminal starts it: a test run started in the background (`.ci/run &`)
            # would pass on SIGINT ignored, see tests/support/crash_child.py
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        calls = []
        try:
            calls = [model.accept()[0] for _ in range(2)]  # r1 and r2, dispatched together
            child.send_signal(signal.SIGINT)
            sent = time.monotonic()
            _, errors = child.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
            for call in calls:
                call.close()
    assert child.returncode == 130, errors
    assert "Interrupted. Progress is checkpointed: foreman resume c1" in errors
    assert took < 5, f"{took:.1f} s from SIGINT to exit"  # well under 1 s on two busy cores
    assert "stopped at dispatch (resumable)" in cli("threads").output
    result = cli("resume", "c1", "--model", "worker=offline", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads(cli("show", "c1", "--format", "json").output)["status"] == "done"
