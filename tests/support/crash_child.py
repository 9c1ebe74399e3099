"""Child process for crash tests: runs a simulated plan on a real checkpointer until killed.

A phase names the step the child is held in: that step (a planner, judge or synthesizer
call, or a simulated worker) logs `start LABEL` to $SIM_LOG and then waits far longer than
any test, so the parent kills the child while the step is in flight, whatever the machine
load, without guessing with a sleep. The child also logs `saved SID` once a subtask's
accepted record is durably written to the checkpointer.

Usage: python -m tests.support.crash_child DB THREAD PHASE  (with $SIM_LOG set)
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import re
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.checkpointers import open_checkpointer
from foreman.core.models import register_provider, unregister_provider
from tests.support import sim
from tests.support.slow_model import SlowScriptedChatModel

REQUEST = "simulate a crash"
# a and b start at once; c needs a, d needs b, e needs c and d.
DAG: dict[str, tuple[float, list[str]]] = {
    "a": (0.05, []),
    "b": (0.05, []),
    "c": (0.05, ["a"]),
    "d": (0.05, ["b"]),
    "e": (0.05, ["c", "d"]),
}
HOLD_S = 120.0  # a held step outlasts any test: only the kill ends it
RETURN = "__return__"  # the channel LangGraph saves a task's return value under
BRANCH = "branch:to:"  # a checkpoint's channels named so trigger the nodes that run next
TASKS = "__pregel_tasks"  # and this one holds the `Send`s it runs next


@dataclass(frozen=True)
class Phase:
    """Where the child is held, and the log lines the parent waits for before killing it."""

    markers: tuple[str, ...]
    workers: tuple[str, ...] = ()
    """Simulated subtasks held mid-work."""
    calls: tuple[tuple[str, str, str, str], ...] = ()
    """Model calls held in flight: (model, schema, prompt substring, label)."""


PHASES = {
    "planning": Phase(
        markers=("checkpoint before plan", "start plan"),
        calls=(("planner", "Plan", "<request>", "plan"),),
    ),
    "workers": Phase(
        markers=("checkpoint before dispatch", "saved a", "saved b", "start c", "start d"),
        workers=("c", "d"),
    ),
    "validation": Phase(
        markers=(
            "checkpoint before dispatch",
            "saved a",
            "saved b",
            "start judge c",
            "start judge d",
        ),
        calls=(
            ("judge", "Verdict", "<output>c done", "judge c"),
            ("judge", "Verdict", "<output>d done", "judge d"),
        ),
    ),
    "synthesis": Phase(
        markers=("checkpoint before synthesize", "start synth"),
        calls=(("synth", "text", "<results>", "synth"),),
    ),
}


def objective(sid: str) -> str:
    """The objective of a subtask: names it, and ends with the seconds its worker waits."""
    return f"{sid}: wait {DAG[sid][0]}"


def expected_text(sid: str) -> str:
    """What the simulated worker answers for a subtask of `DAG`."""
    return f"{sid} done (inputs: {','.join(sorted(DAG[sid][1]))})"


def plan() -> dict[str, Any]:
    return {
        "goal": "simulated",
        "subtasks": [
            {"id": sid, "worker": "sim", "objective": objective(sid), "inputs": deps}
            for sid, (_, deps) in DAG.items()
        ],
    }


def report(prompt: str) -> str:
    """The synthesizer's answer: every result it was given, by subtask, in prompt order."""
    results = re.findall(r'<result id="([^"]+)"[^>]*>\n(.*?)\n</result>', prompt, re.S)
    return "\n".join(f"- {sid}: {text}" for sid, text in results)


def models(phase: Phase | None = None) -> dict[str, SlowScriptedChatModel]:
    """Register the scripted planner, judge and synthesizer; hold the calls `phase` names."""
    table = {name: SlowScriptedChatModel(model_name=name) for name in ("planner", "judge", "synth")}
    table["planner"].on("Plan", "<request>", plan())
    table["judge"].on("Verdict", "<output>", {"accept": True, "feedback": ""})
    table["synth"].on("text", "<results>", report)
    for model, schema, contains, label in phase.calls if phase else ():
        table[model].hold(schema, contains, label, HOLD_S)
    register_provider(
        "scripted", lambda name: table.setdefault(name, SlowScriptedChatModel(model_name=name))
    )
    return table


def context() -> Context:
    """Scripted models for every role, the judge on, up to four subtasks at once."""
    from tests.conftest import scripted_context

    return scripted_context(max_parallel=4, judge=True)


