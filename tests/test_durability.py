"""Crash harness: a run killed with SIGKILL in each phase resumes correctly, SQLite and PostgreSQL.

A child process runs a five-subtask request (`crash_child.DAG`: a, b in parallel; c after a,
d after b; e after c and d) with the judge on, and is held in one step of the phase under
test; the parent waits for the child's log markers, kills it, resumes the thread in-process,
and checks four things: the answer equals that of an uninterrupted run; no subtask whose
accepted result was checkpointed before the kill ran again (and every other one ran exactly
once more); every result is attached to the subtask that produced it; every checkpoint of
the thread reads back.

What "killed during X" means, precisely:

- planning: the planner model call is in flight; the checkpoint the plan node starts from
  is saved. Nothing was dispatched.
- workers: a and b are accepted and their records saved as writes of the dispatch step;
  c and d are both mid-work in parallel (their simulated workers started and are waiting).
- validation: the validator's judge model is in flight on c's and on d's output (both
  workers finished; neither attempt has a verdict), a and b accepted and saved. With
  `judge` on, this is where validation does its work (`check_output`, inside each
  subtask's execution). The `validate` node itself only routes: a synchronous function of
  the state, with no I/O and no await, that saves nothing until it returns, so a kill
  while it runs is a kill just before it, which leaves the thread at the dispatch
  checkpoint, as here; just after it, at the checkpoint that routes to synthesis, as in
  the synthesis case.
- synthesis: the synthesizer model call is in flight, and the checkpoint that routes to
  it is saved: all five results are in the state.

The held step (a model call or a simulated worker) waits far longer than any test, so the
kill always lands inside it, whatever the load; the parent waits for log markers, never
for a fixed time. "Accepted before the kill" is read from the database after the kill
(records in the latest checkpoint and in its pending task writes), not from the child's
log: LangGraph saves checkpoints and task writes in the background (the child runs with
the default durability, "async"), so an acceptance the child had logged may not have
reached the database yet. The markers include those saves, so each phase leaves a known
set of accepted subtasks, and the test checks that it did.

The children are forked from one process that has already imported the graph (a
multiprocessing fork server), which saves an interpreter start and ~1.5 s of imports each.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest

from foreman import build_graph
from foreman.checkpointers import open_checkpointer
from foreman.databases import is_postgres, sqlite_path
from tests.support import crash_child, sim
from tests.support.crash_child import DAG

PG_URL = os.environ.get("FOREMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ALL = frozenset(DAG)


@dataclass(frozen=True)
class Expect:
    """Where a kill in a phase leaves the thread."""

    next: tuple[str, ...]
    """The nodes the resumed run starts with."""
    accepted: frozenset[str]
    """Subtasks whose accepted records were saved before the kill."""
    interrupted: frozenset[str]
    """Subtasks whose worker had started but whose record was not saved."""
    unjudged: frozenset[str] = frozenset()
    """Interrupted subtasks whose worker had finished: the kill landed in their judgement."""


EXPECT = {
    "planning": Expect(("plan",), frozenset(), frozenset()),
    "workers": Expect(("dispatch",), frozenset("ab"), frozenset("cd")),
    "validation": Expect(("dispatch",), frozenset("ab"), frozenset("cd"), frozenset("cd")),
    "synthesis": Expect(("synthesize",), ALL, frozenset()),
}
_REFERENCE: list[str] = []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'runs.sqlite'}"
    return PG_URL


@pytest.fixture(scope="module")
def forkserver() -> ForkServerContext:
    """Children forked from a server that imported the graph once."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.support.crash_child"])
    return ctx


async def reference_answer() -> str:
    """The answer of an uninterrupted run of the same request (computed once per session)."""
    if not _REFERENCE:
        _REFERENCE.append((await crash_child.uninterrupted())["answer"])
    return _REFERENCE[0]


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def starts(lines: list[str]) -> Counter[str]:
    """How many times each subtask's simulated worker started."""
    words = (line.split() for line in lines)
    return Counter(w[1] for w in words if len(w) == 2 and w[0] == "start" and w[1] in DAG)


