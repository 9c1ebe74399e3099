"""`kind = "a2a"` workers: a remote agent speaking the A2A protocol, found from its agent card.

Each attempt reads the agent card at `url` (`/.well-known/agent-card.json`), sends the
subtask as one user message (its text, and the dependencies' results as a data part) and
reads the reply: a Message's text, or a Task's artifacts or status message. A Task that
needs input becomes `needs_clarification` with the agent's question; the person's answer
goes back into that same task. Everything the agent sends is data, never instructions.

Every way the agent can fail (no card, refused connection, an error, a reply that is
neither a Task nor a Message) is a failed attempt with the reason; `timeout_s` is applied
by the orchestrator around the whole attempt.
"""

from __future__ import annotations

from foreman.core.extras import require

require("An A2A worker", "a2a")

import asyncio  # noqa: E402
import json  # noqa: E402
import uuid  # noqa: E402
from collections import OrderedDict  # noqa: E402
from typing import Any  # noqa: E402

# The transports of agents on A2A 0.3, which the client factory imports when a card says
# so: imported now, off the event loop (`langgraph dev` rejects blocking imports in a run).
import a2a.compat.v0_3.jsonrpc_transport  # noqa: E402, F401
import a2a.compat.v0_3.rest_transport  # noqa: E402, F401
import httpx  # noqa: E402
from a2a.client import (  # noqa: E402
    A2ACardResolver,
    A2AClientError,
    A2AClientTimeoutError,
    Client,
    ClientConfig,
    ClientFactory,
)
from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_text_part  # noqa: E402
from a2a.types import (  # noqa: E402
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)
from a2a.utils.constants import TransportProtocol  # noqa: E402
from a2a.utils.errors import (  # noqa: E402
    A2AError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf.json_format import Error as ProtoJsonError  # noqa: E402
from langgraph.config import get_config  # noqa: E402

from foreman.core.context import Context  # noqa: E402
from foreman.core.prompts import render  # noqa: E402
from foreman.core.state import Usage, add_usage, empty_usage  # noqa: E402
from foreman.workers.base import WorkerInput  # noqa: E402
from foreman.workers.declared import environment  # noqa: E402
from foreman.workers.declared.build import model_of, shaped  # noqa: E402
from foreman.workers.declared.config import A2AWorker, Loaded  # noqa: E402
from foreman.workers.declared.outputs import Shape  # noqa: E402
from foreman.workers.spec import Runner, WorkerRun  # noqa: E402

POLL_S = 0.5
"""How often a task the agent is still working on is read again."""
CONTEXTS = uuid.UUID("6f1d3c2a-8b4e-4f0a-9c61-a2a0f0e5c0de")
"""Namespace of the context ids Foreman derives (uuid5), so a re-dispatch finds its own."""
WAITING_MAX = 1000
"""Most waiting tasks remembered (runs left unanswered would otherwise pile up)."""
_NOTHING = "\x00"  # an empty field of the request, whose line is left out
# Tasks waiting for a person's answer, by context id: the fast way back into the same task
# in this process. After a restart, `_waiting_task` asks the agent instead (ListTasks).
_waiting: OrderedDict[str, str] = OrderedDict()

FAILED_STATES = {
    TaskState.TASK_STATE_FAILED: "failed",
    TaskState.TASK_STATE_REJECTED: "rejected the task",
    TaskState.TASK_STATE_CANCELED: "canceled the task",
}
WORKING_STATES = {
    TaskState.TASK_STATE_SUBMITTED,
    TaskState.TASK_STATE_WORKING,
}


class AgentFailed(Exception):
    """An attempt the remote agent could not answer; the message says why."""


def context_id_of(url: str, inp: WorkerInput) -> str:
    """The A2A context of one subtask in one run (thread), the same on each re-dispatch.

    Derived rather than remembered, so the attempt after a person's answer, in this
    process or another, talks in the context where the agent asked its question.
    """
    try:
        thread = str(get_config().get("configurable", {}).get("thread_id") or "")
    except RuntimeError:
        thread = ""
    # outside a graph run, or a run with no thread: nothing to continue, a context of its own
    thread = thread or uuid.uuid4().hex
    sub = inp.subtask
    return str(uuid.uuid5(CONTEXTS, f"{url}\n{thread}\n{sub.id}\n{sub.objective}"))


def request_message(inp: WorkerInput, context_id: str) -> Message:
    """The subtask as one user message: its text, and the dependencies' results as data."""
    sub = inp.subtask
    fields = {
        "context": sub.context,
        "expected_output": sub.expected_output,
        "criteria": "; ".join(sub.acceptance_criteria),
        "feedback": " ".join(inp.feedback),
        "clarification": inp.clarification or "",
        "inputs": ", ".join(inp.dependencies),
    }
    # a labelled line with nothing after its label says nothing: left out
    text = render(
        "a2a_request",
        objective=sub.objective,
        **{k: v.strip() or _NOTHING for k, v in fields.items()},
    )
    lines = [ln for ln in text.splitlines() if not ln.endswith(_NOTHING)]
    parts = [new_text_part("\n".join(lines).strip())]
    if inp.dependencies:
        inputs = {
            k: {"worker": d.worker, "status": d.status, "text": d.text, "output": d.output}
            for k, d in inp.dependencies.items()
        }
        # through JSON: protobuf's Value takes only JSON types
        parts.append(new_data_part({"inputs": json.loads(json.dumps(inputs, default=str))}))
    return _user_message(parts, context_id)


def _user_message(parts: list[Part], context_id: str, task_id: str | None = None) -> Message:
    return Message(
        role=Role.ROLE_USER,
        message_id=uuid.uuid4().hex,
        context_id=context_id,
        task_id=task_id or "",
        parts=parts,
    )


def text_of(parts: Any) -> str:
    """The text of message or artifact parts; data parts as JSON, files are left out."""
    texts = [t.strip() for t in get_text_parts(parts) if t.strip()]
    texts += [json.dumps(d, ensure_ascii=False, indent=1) for d in get_data_parts(parts)]
    return "\n\n".join(texts)


def _remember(context_id: str, task_id: str) -> None:
    _waiting[context_id] = task_id
    while len(_waiting) > WAITING_MAX:
        _waiting.popitem(last=False)


def output_of(task: Task) -> dict[str, Any]:
    """A Task in a final or interrupted state as the worker's output.

    completed -> done (its artifacts' text, else its status message); input-required ->
    needs_clarification (the agent's question); failed, rejected, canceled -> failed.
    """
    state = task.status.state
    said = text_of(task.status.message.parts) if task.status.HasField("message") else ""
    ids = {"context_id": task.context_id, "task_id": task.id, "state": TaskState.Name(state)}
    if state == TaskState.TASK_STATE_COMPLETED:
        text = "\n\n".join(filter(None, (text_of(a.parts) for a in task.artifacts))) or said
        if not text:
            raise AgentFailed("the agent completed the task with no text in its reply")
        return {"status": "done", "text": text, "a2a": ids}
    if state == TaskState.TASK_STATE_INPUT_REQUIRED:
        _remember(task.context_id, task.id)
        question = said or "The remote agent needs more input; it did not say what."
        return {"status": "needs_clarification", "question": question, "text": "", "a2a": ids}
    if state == TaskState.TASK_STATE_AUTH_REQUIRED:
        raise AgentFailed("the agent asks for authentication, which Foreman does not give")
    if state in FAILED_STATES:
        reason = said or "no reason given"
        raise AgentFailed(f"the agent {FAILED_STATES[state]}: {reason}")
    raise AgentFailed(f"the agent left the task {TaskState.Name(state)}")


async def _waiting_task(client: Client, context_id: str) -> str | None:
    """The task waiting for input in `context_id`: remembered, else asked of the agent."""
    if task_id := _waiting.pop(context_id, None):
        return task_id
    request = ListTasksRequest(
        context_id=context_id, status=TaskState.TASK_STATE_INPUT_REQUIRED, page_size=1
    )
    try:
        found = await client.list_tasks(request)
    # an agent that cannot list tasks (A2A 0.3 has no ListTasks: the SDK raises
    # NotImplementedError): a new task, with the answer in the request
    except (A2AError, NotImplementedError):
        return None
    return found.tasks[0].id if found.tasks else None


async def _send(client: Client, message: Message) -> dict[str, Any]:
    """Send one message and read the reply, polling a task the agent is still working on."""
    reply = None
    async for event in client.send_message(SendMessageRequest(message=message)):
        reply = event
    if reply is None or not (reply.HasField("message") or reply.HasField("task")):
        raise AgentFailed("the agent's reply is neither a Task nor a Message")
    if reply.HasField("message"):
        text = text_of(reply.message.parts)
        if not text:
            raise AgentFailed("the agent replied with no text")
        ids = {"context_id": reply.message.context_id, "task_id": "", "state": "MESSAGE"}
        return {"status": "done", "text": text, "a2a": ids}
    task = reply.task
    if not task.id or task.status.state == TaskState.TASK_STATE_UNSPECIFIED:
        raise AgentFailed("the agent's reply is malformed: a Task with no id or no state")
    while task.status.state in WORKING_STATES:
        await asyncio.sleep(POLL_S)
        task = await client.get_task(GetTaskRequest(id=task.id))
    return output_of(task)


async def ask_agent(
    url: str, inp: WorkerInput, limit: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One exchange with the agent at `url`: its answer as the worker's output.

    Raises:
        AgentFailed: no card, no transport in common, an error, or an unusable reply.
    """
    context_id = context_id_of(url, inp)
    # httpx's own limit a little past the attempt's, so the orchestrator's timeout decides
    async with httpx.AsyncClient(timeout=httpx.Timeout(limit + 1), headers=headers) as http:
        try:
            card = await A2ACardResolver(http, url).get_agent_card()
        except A2AError as exc:
            raise AgentFailed(f"no agent card at {url}: {exc}") from exc
        config = ClientConfig(
            httpx_client=http,
            streaming=False,  # one reply per message: the attempt waits for it anyway
            supported_protocol_bindings=[TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON],
        )
        try:
            client = ClientFactory(config).create(card)
        except ValueError as exc:  # "no compatible transports found"
            raise AgentFailed(f"the agent card offers no JSON-RPC or HTTP+JSON: {exc}") from exc
        task_id = await _waiting_task(client, context_id) if inp.clarification else None
        try:
            if task_id and inp.clarification:
                answer = _user_message([new_text_part(inp.clarification)], context_id, task_id)
                try:
                    return await _send(client, answer)
                except (TaskNotFoundError, UnsupportedOperationError):
                    pass  # the task is gone or closed: ask anew, the answer in the request
            return await _send(client, request_message(inp, context_id))
        except A2AClientTimeoutError as exc:
            raise AgentFailed(f"no reply from {url} within {limit:g}s") from exc
        except A2AClientError as exc:  # the network, HTTP or a body that is not JSON-RPC
            # the card may name an endpoint other than `url` (a common misconfiguration)
            named = ", ".join(i.url for i in card.supported_interfaces)
            raise AgentFailed(
                f"could not talk to the agent at {url} (its card names {named}): {exc}"
            ) from exc
        except A2AError as exc:
            raise AgentFailed(f"the agent at {url} answered with an error: {exc}") from exc
        except ProtoJsonError as exc:
            raise AgentFailed(f"the agent's reply is not valid A2A: {exc}") from exc
        # the client's "Response has neither task nor message" (ValueError), or a result
        # protobuf cannot even read (TypeError: `"result": 3`)
        except (ValueError, TypeError) as exc:
            raise AgentFailed(f"the agent's reply is malformed: {exc}") from exc


def make_runner(name: str, decl: A2AWorker, loaded: Loaded, shape: Shape) -> Runner:
    """The runner of an `a2a` worker: one exchange with the remote agent per attempt."""
    del loaded  # nothing to read beside the file: the agent describes itself on its card
    url = decl.url.rstrip("/")
    where = f"a2a:{url}"

    async def run(inp: WorkerInput, ctx: Context) -> WorkerRun:
        # A2A reports no tokens: one call, zero tokens and cost, and the agent as the model.
        usage: Usage = {**empty_usage(), "calls": 1}
        try:
            headers = environment.expanded(decl.headers, f"A2A worker {name}: headers")
            output = await ask_agent(url, inp, decl.timeout_s or ctx.worker_timeout_s, headers)
        except (AgentFailed, environment.UnsetVariable) as exc:
            output = {"status": "failed", "error": str(exc), "text": ""}
        if output["status"] == "done" and not shape.is_text:
            # another shape: the worker's own model puts the agent's text in it
            spec = model_of(name, decl, ctx)
            formed, spent = await shaped(name, output["text"], shape, inp, ctx, spec)
            output = {**formed, "a2a": output["a2a"]}
            usage = add_usage(usage, spent) if spent else usage
        return {"output": output, "usage": usage, "model": where, "tool_calls": []}

    return run
