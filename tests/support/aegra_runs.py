"""Runs of the Aegra scale-out test: a slow loopback model, and submit, follow, kill, check.

`tests/test_aegra.py` submits runs whose requests name a house, holds each of them in the
middle of its model calls, SIGKILLs the busier instance and checks every thread afterwards.
`SlowModel` answers like Foreman's offline engine after a delay and records every call by
house, so the test can tell which calls the kill made the survivor ask again; the calls it
holds wait at a gate the test opens after the kill, so no run can finish before it. The
helpers here drive the runs through `langgraph_sdk` and read the cluster's leases and saved
subtasks; they live apart so the test module holds only its settings, fixtures and the test.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg
from langgraph_sdk.client import LangGraphClient

from deploy.aegra.cluster import Cluster, Instance, venv_python
from tests.support.engine_models import offline_reply
from tests.support.openai_server import (
    Reply,
    requested_schema_name,
    split_messages,
)

HOUSE = re.compile(r"\bhouse (\d{2})\b")


def request(house: int) -> str:
    """The request of run `house`; the planner puts the house in every subtask objective."""
    topic = f"residential heat pumps for house {house:02d}"
    return f"Write a report on {topic}: how they work and running costs"


@dataclass(eq=False)  # compared by identity: the same call, not an equal one
class Call:
    """One chat completion the model server received."""

    house: int | None
    key: str
    start: float
    held: bool = False
    end: float | None = None


@dataclass
class SlowModel:
    """Answers like Foreman's offline engine, `delay_s` later; records every call.

    Calls asking for the schema `hold` then wait at a gate until `release()`, so a run that
    has reached them cannot go further until the test lets it, however slow the machine.
    """

    delay_s: float
    hold: str
    calls: list[Call] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, req: dict) -> Reply:
        schema = requested_schema_name(req)
        system, human = split_messages(req)
        found = HOUSE.search(human)
        house = int(found.group(1)) if found else None
        held = schema == self.hold and not self.gate.is_set()
        call = Call(house, f"{schema}\n{human}", time.monotonic(), held)
        with self.lock:
            self.calls.append(call)
        reply = offline_reply(req)
        self.stopped.wait(self.delay_s)
        if call.held:
            self.gate.wait()
        call.end = time.monotonic()
        return reply

    def release(self) -> None:
        """Open the gate: held calls answer, and calls from now on are not held."""
        self.gate.set()

    def answered(self) -> Counter[int | None]:
        """Calls answered so far, by house."""
        with self.lock:
            return Counter(c.house for c in self.calls if c.end is not None)

    def in_flight(self) -> Counter[int | None]:
        """Calls not answered yet, by house."""
        with self.lock:
            return Counter(c.house for c in self.calls if c.end is None)

    def at_gate(self) -> Counter[int | None]:
        """Calls waiting at the gate, by house."""
        with self.lock:
            return Counter(c.house for c in self.calls if c.held and c.end is None)


@dataclass
class Submitted:
    """One run as submitted."""

    house: int
    thread_id: str
    run_id: str
    via: str


@dataclass
class Follower:
    """A client following one run's stream, and what it saw."""

    run: Submitted
    events: list[tuple[str, Any]] = field(default_factory=list)
    last_id: str | None = None
    through: list[str] = field(default_factory=list)


@dataclass
class Kill:
    """The instance killed, when, and the runs it was executing."""

    victim: Instance
    survivor: Instance
    at: float
    runs: set[str]
    load: dict[str, int]


def delete_redis_keys(redis_url: str, pattern: str) -> None:
    """Delete the test's keys with the Aegra virtualenv's redis client (Foreman has none)."""
    code = (
        "import redis, sys; r = redis.Redis.from_url(sys.argv[1]); "
        "[r.delete(k) for k in r.scan_iter(sys.argv[2])]"
    )
    subprocess.run([str(venv_python()), "-c", code, redis_url, pattern], check=True, timeout=30)


def logs(cluster: Cluster) -> str:
    return "\n".join(i.tail() for i in cluster.instances)


async def submit(
    house: int, client: LangGraphClient, via: str, context: dict[str, Any]
) -> Submitted:
    thread = await client.threads.create(metadata={"house": house})
    run = await client.runs.create(
        thread["thread_id"],
        "foreman",
        input={"request": request(house)},
        context=context,
        stream_mode=["values", "custom"],
    )
    return Submitted(house, thread["thread_id"], run["run_id"], via)


async def follow(follower: Follower, client: LangGraphClient, name: str) -> None:
    """Follow the stream through `client`, from the last event received (or the start)."""
    follower.through.append(name)
    run = follower.run
    async for part in client.runs.join_stream(
        run.thread_id, run.run_id, last_event_id=follower.last_id
    ):
        follower.events.append((part.event, part.data))
        follower.last_id = part.id or follower.last_id


def checkpointed_subtasks(database_url: str) -> Counter[str]:
    """Finished subtasks saved so far, by thread id.

    The dispatch node runs each subtask as a LangGraph task, and a finished task's return
    value is saved as a `__return__` write of the thread's root graph; the run that resumes
    the thread replays these instead of running their subtasks again.
    """
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT thread_id, COUNT(*) FROM checkpoint_writes "
            "WHERE channel = '__return__' AND checkpoint_ns = '' GROUP BY thread_id"
        ).fetchall()
    return Counter({str(thread): int(n) for thread, n in rows})


