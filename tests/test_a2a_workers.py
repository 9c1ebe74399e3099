"""`kind = "a2a"` workers: a remote A2A agent (a real a2a-sdk server on 127.0.0.1).

Foreman runs offline (no model): the planner routes the request to the declared worker by
its name, and the answer is the agent's reply. The agent is the translator of
`tests/support/a2a_server.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx
from langchain_core.runnables.config import var_child_runnable_config
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from foreman import Context, build_graph
from foreman.core.schemas import Subtask
from foreman.workers.base import DependencyResult, WorkerInput
from foreman.workers.declared import a2a
from foreman.workers.declared.build import declared_workers
from tests.support.a2a_server import TranslatorServer
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def agent() -> Iterator[TranslatorServer]:
    with TranslatorServer() as server:
        yield server


def workers_file(tmp_path: Path, url: str, **extra: str) -> Path:
    """A workers file declaring `translator` at `url`; `extra` adds TOML lines to it."""
    lines = "".join(f"{key} = {value}\n" for key, value in extra.items())
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "workers.toml"
    path.write_text(
        "[workers.translator]\n"
        'kind = "a2a"\n'
        'capability = "translation"\n'
        'description = "translates short English phrases into French or Spanish"\n'
        f'url = "{url}"\n'
        "timeout_s = 10\n"
        f"{lines}"
    )
    return path


def with_backup(path: Path, url: str) -> Path:
    """Add `backup`, another A2A worker at `url`, as the translator's alternative."""
    text = path.read_text().replace("timeout_s = 10\n", "", 1)
    path.write_text(
        text + 'alternatives = ["backup"]\n\n'
        "[workers.backup]\n"
        'kind = "a2a"\n'
        'capability = "translation"\n'
        'description = "a second translation agent"\n'
        f'url = "{url}"\n'
    )
    return path


class Run:
    """One Foreman run on a thread of its own, offline, with a workers file."""

    def __init__(self, path: Path, **context: Any) -> None:
        self.graph = build_graph().compile(checkpointer=InMemorySaver())
        self.config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
        self.context = Context(workers_file=str(path), **context)

    async def send(self, value: Any) -> dict[str, Any]:
        out: dict[str, Any] = await self.graph.ainvoke(value, self.config, context=self.context)
        return out

    async def results(self) -> dict[str, Any]:
        state = await self.graph.aget_state(self.config)
        found: dict[str, Any] = state.values.get("results") or {}
        return found


async def test_the_answer_is_the_agents_reply(agent: TranslatorServer, tmp_path: Path):
    run = Run(workers_file(tmp_path, agent.url))
    out = await run.send({"request": 'Translate "good morning" into French with the translator.'})
    assert out["status"] == "done"
    assert "bonjour" in out["answer"]
    (rec,) = (await run.results()).values()
    assert (rec["worker"], rec["status"]) == ("translator", "accepted")
    (attempt,) = rec["attempts"]
    # A2A reports no tokens: one call, zero tokens, the agent as the model
    assert attempt["model"] == f"a2a:{agent.url}"
    assert attempt["usage"] == {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "calls": 1}
    assert attempt["output"]["a2a"]["state"] == "TASK_STATE_COMPLETED"
    # the subtask went as the message's text
    assert 'Translate "good morning" into French' in agent.requests[-1]


async def test_input_required_asks_the_person_and_continues_the_task(
    agent: TranslatorServer, tmp_path: Path
):
    run = Run(workers_file(tmp_path, agent.url))
    out = await run.send({"request": 'Translate "thank you" with the translator.'})
    (interrupt,) = out["__interrupt__"]
    assert interrupt.value["kind"] == "clarification"
    assert interrupt.value["question"] == 'Which language should I translate "thank you" into?'
    (asked,) = (await run.results()).values()
    assert asked["status"] == "needs_clarification"
    waiting = asked["attempts"][0]["output"]["a2a"]

    out = await run.send(Command(resume={"answer": "French"}))
    assert out["status"] == "done"
    assert "merci" in out["answer"]
    (rec,) = (await run.results()).values()
    done = rec["attempts"][-1]["output"]["a2a"]
    # the answer went into the task that asked, alone: not a new task with the request again
    assert (done["task_id"], done["context_id"]) == (waiting["task_id"], waiting["context_id"])
    assert agent.requests[-1] == "French"


