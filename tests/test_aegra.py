"""Scale-out on Aegra: two instances on one PostgreSQL and one Redis, one killed mid-run.

`deploy/aegra/cluster.py` starts two Aegra servers from `langgraph.json` on loopback, on a
fresh database and a Redis key prefix of their own. Twenty runs go in through `langgraph_sdk`,
half through each instance. Workers call a loopback OpenAI-compatible model that answers with
Foreman's offline engine after a delay, so runs last seconds and every call names its run's
house. Halfway through the runs, the instance executing more of them gets SIGKILL. Every run
must then succeed, no model call answered before the kill may be asked again, and no thread
may hold anything of another. See docs/aegra.md for the figures.

Needs `.aegra/venv` (`make aegra-install`, Python >= 3.12), PostgreSQL and Redis on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from deploy.aegra.cluster import Cluster, Instance, is_installed, venv_python
from graph.offline.model import ENGINES
from tests.support.openai_server import (
    OpenAICompatServer,
    Reply,
    requested_schema_name,
    split_messages,
    structured_reply,
)
from tests.support.ports import free_ports

pytestmark = [
    pytest.mark.aegra,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not is_installed(), reason="no Aegra virtualenv (.aegra/venv): run `make aegra-install`"
    ),
]

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("FOREMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FOREMAN_TEST_REDIS", "redis://127.0.0.1:6379/0")
N_RUNS = 20
# Seconds each worker model call takes: a run makes 3 waves of calls.
MODEL_DELAY_S = 1.5
# A call answered this long before the kill had time to be checkpointed: it must not recur.
CHECKPOINT_GRACE_S = 0.5
FINISH_TIMEOUT_S = 120.0
HOUSE = re.compile(r"\bhouse (\d{2})\b")
CONTEXT: dict[str, Any] = {
    "planner_model": "offline",
    "worker_model": "local:slow",
    "worker_models": {},
    "validator_model": "offline",
    "synthesizer_model": "offline",
    "judge": False,
    "corpus_dir": str(REPO / "data" / "corpus"),
}
# Fast crash recovery for the test: a lease not renewed for 5 s is reaped within 1 s.
AEGRA_TEST_ENV = {
    "HEARTBEAT_INTERVAL_SECONDS": "1",
    "LEASE_DURATION_SECONDS": "5",
    "REAPER_INTERVAL_SECONDS": "1",
    "BLPOP_TIMEOUT_SECONDS": "1",
    "BLOCKING_SOCKET_TIMEOUT_SECONDS": "7",
}


def request(house: int) -> str:
    """The request of run `house`; the planner puts the house in every subtask objective."""
    topic = f"residential heat pumps for house {house:02d}"
    return f"Write a report on {topic}: how they work and running costs"


@dataclass
class Call:
    """One chat completion the model server received."""

    house: int | None
    key: str
    start: float
    end: float | None = None


@dataclass
class SlowModel:
    """Answers like Foreman's offline engine, `delay_s` later; records every call."""

    delay_s: float
    calls: list[Call] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, req: dict) -> Reply:
        schema = requested_schema_name(req)
        system, human = split_messages(req)
        found = HOUSE.search(human)
        call = Call(int(found.group(1)) if found else None, f"{schema}\n{human}", time.monotonic())
        with self.lock:
            self.calls.append(call)
        if schema not in ENGINES:
            return Reply(error=(400, f"test server: no offline engine for {schema!r}"))
        reply = structured_reply(req, ENGINES[schema](system, human))
        self.stopped.wait(self.delay_s)
        call.end = time.monotonic()
        return reply

    def answered(self) -> Counter[int | None]:
        """Calls answered so far, by house."""
        with self.lock:
            return Counter(c.house for c in self.calls if c.end is not None)

    def in_flight(self) -> Counter[int | None]:
        """Calls not answered yet, by house."""
        with self.lock:
            return Counter(c.house for c in self.calls if c.end is None)


@dataclass
class Submitted:
    """One run as submitted."""

    house: int
    thread_id: str
    run_id: str
    via: str


