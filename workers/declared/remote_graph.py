"""`remote_graph` workers: a graph on another LangGraph server, another Foreman too.

Each subtask runs on a remote thread of its own, named after the parent's thread and the
subtask, so a parent run resumed after a person's answer continues the remote run where it
stopped: a remote interrupt (a remote Foreman's plan review, a graph's question) becomes the
worker's question for the parent's person, and the answer resumes the remote thread.

The remote answer is data: it becomes the worker's output, which the parent renders into
dependents' prompts as data (`untrusted`); nothing here hands it to a model as instructions.
An unreachable server, an HTTP error, a failed remote run or an odd state is a failed
attempt with the reason; the attempt's `timeout_s` cuts a slow one off (and cancels it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from string import Template
from typing import Any

import httpx
from langgraph.config import get_config
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError

from foreman.core.context import Context
from foreman.core.prompts import render, untrusted
from foreman.core.state import Usage, add_usage, empty_usage
from foreman.workers.base import WorkerInput
from foreman.workers.declared.build import model_of, shaped
from foreman.workers.declared.config import Loaded, RemoteGraphWorker
from foreman.workers.declared.outputs import Shape
from foreman.workers.declared.remote_state import (
    ERROR_CHARS,
    cut,
    failed,
    pending,
    question_of,
    read_answer,
    resume_value,
)
from foreman.workers.spec import Runner, WorkerRun

THREADS = uuid.UUID("5b0c1f0e-6a53-4a57-9d53-2f1e6f4c7a10")
"""Namespace of the remote threads' ids (uuid5 of the parent thread and the subtask)."""
ASKED = "foreman_asked"
"""Thread metadata: the id of the remote interrupt last put to the parent's person."""
CANCEL_S = 5.0
"""How long a cut-off attempt waits for the remote run to be cancelled."""
# Connecting fails fast (one retry, for a restart's blip); reading has no limit of its own,
# since a remote run takes as long as it takes: the attempt's `timeout_s` bounds it.
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0, read=None)


class RemoteError(Exception):
    """A remote call that did not give a usable answer; the message says why."""


def remote_model(decl: RemoteGraphWorker) -> str:
    """Where the work runs, as the attempt's model key: `remote:URL/GRAPH`."""
    return f"remote:{decl.url}/{decl.graph}"


def parent_thread() -> str | None:
    """The parent run's thread id, when the runner runs inside a checkpointed graph."""
    try:
        config = get_config()
    except RuntimeError:  # called outside a graph run
        return None
    thread = (config.get("configurable") or {}).get("thread_id")
    return str(thread) if thread else None


def thread_id(name: str, inp: WorkerInput) -> str:
    """The remote thread of this subtask: the same across attempts and resumes of one plan.

    Without a parent thread (a run with no checkpointer, which cannot be resumed) each
    attempt gets a thread of its own.
    """
    parent = parent_thread()
    if parent is None:
        return str(uuid.uuid4())
    sub = inp.subtask
    return str(uuid.uuid5(THREADS, f"{parent}\n{name}\n{sub.id}\n{sub.objective}"))


def request_text(decl: RemoteGraphWorker, inp: WorkerInput) -> str:
    """The subtask as one message: objective first, each other part only when it has one.

    A `request` graph (a Foreman) plans its own output, so it gets no expected output; the
    parent's validator checks the answer against it anyway. What other workers returned is
    data, in tags it cannot close (`untrusted`), like the validator's feedback, which may
    quote an earlier remote answer.
    """
    sub = inp.subtask
    inputs = "\n".join(
        f'<input id="{d.id}" worker="{d.worker}">\n{untrusted(d.text)}\n</input>'
        for d in inp.dependencies.values()
    )
    values = {
        "objective": sub.objective.strip(),
        "context": sub.context.strip(),
        "expected_output": sub.expected_output.strip() if decl.input == "messages" else "",
        "clarification": untrusted(inp.clarification or "").strip(),
        "feedback": "; ".join(untrusted(f) for f in inp.feedback),
        "inputs": inputs,
    }
    kept = []
    for paragraph in render("remote_request").split("\n\n"):
        names = {
            m.group("named") or m.group("braced")
            for m in Template.pattern.finditer(paragraph)
            if m.group("named") or m.group("braced")
        }
        if all(values.get(n) for n in names):
            kept.append(Template(paragraph).safe_substitute(values).strip())
    return "\n\n".join(kept)