async def test_an_agent_that_is_down_is_a_failed_attempt_and_the_alternative_answers(
    agent: TranslatorServer, tmp_path: Path
):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = Run(with_backup(workers_file(tmp_path, down), agent.url), max_attempts=1)
    out = await run.send({"request": 'Translate "cheese" into French with the translator.'})
    assert out["status"] == "done"
    assert "fromage" in out["answer"]
    (rec,) = (await run.results()).values()
    failed, answered = rec["attempts"]
    assert (failed["worker"], failed["status"], failed["verdict"]) == (
        "translator",
        "failed",
        "substitute",
    )
    assert failed["output"]["error"].startswith(f"no agent card at {down}: ")
    assert "connect" in failed["output"]["error"].lower()
    assert (answered["worker"], answered["status"]) == ("backup", "done")
    assert rec["worker"] == "backup"


async def test_a_slow_agent_is_a_timed_out_attempt(agent: TranslatorServer, tmp_path: Path):
    with TranslatorServer(mode="slow", delay_s=1.5) as slow:
        path = with_backup(workers_file(tmp_path, slow.url), agent.url)
        path.write_text(
            path.read_text().replace("alternatives", "timeout_s = 0.5\nalternatives", 1)
        )
        run = Run(path, max_attempts=1)
        out = await run.send(
            {"request": 'Translate "good morning" into French with the translator.'}
        )
    assert out["status"] == "done" and "bonjour" in out["answer"]
    (rec,) = (await run.results()).values()
    timed_out = rec["attempts"][0]
    assert (timed_out["worker"], timed_out["error"]) == ("translator", "timed out after 0.5s")
    assert timed_out["duration_s"] < 2.5


async def test_a_malformed_reply_is_a_failed_attempt(agent: TranslatorServer, tmp_path: Path):
    with TranslatorServer(mode="malformed") as broken:
        run = Run(with_backup(workers_file(tmp_path, broken.url), agent.url), max_attempts=1)
        out = await run.send(
            {"request": 'Translate "good morning" into French with the translator.'}
        )
    assert out["status"] == "done" and "bonjour" in out["answer"]
    (rec,) = (await run.results()).values()
    bad = rec["attempts"][0]
    assert (bad["worker"], bad["status"]) == ("translator", "failed")
    assert bad["output"]["error"] == (
        "the agent's reply is malformed: Response has neither task nor message"
    )


# --- the runner alone: what each reply becomes ------------------------------------------


def runner_for(tmp_path: Path, url: str) -> Any:
    (spec,) = declared_workers(workers_file(tmp_path, url), known=())
    return spec.runner


def subtask(objective: str, **extra: Any) -> WorkerInput:
    sub = Subtask(id="t1", worker="translator", objective=objective)
    return WorkerInput(subtask=sub, **extra)


async def test_a_failed_task_gives_the_agents_reason(agent: TranslatorServer, tmp_path: Path):
    run = runner_for(tmp_path, agent.url)
    got = await run(subtask('Translate "xyzzy" into French.'), Context())
    assert got["output"] == {
        "status": "failed",
        "error": 'the agent failed: I do not know how to say "xyzzy" in French.',
        "text": "",
    }


async def test_another_output_shape_is_filled_by_the_workers_model(
    agent: TranslatorServer, tmp_path: Path
):
    schema = '{type = "object", properties = {french = {type = "string"}}, required = ["french"]}'
    (spec,) = declared_workers(workers_file(tmp_path, agent.url, output_schema=schema), known=())
    assert spec.runner is not None
    got = await spec.runner(subtask('Translate "good morning" into French.'), Context())
    assert got["output"]["status"] == "done"
    assert "bonjour" in got["output"]["result"]["french"]
    assert got["usage"]["calls"] == 2  # the agent's reply, then the (offline) model's call


async def test_an_agent_on_a2a_0_3(tmp_path: Path):
    """A2A 0.3 has no ListTasks: after a restart the answer goes in a new task's request."""
    with TranslatorServer(protocol="0.3") as old:
        run = runner_for(tmp_path, old.url)
        got = await run(subtask('Translate "thank you" into French.'), Context())
        inp = subtask('Translate "thank you".')
        asked = await run(inp, Context())
        a2a._waiting.clear()  # as after a restart
        answered = await run(inp.model_copy(update={"clarification": "French"}), Context())
    assert got["output"]["text"] == "merci"
    assert asked["output"]["status"] == "needs_clarification"
    assert answered["output"]["text"] == "merci"
    assert old.requests[-1].endswith("A person's answer to an earlier question: French")


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (None, "the agent's reply is malformed: 'NoneType' object is not iterable"),
        (3, "the agent's reply is malformed: 'int' object is not iterable"),
        ({"task": {"id": "t9"}}, "the agent's reply is malformed: a Task with no id or no state"),
        ({"message": {"parts": "x"}}, "the agent's reply is not valid A2A: Failed to parse"),
        ({"message": {"role": "ROLE_AGENT"}}, "the agent replied with no text"),
    ],
)
async def test_malformed_replies_are_failed_attempts(tmp_path: Path, result: Any, error: str):
    with TranslatorServer(mode="malformed", result=result) as broken:
        got = await runner_for(tmp_path, broken.url)(subtask('Translate "a".'), Context())
    assert got["output"]["status"] == "failed"
    assert got["output"]["error"].startswith(error)