def ignores(pid: int, sig: int) -> bool | None:
    """Whether process `pid` ignores `sig` (SIG_IGN), from /proc; None where it cannot tell."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    ignored = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn"))
    return bool(int(ignored, 16) >> (sig - 1) & 1)


def start_and_kill(
    ctx: ForkServerContext,
    db: str,
    thread: str,
    phase: str,
    log: Path,
    sig: int,
    env: dict[str, str],
    markers: tuple[str, ...],
) -> None:
    """Run the child until every marker of `phase` (and `markers`) is logged, then `sig` it."""
    child = ctx.Process(
        target=crash_child.main, args=(db, thread, phase, str(log), env), daemon=True
    )
    child.start()
    try:
        deadline = time.monotonic() + 30
        for marker in crash_child.PHASES[phase].markers + markers:
            while marker not in log_lines(log):
                assert child.exitcode is None, f"child exited {child.exitcode}: {log_lines(log)}"
                assert time.monotonic() < deadline, f"no {marker!r} in {log_lines(log)}"
                time.sleep(0.01)
        assert child.pid is not None
        os.kill(child.pid, sig)
        child.join(timeout=30)
        if child.exitcode is None:  # still running: say where it is stuck before killing it
            os.kill(child.pid, signal.SIGUSR1)
            time.sleep(1)
            stacks, tasks = Path(f"{log}.stacks"), Path(f"{log}.tasks")
            raise AssertionError(
                f"the child outlived signal {sig} by 30 s (ignoring it: {ignores(child.pid, sig)})"
                "; its threads:\n"
                + (stacks.read_text() if stacks.exists() else "(no dump)")
                + "\nits asyncio tasks:\n"
                + (tasks.read_text() if tasks.exists() else "(no dump)")
            )
    finally:
        if child.exitcode is None:
            child.kill()
            child.join()
    # a SIGKILL shows as -9; SIGINT raises KeyboardInterrupt in the child (exit code 1)
    assert child.exitcode == (-sig if sig == signal.SIGKILL else 1), child.exitcode


async def saved_state(db: str, thread: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The nodes the thread resumes with, and the subtasks accepted in its checkpoints."""
    async with open_checkpointer(db) as saver:
        app = build_graph(sim.registry()).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": thread}}
        state = await app.aget_state(config)
        latest = await saver.aget_tuple(config)  # type: ignore[arg-type]
    assert latest is not None, "no checkpoint was saved before the kill"
    records = list((state.values.get("results") or {}).values())
    records += crash_child.records_in((ch, v) for _, ch, v in latest.pending_writes or [])
    return state.next, frozenset(r["id"] for r in records if r["status"] == "accepted")