def records_in(writes: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Subtask records among checkpoint writes: a dispatch task's return, a worker's results."""
    found: list[dict[str, Any]] = []
    for channel, value in writes:
        if channel == RETURN and isinstance(value, dict) and "fingerprint" in value:
            found.append(value)
        elif channel == "results" and isinstance(value, dict):
            found.extend(value.values())
    return found


def triggered(channel_values: dict[str, Any]) -> list[str]:
    """The tasks a checkpoint starts next: `NODE` for an edge, `NODE:SID` for a subtask `Send`."""
    nodes = [c.removeprefix(BRANCH) for c in channel_values if c.startswith(BRANCH)]
    for send in channel_values.get(TASKS) or []:
        sid = send.arg.get("subtask", {}).get("id") if isinstance(send.arg, dict) else None
        nodes.append(f"{send.node}:{sid}" if sid else send.node)
    return sorted(nodes)


def log_saves(saver: BaseCheckpointSaver) -> None:
    """Log what `saver` has durably written: `saved SID` for an accepted subtask record,
    `checkpoint before NODES` for a checkpoint (NODES: what it triggers, see `triggered`).
    """
    put, put_writes = saver.aput, saver.aput_writes

    async def aput(config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        saved = await put(config, checkpoint, metadata, new_versions)
        sim.log(f"checkpoint before {','.join(triggered(checkpoint['channel_values']))}")
        return saved

    async def aput_writes(config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        await put_writes(config, writes, task_id, task_path)
        for rec in records_in(writes):
            if rec["status"] == "accepted":
                sim.log(f"saved {rec['id']}")

    saver.aput = aput  # type: ignore[method-assign]
    saver.aput_writes = aput_writes  # type: ignore[method-assign]


async def invoke(
    saver: BaseCheckpointSaver, thread: str, resume: bool, phase: Phase | None = None
) -> dict[str, Any]:
    """Run (or resume) the request on `saver`; return the thread's state values."""
    models(phase)
    sim.HOLD.update({sid: HOLD_S for sid in phase.workers} if phase else {})
    try:
        app = build_graph(sim.registry()).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": thread}}
        payload = None if resume else {"request": REQUEST}
        await app.ainvoke(payload, config, context=context())
        return (await app.aget_state(config)).values
    finally:
        sim.HOLD.clear()
        unregister_provider("scripted")


async def run(db: str, thread: str, resume: bool, phase: Phase | None = None) -> dict[str, Any]:
    """`invoke` on the checkpointer `db` names."""
    async with open_checkpointer(db) as saver:
        log_saves(saver)
        return await invoke(saver, thread, resume, phase)


async def uninterrupted(thread: str = "reference") -> dict[str, Any]:
    """The state values of a run nobody killed, on an in-memory checkpointer."""
    return await invoke(InMemorySaver(), thread, resume=False)


def dump_tasks(path: str) -> None:
    """Write every pending asyncio task of the running loop with its stack to `path`."""
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no running loop
        tasks = set()
    with open(path, "w", encoding="utf-8") as fh:
        for t in tasks:
            fh.write(f"{t!r}\n")
            t.print_stack(file=fh)
            fh.write("\n")


def main(db: str, thread: str, phase: str, log: str, env: dict[str, str] | None = None) -> None:
    """Child entry point: start the request and hold it in `phase` until killed."""
    os.environ.update(env or {}, SIM_LOG=log)
    # SIGUSR1 dumps every thread's stack and every asyncio task's: what a child that
    # outlives its kill is doing (the tasks from a Python handler, run once the loop wakes)
    signal.signal(signal.SIGUSR1, lambda *_: dump_tasks(f"{log}.tasks"))
    faulthandler.register(
        signal.SIGUSR1,
        file=open(f"{log}.stacks", "w"),  # noqa: SIM115
        all_threads=True,
        chain=True,
    )
    # The child stands for a `foreman run` in a terminal, where Ctrl-C raises
    # KeyboardInterrupt. A test run started as a background job of a non-interactive shell
    # (`.ci/run &`) has SIGINT ignored: POSIX has such a job inherit SIG_IGN for SIGINT and
    # SIGQUIT (Shell Command Language, 2.11 Signals and Error Handling), the fork server
    # and its children keep it (`multiprocessing.forkserver` restores the disposition it
    # started with), Python installs no handler over it, and the test's SIGINT was
    # dropped: the run went on, held in its workers. A terminal's foreground job has the
    # default, so the child sets that (Foreman itself keeps an inherited SIG_IGN, as it
    # should: that is how a shell keeps its background jobs out of Ctrl-C).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    asyncio.run(run(db, thread, resume=False, phase=PHASES[phase]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], os.environ["SIM_LOG"])