@pytest.fixture
def model() -> Iterator[tuple[SlowModel, OpenAICompatServer]]:
    slow = SlowModel(MODEL_DELAY_S)
    with OpenAICompatServer(slow) as server:
        yield slow, server
        slow.stopped.set()


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database for the cluster, dropped afterwards."""
    name = f"foreman_aegra_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cluster(
    tmp_path: Path, database: str, model: tuple[SlowModel, OpenAICompatServer]
) -> Iterator[Cluster]:
    """Two Aegra instances on free loopback ports; both process groups stopped afterwards."""
    _, server = model
    prefix = f"foreman-test:{uuid.uuid4().hex[:10]}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FOREMAN_", "OPENAI_", "LOCAL_", "LANGSMITH_", "LANGCHAIN_"))
    }
    env.update(
        AEGRA_TEST_ENV,
        DATABASE_URL=database,
        REDIS_URL=REDIS_URL,
        WORKER_QUEUE_KEY=f"{prefix}:jobs",
        REDIS_CHANNEL_PREFIX=f"{prefix}:run:",
        LOCAL_BASE_URL=server.base_url,
        LOCAL_API_KEY="test",
        FOREMAN_HOME=str(tmp_path / "foreman"),
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
    )
    aegra = Cluster(ports=free_ports(2), log_dir=tmp_path, env=env)
    try:
        aegra.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        aegra.stop()
        pytest.fail(f"Aegra did not start: {exc}\n" + _logs(aegra))
    try:
        yield aegra
    finally:
        aegra.stop()
        _delete_redis_keys(f"{prefix}:*")


@pytest.fixture
async def clients(cluster: Cluster) -> AsyncIterator[list[LangGraphClient]]:
    with pytest.MonkeyPatch.context() as mp:
        # The SDK's httpx client honours proxy variables; loopback must go direct.
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            mp.delenv(var, raising=False)
            mp.delenv(var.lower(), raising=False)
        made = [get_client(url=i.url, api_key=None, timeout=30) for i in cluster.instances]
        yield made
        for client in made:
            await client.aclose()


def _delete_redis_keys(pattern: str) -> None:
    """Delete the test's keys with the Aegra virtualenv's redis client (Foreman has none)."""
    code = (
        "import redis, sys; r = redis.Redis.from_url(sys.argv[1]); "
        "[r.delete(k) for k in r.scan_iter(sys.argv[2])]"
    )
    subprocess.run([str(venv_python()), "-c", code, REDIS_URL, pattern], check=True, timeout=30)


def _logs(cluster: Cluster) -> str:
    return "\n".join(i.tail() for i in cluster.instances)


async def _submit(house: int, client: LangGraphClient, via: str) -> Submitted:
    thread = await client.threads.create(metadata={"house": house})
    run = await client.runs.create(
        thread["thread_id"],
        "foreman",
        input={"request": request(house)},
        context=CONTEXT,
        stream_mode=["values", "custom"],
    )
    return Submitted(house, thread["thread_id"], run["run_id"], via)


@dataclass
class Follower:
    """A client following one run's stream, and what it saw."""

    run: Submitted
    events: list[tuple[str, Any]] = field(default_factory=list)
    last_id: str | None = None
    through: list[str] = field(default_factory=list)


async def _follow(follower: Follower, client: LangGraphClient, name: str) -> None:
    """Follow the stream through `client`, from the last event received (or the start)."""
    follower.through.append(name)
    run = follower.run
    async for part in client.runs.join_stream(
        run.thread_id, run.run_id, last_event_id=follower.last_id
    ):
        follower.events.append((part.event, part.data))
        follower.last_id = part.id or follower.last_id