def run_input(decl: RemoteGraphWorker, inp: WorkerInput) -> dict[str, Any]:
    """The run's input: a chat's `{"messages": [...]}` or a Foreman's `{"request": ...}`."""
    text = request_text(decl, inp)
    if decl.input == "request":
        return {"request": text}
    return {"messages": [{"role": "user", "content": text}]}


def open_client(decl: RemoteGraphWorker) -> LangGraphClient:
    """A client of the remote server (blocking: httpx loads CA certificates).

    The API key comes only from the variable the declaration names: the SDK's default of
    reading LANGSMITH_API_KEY would send the caller's key to any server a file names.

    Raises:
        RemoteError: `api_key_env` names a variable that is not set.
    """
    headers = {}
    if decl.api_key_env:
        key = os.environ.get(decl.api_key_env, "")
        if not key:
            raise RemoteError(f"the environment variable {decl.api_key_env} is not set")
        headers["x-api-key"] = key
    transport = httpx.AsyncHTTPTransport(retries=1)
    http = httpx.AsyncClient(
        base_url=decl.url, transport=transport, timeout=HTTP_TIMEOUT, headers=headers
    )
    return LangGraphClient(http)


def where(decl: RemoteGraphWorker) -> str:
    """The server and graph, as reasons and questions name them."""
    return f"{decl.url} ({decl.graph})"


def _object(value: Any, what: str, decl: RemoteGraphWorker) -> Mapping[str, Any]:
    """A response that must be a JSON object.

    Raises:
        RemoteError: it is not: the URL is not a LangGraph server's, or not one this knows.
    """
    if isinstance(value, Mapping):
        return value
    odd = cut(repr(value), 200)
    raise RemoteError(f"the server at {where(decl)} sent an unexpected {what}: {odd}")


def why(exc: Exception, decl: RemoteGraphWorker) -> str:
    """A person-readable reason for a failed remote call."""
    if isinstance(exc, httpx.HTTPStatusError):
        # the SDK's errors carry the server's message; others have the body as a note
        said = " ".join([getattr(exc, "message", ""), *getattr(exc, "__notes__", [])])
        detail = f": {cut(' '.join(said.split()), 300)}" if said.strip() else ""
        return f"the server at {where(decl)} answered HTTP {exc.response.status_code}{detail}"
    if isinstance(exc, httpx.TransportError):
        detail = str(exc) or type(exc).__name__
        return f"cannot reach the server at {where(decl)}: {detail}"
    if isinstance(exc, json.JSONDecodeError):
        return f"the server at {where(decl)} sent something that is not JSON: {exc}"
    return f"the call to {where(decl)} failed: {type(exc).__name__}: {exc}"


async def _cancel(client: LangGraphClient, thread: str, run: str) -> None:
    """Cancel a remote run cut off by the attempt's timeout, as far as it goes in a moment."""
    with contextlib.suppress(httpx.HTTPError, LangGraphError, TimeoutError):
        async with asyncio.timeout(CANCEL_S):
            await client.runs.cancel(thread, run, action="rollback")