async def test_a_card_pointing_nowhere_is_a_failed_attempt(tmp_path: Path):
    nowhere = f"http://127.0.0.1:{free_port()}/"
    with TranslatorServer(rpc_url=nowhere) as lost:
        got = await runner_for(tmp_path, lost.url)(subtask('Translate "a".'), Context())
    assert got["output"]["status"] == "failed"
    assert got["output"]["error"].startswith(
        f"could not talk to the agent at {lost.url} (its card names {nowhere}): "
        "Network communication error"
    )


async def test_a_message_reply_is_the_answer(agent: TranslatorServer, tmp_path: Path):
    run = runner_for(tmp_path, agent.url)
    got = await run(subtask("What can you do?"), Context())
    assert got["output"]["status"] == "done"
    assert got["output"]["text"].startswith("I translate short English phrases")
    assert got["output"]["a2a"]["state"] == "MESSAGE"


async def test_the_answer_finds_its_task_from_the_agent_after_a_restart(
    agent: TranslatorServer, tmp_path: Path
):
    """The task waiting for input is found by its derived context (ListTasks) when this
    process no longer remembers it."""
    run = runner_for(tmp_path, agent.url)
    inp = subtask('Translate "good morning".')
    # as in a graph run: the thread's id is part of the derived context id
    token = var_child_runnable_config.set({"configurable": {"thread_id": uuid.uuid4().hex}})
    try:
        asked = await run(inp, Context())
        assert asked["output"]["status"] == "needs_clarification"
        a2a._waiting.clear()  # as after a restart
        answered = await run(inp.model_copy(update={"clarification": "Spanish"}), Context())
    finally:
        var_child_runnable_config.reset(token)
    assert answered["output"]["text"] == "buenos días"
    assert answered["output"]["a2a"]["task_id"] == asked["output"]["a2a"]["task_id"]
    assert agent.requests[-1] == "Spanish"


async def test_dependencies_go_as_data(agent: TranslatorServer, tmp_path: Path):
    message = a2a.request_message(
        subtask(
            'Translate "cheese" into French.',
            dependencies={
                "s0": DependencyResult(id="s0", worker="llm", status="accepted", text="cheese")
            },
        ),
        "ctx",
    )
    text, data = message.parts
    assert text.text.startswith('Translate "cheese" into French.')
    assert "Results of earlier steps (attached as data, by id): s0" in text.text
    assert "Context:" not in text.text  # empty fields are left out
    assert data.data.struct_value["inputs"]["s0"]["text"] == "cheese"
    # the objective's own lines are kept, whatever they end with
    (only,) = a2a.request_message(subtask('Translate this:\n"cheese"'), "ctx").parts
    assert only.text == 'Translate this:\n"cheese"'


async def test_an_attempt_makes_no_blocking_call(agent: TranslatorServer, tmp_path: Path):
    """`langgraph dev` runs graphs under blockbuster: a blocking call there fails the run."""
    run = runner_for(tmp_path, agent.url)
    run_down = runner_for(tmp_path / "down", f"http://127.0.0.1:{free_port()}")
    with blockbuster_ctx():
        got = await run(subtask('Translate "cheese" into French.'), Context())
        down = await run_down(subtask('Translate "cheese" into French.'), Context())
    assert got["output"]["text"] == "fromage"
    assert down["output"]["status"] == "failed"


async def test_headers_take_environment_variables(
    agent: TranslatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token is named in the file and read from the environment; unset, a clear failure."""
    path = workers_file(tmp_path, agent.url, headers='{ Authorization = "Bearer ${A2A_TOKEN}" }')
    (spec,) = declared_workers(path, known=())
    monkeypatch.setenv("A2A_TOKEN", "s3cret")
    seen = len(agent.headers)
    got = await spec.runner(subtask('Translate "cheese" into French.'), Context())
    assert got["output"]["status"] == "done"
    assert {h.get("authorization") for h in agent.headers[seen:]} == {"Bearer s3cret"}
    monkeypatch.delenv("A2A_TOKEN")
    got = await spec.runner(subtask('Translate "cheese" into French.'), Context())
    assert got["output"]["status"] == "failed"
    assert got["output"]["error"] == (
        "A2A worker translator: headers uses ${A2A_TOKEN}, which is not set"
    )