async def _wait_until_mid_run(
    cluster: Cluster, model: SlowModel, runs: list[Submitted], timeout_s: float = 60.0
) -> None:
    """Until every run is held by a worker and has model answers behind it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        table = cluster.leases()
        held = all(table[r.run_id][1] for r in runs if r.run_id in table)
        answered, pending = model.answered(), model.in_flight()
        if len(table) == len(runs) and held and all(answered[r.house] >= 2 for r in runs):
            if all(pending[r.house] for r in runs):
                # Every run is waiting for its next wave of answers: halfway through it,
                # the answers of the last wave are well checkpointed.
                await asyncio.sleep(model.delay_s / 2)
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"runs not all under way: {table}\n{_logs(cluster)}")


async def _wait_finished(client: LangGraphClient, runs: list[Submitted]) -> dict[str, str]:
    """Poll every run through `client` until it is terminal; its final status by run id."""
    done: dict[str, str] = {}
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while len(done) < len(runs) and time.monotonic() < deadline:
        for r in runs:
            if r.run_id not in done:
                run = await client.runs.get(r.thread_id, r.run_id)
                if run["status"] in ("success", "error", "interrupted", "timeout"):
                    done[r.run_id] = run["status"]
        await asyncio.sleep(0.5)
    return done


@dataclass
class Kill:
    """The instance killed, when, and the runs it was executing."""

    victim: Instance
    survivor: Instance
    at: float
    runs: set[str]
    load: dict[str, int]


def _kill_busier(cluster: Cluster) -> Kill:
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


async def _check_thread(client: LangGraphClient, follower: Follower) -> int:
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


def _repeats(calls: list[Call], houses: set[int], at: float) -> tuple[list[Call], int]:
    """The model calls asked again (their first occurrence), and how many calls of `houses`
    the kill at `at` cut off."""
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
    cut_off = sum(
        1 for c in calls if c.house in houses and c.start < at and (c.end or float("inf")) > at
    )
    return repeated, cut_off


@pytest.mark.timeout(300)
async def test_twenty_runs_survive_a_killed_instance(
    cluster: Cluster,
    clients: list[LangGraphClient],
    model: tuple[SlowModel, OpenAICompatServer],
    tmp_path: Path,
) -> None:
    slow, _ = model
    names = [i.name for i in cluster.instances]
    started = time.monotonic()
    runs = await asyncio.gather(*(_submit(h, clients[h % 2], names[h % 2]) for h in range(N_RUNS)))
    assert Counter(r.via for r in runs) == {names[0]: N_RUNS // 2, names[1]: N_RUNS // 2}
    # Each run is followed through the instance it was submitted to.
    followers = [Follower(r) for r in runs]
    following = {
        f.run.run_id: asyncio.create_task(_follow(f, clients[f.run.house % 2], f.run.via))
        for f in followers
    }

    await _wait_until_mid_run(cluster, slow, runs)
    kill = _kill_busier(cluster)

    # Streams from the dead instance break; as a load balancer would, send their clients to
    # the survivor, to join again from the last event they received. (Left alone, the SDK
    # retries the dead address for about a minute before it gives up.)
    client = clients[cluster.instances.index(kill.survivor)]
    for f in followers:
        if f.run.via == kill.victim.name:
            following[f.run.run_id].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following[f.run.run_id]
            following[f.run.run_id] = asyncio.create_task(_follow(f, client, kill.survivor.name))

    statuses = await _wait_finished(client, runs)
    finished_at = time.monotonic()
    assert statuses == {r.run_id: "success" for r in runs}, f"{statuses}\n{_logs(cluster)}"
    await asyncio.wait_for(asyncio.gather(*following.values()), timeout=30)

    # The dead instance's runs were re-queued once each; every other run ran once.
    final = cluster.leases()
    assert {rid for rid, (_, _, retries) in final.items() if retries} == kill.runs, final
    assert all(retries <= 1 and holder is None for _, holder, retries in final.values())

    attempts = [await _check_thread(client, f) for f in followers]

    # No model call answered before the kill was asked again: what the dead instance's runs
    # had finished came back from their checkpoints; only calls the kill cut off were redone.
    victim_houses = {r.house for r in runs if r.run_id in kill.runs}
    repeated, cut_off = _repeats(slow.calls, victim_houses, kill.at)
    assert all(c.house in victim_houses for c in repeated), "a surviving run repeated a call"
    early = [c for c in repeated if c.end is not None and c.end < kill.at - CHECKPOINT_GRACE_S]
    assert not early, f"{len(early)} calls answered before the kill were asked again"
    assert len(slow.calls) == sum(attempts) + len(repeated)

    summary = {
        "runs": N_RUNS,
        "succeeded": sum(1 for s in statuses.values() if s == "success"),
        "killed": kill.victim.name,
        "runs_executing_per_instance_at_kill": kill.load,
        "runs_on_killed_instance": len(kill.runs),
        "runs_submitted_via_killed_instance": sum(1 for r in runs if r.via == kill.victim.name),
        "model_calls": len(slow.calls),
        "worker_attempts_recorded": sum(attempts),
        "calls_cut_off_by_kill": cut_off,
        "calls_repeated": len(repeated),
        "streams_rejoined_on_survivor": sum(1 for f in followers if len(f.through) > 1),
        "seconds_submit_to_kill": round(kill.at - started, 1),
        "seconds_kill_to_all_done": round(finished_at - kill.at, 1),
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\naegra scale-out:", json.dumps(summary))
