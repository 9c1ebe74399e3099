"""A run killed with SIGKILL mid-dispatch resumes from its checkpoint: SQLite and PostgreSQL."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.support import crash_child

PG_URL = os.environ.get("FOREMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


def wait_for(log: Path, line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and line in log.read_text().splitlines():
            return
        time.sleep(0.02)
    raise AssertionError(f"child never logged {line!r}: {log.read_text() if log.exists() else ''}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'runs.sqlite'}"
    return PG_URL


def start_and_kill(db: str, thread: str, log: Path, sig: int = signal.SIGKILL) -> None:
    """Run the child until c and d are mid-work, then kill it with `sig`."""
    env = {**os.environ, "SIM_LOG": str(log), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.crash_child", db, thread], cwd=ROOT, env=env
    )
    try:
        wait_for(log, "start c")
        wait_for(log, "start d")
        time.sleep(0.3)  # a and b are accepted and checkpointed; c and d are mid-work
        child.send_signal(sig)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()


async def test_sigkill_mid_dispatch_then_resume(db, tmp_path, monkeypatch):
    await kill_and_resume(db, tmp_path, monkeypatch, signal.SIGKILL)


async def test_sigkill_with_the_waves_scheduler(tmp_path, monkeypatch):
    monkeypatch.setenv("FOREMAN_SCHEDULER", "waves")
    await kill_and_resume(
        f"sqlite:{tmp_path / 'runs.sqlite'}", tmp_path, monkeypatch, signal.SIGKILL
    )


async def test_ctrl_c_mid_dispatch_then_resume(tmp_path, monkeypatch):
    await kill_and_resume(
        f"sqlite:{tmp_path / 'runs.sqlite'}", tmp_path, monkeypatch, signal.SIGINT
    )


async def kill_and_resume(db, tmp_path, monkeypatch, sig):
    log = tmp_path / "sim.log"
    thread = f"crash-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(start_and_kill, db, thread, log, sig)
    before = Counter(log.read_text().split("\n"))
    assert before["end a"] == 1 and before["end b"] == 1 and before["end c"] == 0

    monkeypatch.setenv("SIM_LOG", str(log))
    out = await crash_child.run(db, thread, resume=True)
    assert out["status"] == "done"
    lines = Counter(log.read_text().split("\n"))
    # accepted before the kill: never run again; interrupted mid-work: run again once
    assert lines["start a"] == 1 and lines["start b"] == 1
    assert lines["start c"] == 2 and lines["start d"] == 2 and lines["start e"] == 1

    from foreman.checkpointers import open_checkpointer
    from graph import build_graph
    from tests.support import sim

    async with open_checkpointer(db) as saver:
        app = build_graph(sim.registry()).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": thread}}
        values = (await app.aget_state(config)).values
        assert {sid: r["text"].split()[0] for sid, r in values["results"].items()} == {
            s: s for s in "abcde"
        }
        assert values["results"]["e"]["text"] == "e done (inputs: c,d)"
        history = [s async for s in app.aget_state_history(config)]
        assert len(history) >= 4  # every checkpoint of the thread still reads back
    return values