async def wait_until_held(
    cluster: Cluster, model: SlowModel, runs: list[Submitted], before: int, timeout_s: float
) -> None:
    """Until every run is leased by a worker and waits at the model's gate with nothing else
    in flight, its `before` calls that precede the held ones answered and saved as finished
    subtasks.

    Nothing undoes a step towards this state, since a held call cannot end before
    `model.release()`: the state is reached however slowly the runs progress, and it lasts
    until the test releases the calls. `timeout_s` only bounds a cluster that is stuck.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        table = cluster.leases()
        saved = checkpointed_subtasks(cluster.database_url)
        answered, pending, at_gate = model.answered(), model.in_flight(), model.at_gate()
        waiting = [
            r
            for r in runs
            if not (r.run_id in table and table[r.run_id][1])
            or not at_gate[r.house]
            or answered[r.house] < before
            or pending[r.house] > at_gate[r.house]  # a call that would be answered before the kill
            or saved[r.thread_id] < answered[r.house]  # an answer not saved yet
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            state = {
                r.house: (table.get(r.run_id), answered[r.house], saved[r.thread_id],
                          pending[r.house], at_gate[r.house])
                for r in waiting
            }  # fmt: skip
            raise AssertionError(
                "runs not all at the gate (lease, answered, saved, in flight, held): "
                f"{state}\n{logs(cluster)}"
            )
        await asyncio.sleep(0.1)


async def wait_finished(
    client: LangGraphClient, runs: list[Submitted], timeout_s: float
) -> dict[str, str]:
    """Poll every run through `client` until it is terminal; its final status by run id."""
    done: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < len(runs) and time.monotonic() < deadline:
        for r in runs:
            if r.run_id not in done:
                run = await client.runs.get(r.thread_id, r.run_id)
                if run["status"] in ("success", "error", "interrupted", "timeout"):
                    done[r.run_id] = run["status"]
        await asyncio.sleep(0.5)
    return done


def kill_busier(cluster: Cluster) -> Kill:
    """SIGKILL the instance executing more runs (any instance executes runs either accepted)."""
    load = Counter(holder for _, holder, _ in cluster.leases().values() if holder)
    victim = max(cluster.instances, key=lambda i: load[i.name])
    survivor = next(i for i in cluster.instances if i is not victim)
    killed_at = time.monotonic()
    victim.signal(signal.SIGKILL)
    assert victim.proc is not None
    victim.proc.wait(timeout=10)
    # The dead instance's runs are the ones still leased to it.
    after = cluster.leases()
    assert all(status in ("running", "pending") for status, _, _ in after.values()), after
    on_victim = {rid for rid, (status, holder, _) in after.items() if holder == victim.name}
    assert on_victim, f"no run was executing on {victim.name}: {after}"
    return Kill(victim, survivor, killed_at, on_victim, dict(load))


async def check_thread(client: LangGraphClient, follower: Follower) -> int:
    """Assert the thread holds its own run, request, plan, results and answer, complete and
    once, and that its follower saw the run to the end; the worker attempts recorded."""
    r = follower.run
    thread = await client.threads.get(r.thread_id)
    assert (thread["metadata"] or {}).get("house") == r.house
    assert thread["status"] == "idle"
    assert [x["run_id"] for x in await client.runs.list(r.thread_id)] == [r.run_id]
    state = await client.threads.get_state(r.thread_id)
    values: dict[str, Any] = state["values"]  # type: ignore[assignment]
    assert values["request"] == request(r.house)
    assert values["status"] == "done", values.get("error")
    houses = {int(h) for h in HOUSE.findall(values["answer"])}
    assert houses == {r.house}, f"thread of house {r.house} answers for {houses}"
    subtasks = values["plan"]["subtasks"]
    assert all(f"house {r.house:02d}" in s["objective"] for s in subtasks), subtasks
    records = values["results"]
    assert set(records) == {s["id"] for s in subtasks}
    assert {rec["status"] for rec in records.values()} == {"accepted"}
    kinds = Counter(e["kind"] for e in values["audit"])
    assert kinds["plan"] == 1 and kinds["synthesis"] == 1, kinds
    assert kinds["result"] == len(records), kinds  # no subtask settled twice

    # The stream, followed through whichever instance was alive, shows every subtask
    # accepted and ends with this thread's answer.
    progress = [d for e, d in follower.events if e == "custom" and isinstance(d, dict)]
    accepted = {
        d["id"] for d in progress if d["foreman"] == "subtask" and d["status"] == "accepted"
    }
    assert accepted == set(records), (r.house, accepted)
    last = [d for e, d in follower.events if e == "values"][-1]
    assert last["status"] == "done"
    assert {int(h) for h in HOUSE.findall(last["answer"])} == {r.house}
    assert not [d for e, d in follower.events if e == "error"], follower.events[-3:]
    return sum(len(rec["attempts"]) for rec in records.values())


def repeats(calls: list[Call], houses: set[int], at: float) -> tuple[list[Call], list[Call]]:
    """The model calls asked again (their first occurrence), and the calls of `houses` the
    kill at `at` cut off."""
    by_house: dict[int | None, list[Call]] = defaultdict(list)
    for call in calls:
        by_house[call.house].append(call)
    assert None not in by_house, [c.key[:200] for c in by_house[None]]
    repeated: list[Call] = []
    for house_calls in by_house.values():
        first: dict[str, Call] = {}
        for call in sorted(house_calls, key=lambda c: c.start):
            if call.key in first:
                repeated.append(first[call.key])
            else:
                first[call.key] = call
    cut_off = [
        c for c in calls if c.house in houses and c.start < at and (c.end or float("inf")) > at
    ]
    return repeated, cut_off
