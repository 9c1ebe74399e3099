"""Two `foreman resume` of one thread at once: the second is turned away, on both backends.

Before, both ran the remaining subtasks (twice the cost) and each wrote checkpoints on the
same parent, forking the thread. The first resume here is held inside a worker's model call
by the loopback server until the second has been refused, so the overlap is certain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HEAT_PUMPS
from tests.support.engine_models import offline_reply
from tests.support.openai_server import (
    OpenAICompatServer,
    Reply,
)

ROOT = Path(__file__).resolve().parent.parent


class HeldWorker:
    """Answers like the offline engines; worker calls wait until `release` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: dict[str, Any]) -> Reply:
        if request.get("model") == "worker":
            self.arrived.set()
            self.release.wait(60)
        return offline_reply(request)


@pytest.fixture
def held() -> Iterator[tuple[HeldWorker, OpenAICompatServer]]:
    responder = HeldWorker()
    with OpenAICompatServer(responder) as server:
        yield responder, server
    responder.release.set()


def foreman(db: str, home: Path, server: OpenAICompatServer, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "FOREMAN_DB": db,
        "FOREMAN_HOME": str(home),
        "LOCAL_BASE_URL": server.base_url,
        "LOCAL_API_KEY": "test",
        "NO_PROXY": "127.0.0.1,localhost",
        "COLUMNS": "200",
        "PYTHONPATH": str(ROOT),
    }
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(var, None)
    return subprocess.Popen(
        [sys.executable, "-m", "foreman", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_resume_of_a_running_thread_is_refused(
    backend: str,
    held: tuple[HeldWorker, OpenAICompatServer],
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.persistence import pg_url

    responder, server = held
    db = f"sqlite:{tmp_path / 'runs.sqlite'}" if backend == "sqlite" else pg_url()
    monkeypatch.setenv("LOCAL_BASE_URL", server.base_url)
    monkeypatch.setenv("LOCAL_API_KEY", "test")
    thread = f"lock-{uuid.uuid4().hex[:8]}"
    paused = cli("run", HEAT_PUMPS, "--thread", thread, "--review-plan", "--db", db,
                 "--no-ask", "--quiet", "--model", "worker=local:worker")  # fmt: skip
    assert paused.exit_code == 3, paused.output
    # the first resume runs in a process of its own, held at its first worker call
    first = foreman(db, tmp_path / "home", server, "resume", thread, "--answer",
                    '{"action": "approve"}', "--no-ask", "--quiet")  # fmt: skip
    try:
        assert responder.arrived.wait(60), "the first resume never reached a worker"
        second = cli("resume", thread, "--db", db, "--no-ask")
        assert second.exit_code == 4, second.output
        assert f"thread {thread} is being run by another foreman process" in second.output
    finally:
        responder.release.set()
    code, out = finish(first)
    assert code == 0, out
    shown = json.loads(cli("show", thread, "--db", db, "--format", "json").output)
    assert shown["status"] == "done"
    # one line of history: no checkpoint has two children (the thread did not fork)
    parents = [c["parent"] for c in shown["checkpoints"] if c["parent"]]
    assert len(parents) == len(set(parents))


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    """The lock is the process's: SIGKILL releases it, so a crash never blocks a resume."""
    db = f"sqlite:{tmp_path / 'runs.sqlite'}"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import asyncio, sys\n"
         "from foreman.locks import thread_lock\n"
         "async def main():\n"
         f"    async with thread_lock({db!r}, 't1'):\n"
         "        print('held', flush=True); await asyncio.sleep(60)\n"
         "asyncio.run(main())"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        import asyncio

        from foreman.locks import ThreadBusy, thread_lock

        async def try_lock() -> None:
            async with thread_lock(db, "t1"):
                pass

        with pytest.raises(ThreadBusy, match=f"pid {holder.pid}"):
            asyncio.run(try_lock())
        holder.kill()
        holder.wait(10)
        asyncio.run(try_lock())  # free again
    finally:
        if holder.poll() is None:
            holder.kill()