async def assert_checkpoints_intact(db: str, thread: str) -> dict[str, Any]:
    """Every checkpoint of the thread, in every namespace, reads back; returns the last values."""
    async with open_checkpointer(db) as saver:
        app = build_graph(sim.registry()).compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": thread}}
        history = [s async for s in app.aget_state_history(config)]
        listed = [t async for t in saver.alist(config)]  # no checkpoint_ns: all namespaces
        for tup in listed:
            again = await saver.aget_tuple(tup.config)
            assert again is not None
            assert again.checkpoint["id"] == tup.config["configurable"]["checkpoint_id"]
            assert again.checkpoint == tup.checkpoint and again.metadata == tup.metadata
            assert again.pending_writes == tup.pending_writes
        values = (await app.aget_state(config)).values
    # the root namespace is one chain, newest first, that the graph reads state by state
    root = [t for t in listed if t.config["configurable"]["checkpoint_ns"] == ""]
    ids = [t.config["configurable"]["checkpoint_id"] for t in root]
    assert [s.config["configurable"]["checkpoint_id"] for s in history] == ids
    parents = [
        t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None for t in root
    ]
    assert parents == [*ids[1:], None]
    for namespace in {t.config["configurable"]["checkpoint_ns"] for t in listed} - {""}:
        chain = [t for t in listed if t.config["configurable"]["checkpoint_ns"] == namespace]
        known = {t.checkpoint["id"] for t in chain}
        assert all(
            t.parent_config is None or t.parent_config["configurable"]["checkpoint_id"] in known
            for t in chain
        )
    for snapshot in history:  # at no point was a record filed under another subtask
        for sid, rec in (snapshot.values.get("results") or {}).items():
            assert rec["id"] == sid
    if not is_postgres(db):
        with sqlite3.connect(sqlite_path(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return values


def assert_results_attached(values: dict[str, Any]) -> None:
    """Each result, and each of its attempts, is the work of the subtask it is filed under."""
    results = values["results"]
    assert set(results) == set(DAG)
    for sid, rec in results.items():
        text = crash_child.expected_text(sid)  # names sid and its inputs
        assert (rec["id"], rec["worker"], rec["status"]) == (sid, "sim", "accepted"), rec
        assert rec["text"] == text and rec["output"]["text"] == text
        assert rec["attempts"], sid
        for att in rec["attempts"]:
            assert att["worker"] == "sim"
            assert att["input"]["objective"] == crash_child.objective(sid)
            assert att["input"]["dependencies"] == sorted(DAG[sid][1])
            assert att["output"]["text"] == text


async def kill_and_resume(
    forkserver: ForkServerContext,
    db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    phase: str,
    sig: int = signal.SIGKILL,
    env: dict[str, str] | None = None,
    expect: Expect | None = None,
    markers: tuple[str, ...] = (),
) -> None:
    expect = expect or EXPECT[phase]
    log = tmp_path / "sim.log"
    thread = f"crash-{phase}-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(
        start_and_kill, forkserver, db, thread, phase, log, sig, env or {}, markers
    )
    lines = log_lines(log)
    before = starts(lines)
    next_nodes, accepted = await saved_state(db, thread)
    # the kill landed where the phase says
    assert (next_nodes, accepted) == (expect.next, expect.accepted), lines
    assert set(before) - accepted == expect.interrupted, lines
    ended = {sid for sid in DAG if f"end {sid}" in lines}
    judged = {sid for sid in DAG if f"end judge {sid}" in lines}
    assert (expect.interrupted & ended, expect.unjudged & judged) == (expect.unjudged, set()), lines

    monkeypatch.setenv("SIM_LOG", str(log))
    resumed = await crash_child.run(db, thread, resume=True)
    assert resumed["status"] == "done"
    after = starts(log_lines(log))
    # (2) accepted before the kill: ran once in all; anything else: once more after it
    assert after == {sid: before[sid] + (sid not in accepted) for sid in DAG}
    assert all(after[sid] == 1 for sid in accepted)

    values = await assert_checkpoints_intact(db, thread)  # (4)
    assert values["answer"] == resumed["answer"] == await reference_answer()  # (1)
    assert_results_attached(values)  # (3)


async def test_uninterrupted_run_is_deterministic_and_judged() -> None:
    """The reference answer is reproducible, lists every result, and the judge saw each."""
    first = await crash_child.uninterrupted("reference-1")
    second = await crash_child.uninterrupted("reference-2")
    assert first["answer"] == second["answer"] == await reference_answer()
    assert first["answer"].splitlines() == [f"- {s}: {crash_child.expected_text(s)}" for s in DAG]
    assert first["usage"]["scripted:judge"]["calls"] == len(DAG)
    assert_results_attached(first)


@pytest.mark.parametrize("phase", list(EXPECT))
async def test_sigkill_then_resume(
    phase: str,
    db: str,
    forkserver: ForkServerContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await kill_and_resume(forkserver, db, tmp_path, monkeypatch, phase)


async def test_sigkill_with_the_waves_scheduler(
    forkserver: ForkServerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREMAN_SCHEDULER", "waves")
    await kill_and_resume(
        forkserver,
        f"sqlite:{tmp_path / 'runs.sqlite'}",
        tmp_path,
        monkeypatch,
        "workers",
        env={"FOREMAN_SCHEDULER": "waves"},
        # the second wave's checkpoint is saved: the kill lands in the wave, not before it
        markers=("checkpoint before worker:c,worker:d",),
        expect=Expect(("worker", "worker"), frozenset("ab"), frozenset("cd")),
    )


async def test_ctrl_c_mid_dispatch_then_resume(
    forkserver: ForkServerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (SIGINT) while c and d work: the child stops; the resume is a SIGKILL's."""
    await kill_and_resume(
        forkserver,
        f"sqlite:{tmp_path / 'runs.sqlite'}",
        tmp_path,
        monkeypatch,
        "workers",
        signal.SIGINT,
    )
