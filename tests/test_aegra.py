"""Scale-out on Aegra: two instances on one PostgreSQL and one Redis, one killed mid-run.

`deploy/aegra/cluster.py` starts two Aegra servers from `langgraph.json` on loopback, on a
fresh database and a Redis key prefix of their own. Twenty runs go in through `langgraph_sdk`,
half through each instance. Workers call a loopback OpenAI-compatible model that answers with
Foreman's offline engine after a delay, so runs last seconds and every call names its run's
house. The model holds each run's section calls until the test lets them go: once every run
waits there, its research saved, the instance executing more runs gets SIGKILL, then the
model answers. Every run must then succeed, only the calls the kill cut off may be asked
again, and no thread may hold anything of another. See docs/aegra.md for the figures.

Needs `.aegra/venv` (`make aegra-install`, Python >= 3.12), PostgreSQL and Redis on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from deploy.aegra.cluster import Cluster, is_installed
from tests.support.openai_server import OpenAICompatServer
from tests.support.ports import free_ports

# The helpers assert on the threads; pytest explains a failed assert only in modules it rewrites.
pytest.register_assert_rewrite("tests.support.aegra_runs")

from tests.support.aegra_runs import (  # noqa: E402
    Follower,
    SlowModel,
    check_thread,
    delete_redis_keys,
    follow,
    kill_busier,
    logs,
    repeats,
    submit,
    wait_finished,
    wait_until_held,
)

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
# Seconds each worker model call takes. A run makes 3 waves of calls: it researches the
# request's 2 aspects, writes a section on each, then the summary (a section too).
MODEL_DELAY_S = 1.5
RESEARCH_CALLS = 2
# Section calls wait until the kill: no run can finish before it, on any machine.
HELD_SCHEMA = "Section"
# Bounds on a cluster that makes no progress; no outcome depends on them.
HOLD_TIMEOUT_S = 120.0
FINISH_TIMEOUT_S = 120.0
# A held call waits for the kill: neither the model client nor the worker may give up first.
CALL_TIMEOUT_S = 600
CONTEXT: dict[str, Any] = {
    "planner_model": "offline",
    "worker_model": "local:slow",
    "worker_models": {},
    "validator_model": "offline",
    "synthesizer_model": "offline",
    "judge": False,
    "worker_timeout_s": CALL_TIMEOUT_S,
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


@pytest.fixture
def model() -> Iterator[tuple[SlowModel, OpenAICompatServer]]:
    slow = SlowModel(MODEL_DELAY_S, HELD_SCHEMA)
    with OpenAICompatServer(slow) as server:
        yield slow, server
        slow.stopped.set()
        slow.release()


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
        FOREMAN_HTTP_TIMEOUT=str(CALL_TIMEOUT_S),
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
        pytest.fail(f"Aegra did not start: {exc}\n" + logs(aegra))
    try:
        yield aegra
    finally:
        model[0].release()  # after a failure before the kill, runs held would delay the stop
        aegra.stop()
        delete_redis_keys(REDIS_URL, f"{prefix}:*")


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
    runs = await asyncio.gather(
        *(submit(h, clients[h % 2], names[h % 2], CONTEXT) for h in range(N_RUNS))
    )
    assert Counter(r.via for r in runs) == {names[0]: N_RUNS // 2, names[1]: N_RUNS // 2}
    # Each run is followed through the instance it was submitted to.
    followers = [Follower(r) for r in runs]
    following = {
        f.run.run_id: asyncio.create_task(follow(f, clients[f.run.house % 2], f.run.via))
        for f in followers
    }

    await wait_until_held(cluster, slow, runs, RESEARCH_CALLS, HOLD_TIMEOUT_S)
    kill = kill_busier(cluster)
    # Every run was under way at the kill, by construction: it still waits at the gate (with
    # its research saved, as `wait_until_held` saw). Only now may the model answer.
    assert set(slow.at_gate()) == {r.house for r in runs}, slow.at_gate()
    slow.release()

    # Streams from the dead instance break; as a load balancer would, send their clients to
    # the survivor, to join again from the last event they received. (Left alone, the SDK
    # retries the dead address for about a minute before it gives up.)
    client = clients[cluster.instances.index(kill.survivor)]
    for f in followers:
        if f.run.via == kill.victim.name:
            following[f.run.run_id].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following[f.run.run_id]
            following[f.run.run_id] = asyncio.create_task(follow(f, client, kill.survivor.name))

    statuses = await wait_finished(client, runs, FINISH_TIMEOUT_S)
    finished_at = time.monotonic()
    assert statuses == {r.run_id: "success" for r in runs}, f"{statuses}\n{logs(cluster)}"
    await asyncio.wait_for(asyncio.gather(*following.values()), timeout=30)

    # The dead instance's runs were re-queued once each; every other run ran once.
    final = cluster.leases()
    assert {rid for rid, (_, _, retries) in final.items() if retries} == kill.runs, final
    assert all(retries <= 1 and holder is None for _, holder, retries in final.values())

    attempts = [await check_thread(client, f) for f in followers]

    # Exactly the calls the kill cut off were asked again: what the dead instance's runs had
    # finished (their research, saved before the kill) came back from their checkpoints.
    victim_houses = {r.house for r in runs if r.run_id in kill.runs}
    repeated, cut_off = repeats(slow.calls, victim_houses, kill.at)
    assert all(c.house in victim_houses for c in repeated), "a surviving run repeated a call"
    assert cut_off and set(repeated) == set(cut_off), (
        f"{len(repeated)} calls repeated, {len(cut_off)} cut off; answered before the kill "
        f"and repeated: {sum(1 for c in repeated if c.end is not None and c.end < kill.at)}"
    )
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
        "calls_cut_off_by_kill": len(cut_off),
        "calls_repeated": len(repeated),
        "streams_rejoined_on_survivor": sum(1 for f in followers if len(f.through) > 1),
        "seconds_submit_to_kill": round(kill.at - started, 1),
        "seconds_kill_to_all_done": round(finished_at - kill.at, 1),
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\naegra scale-out:", json.dumps(summary))