async def _run(client: LangGraphClient, decl: RemoteGraphWorker, thread: str, **start: Any) -> None:
    """Start a run on the thread and wait for it to end (or stop at an interrupt).

    Raises:
        RemoteError: the run errored, or ended neither done nor interrupted.
    """
    created = await client.runs.create(
        thread,
        decl.graph,
        context=decl.context or None,
        # never cut another attempt's run short (the server's default may queue behind it)
        multitask_strategy="reject",
        **start,
    )
    run = str(_object(created, "run", decl).get("run_id"))
    try:
        result = await client.runs.join(thread, run)
    except asyncio.CancelledError:  # the attempt's timeout: do not leave the run going
        await asyncio.shield(_cancel(client, thread, run))
        raise
    error = result.get("__error__") if isinstance(result, Mapping) else None
    if isinstance(error, Mapping):
        said = f"{error.get('error', 'error')}: {error.get('message', '')}"
        raise RemoteError(f"the remote run failed: {cut(said, ERROR_CHARS)}")
    status = _object(await client.runs.get(thread, run), "run", decl).get("status")
    if status not in ("success", "interrupted"):
        raise RemoteError(f"the remote run ended {status}")


async def _ask(
    client: LangGraphClient, thread: str, interrupt: Mapping[str, Any], on: str
) -> dict[str, Any]:
    """The worker's question for the parent's person, noting which interrupt it is."""
    await client.threads.update(thread, metadata={ASKED: interrupt.get("id")})
    return {"status": "needs_clarification", "question": question_of(interrupt["value"], on)}


async def attempt(
    client: LangGraphClient, name: str, decl: RemoteGraphWorker, inp: WorkerInput
) -> tuple[dict[str, Any], Usage]:
    """One attempt on the remote graph: resume its question with the answer, or ask anew.

    Returns the worker's output and the usage the remote run reported.
    """
    thread = thread_id(name, inp)
    on = f"at {where(decl)}"
    metadata = {
        "foreman_parent_thread": parent_thread(),
        "foreman_worker": name,
        "foreman_subtask": inp.subtask.id,
    }
    made = await client.threads.create(thread_id=thread, if_exists="do_nothing", metadata=metadata)
    before = _object(made, "thread", decl)
    if before.get("status") == "busy":
        # another attempt at this subtask runs there (a hedge, or one a crash left going):
        # this one gets a thread of its own rather than cut that run short
        thread = str(uuid.uuid4())
        made = await client.threads.create(thread_id=thread, metadata=metadata)
        before = _object(made, "thread", decl)
    waiting = pending(before.get("interrupts"))
    if waiting:
        first = waiting[0]
        asked = (before.get("metadata") or {}).get(ASKED)
        if inp.clarification is None or asked != first.get("id"):
            # still waiting, or waiting on a question the person has not seen yet
            return await _ask(client, thread, first, on), empty_usage()
        answer = resume_value(first["value"], inp.clarification)
        await _run(client, decl, thread, command={"resume": {first["id"]: answer}})
    else:
        await _run(client, decl, thread, input=run_input(decl, inp))
    after = _object(await client.threads.get(thread), "thread", decl)
    earlier = before.get("values")  # a new thread has none
    output, usage = read_answer(
        after.get("values"), earlier if isinstance(earlier, Mapping) else {}
    )
    waiting = pending(after.get("interrupts"))
    if waiting:
        return await _ask(client, thread, waiting[0], on), usage
    return output, usage


def make_runner(name: str, decl: RemoteGraphWorker, loaded: Loaded, shape: Shape) -> Runner:
    """The runner of a `remote_graph` worker (`foreman.workers.declared.build`)."""
    del loaded  # nothing to read from the file: the server is reached at run time
    model = remote_model(decl)

    async def run(inp: WorkerInput, ctx: Context) -> WorkerRun:
        usage = empty_usage()
        try:
            client = await asyncio.to_thread(open_client, decl)
            try:
                output, usage = await attempt(client, name, decl, inp)
            finally:
                await client.aclose()
        except RemoteError as exc:
            output = failed(str(exc))
        except (httpx.HTTPError, LangGraphError, json.JSONDecodeError) as exc:
            output = failed(why(exc, decl))
        if output.get("status") == "done" and not shape.is_text:
            # the answer read as data by the worker's own model, into the declared shape
            spec = model_of(name, decl, ctx)
            formed, spent = await shaped(name, str(output["text"]), shape, inp, ctx, spec)
            output, usage = formed, add_usage(usage, spent) if spent else usage
        return {"output": output, "usage": usage, "model": model, "tool_calls": []}

    return run
