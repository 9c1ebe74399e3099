"""Tool-using workers: a LangChain agent (`create_agent`) over the tools a worker may use.

The `agent` kind gets LangChain tools by import path; the `mcp` kind gets MCP servers' tools
(`foreman.workers.declared.mcp`) and runs through the same loop. Each attempt is bounded to
`max_steps` model calls, and every tool call is recorded for the attempt's audit record.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import import_module
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ModelCallLimitMiddleware,
    ToolCallRequest,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langgraph.types import Command

from foreman.core.models import load_chat_model, usage_of
from foreman.core.state import ToolCallRecord, Usage, empty_usage, sum_usage
from foreman.workers.base import WorkerInput, request_prompt
from foreman.workers.declared.config import AgentWorker, Loaded, WorkersFileError

RESULT_CHARS = 500


class ToolCallRecorder(AgentMiddleware[Any, Any]):
    """Records each tool call (name, arguments, result or error) as it happens."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[ToolCallRecord] = []

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Run the call, noting it first so a call that raises is recorded too."""
        call = request.tool_call
        record: ToolCallRecord = {
            "tool": call["name"],
            "args": dict(call.get("args") or {}),
            "status": "error",
            "result": "",
        }
        self.calls.append(record)
        try:
            out = await handler(request)
        except Exception as exc:
            # a ToolException's message is the tool's own account (an MCP `isError` text)
            said = str(exc) if isinstance(exc, ToolException) else f"{type(exc).__name__}: {exc}"
            record["result"] = said[:RESULT_CHARS]
            raise
        if isinstance(out, ToolMessage):
            record["status"] = "error" if out.status == "error" else "ok"
            record["result"] = " ".join(out.text.split())[:RESULT_CHARS]
        else:
            record["status"] = "ok"
        return out


class AgentFailed(Exception):
    """An attempt of a tool-using worker that ended without an answer; says why."""

    def __init__(self, reason: str, usage: Usage, calls: list[ToolCallRecord]):
        super().__init__(reason)
        self.usage, self.calls = usage, calls


async def run_agent(
    name: str,
    tools: Sequence[BaseTool],
    system: str,
    inp: WorkerInput,
    spec: str,
    max_steps: int,
) -> tuple[str, Usage, list[ToolCallRecord]]:
    """Run the tool-calling loop once; returns the answer text, usage and tool calls.

    Raises:
        AgentFailed: a tool raised, or the steps ran out before an answer.
        ProviderError (from the model): the provider failed after its retries.
    """
    recorder = ToolCallRecorder()
    agent = create_agent(
        load_chat_model(spec),
        list(tools),
        system_prompt=system,
        middleware=[ModelCallLimitMiddleware(run_limit=max_steps, exit_behavior="end"), recorder],
        name=f"{name}_agent",
        checkpointer=False,  # an attempt is one call; the run's own checkpoints cover it
    )
    started = time.perf_counter()
    try:
        state = await agent.ainvoke(
            {"messages": [HumanMessage(request_prompt(inp))]},
            {"recursion_limit": 2 * max_steps + 5, "run_name": f"{name} agent"},
            # it keeps no checkpoints; "sync", inherited from a parent run, would make
            # LangGraph 1.2 wait for a save that never starts (`_put_checkpoint_fut`)
            durability="exit",
        )
    except Exception as exc:
        failed = next((c for c in reversed(recorder.calls) if c["status"] == "error"), None)
        if failed is None:
            raise
        raise AgentFailed(
            f"tool {failed['tool']} failed: {failed['result']}", empty_usage(), recorder.calls
        ) from exc
    messages = state["messages"]
    usage = sum_usage(usage_of(spec, m) for m in messages if isinstance(m, AIMessage))
    last = messages[-1]
    if not isinstance(last, AIMessage) or last.tool_calls or not last.text.strip():
        raise AgentFailed(
            f"no answer after {max_steps} model calls ({time.perf_counter() - started:.1f}s)",
            usage,
            recorder.calls,
        )
    return last.text.strip(), usage, recorder.calls


def import_tools(decl: AgentWorker, loaded: Loaded, name: str) -> list[BaseTool]:
    """The LangChain tools an `agent` worker names, imported now.

    Raises:
        WorkersFileError: a path that does not import, or is not a tool (nor a function
            that can be made one).
    """
    from langchain_core.tools import tool as as_tool

    found: list[BaseTool] = []
    where = loaded.where("workers", name, "tools")
    for target in decl.tools:
        module, _, attr = target.partition(":")
        if not attr:
            raise WorkersFileError(f"{where}: tool {target!r}: give it as module:attribute")
        try:
            obj = getattr(import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise WorkersFileError(f"{where}: tool {target!r} does not import: {exc}") from exc
        if isinstance(obj, BaseTool):
            found.append(obj)
        elif callable(obj) and obj.__doc__:
            found.append(as_tool(obj))
        else:
            raise WorkersFileError(
                f"{where}: {target!r} is neither a LangChain tool nor a documented function"
            )
    return found


def tools_called(calls: list[ToolCallRecord]) -> list[str]:
    """The tools that returned a result, in call order."""
    return [c["tool"] for c in calls if c["status"] == "ok"]


def agent_output(text: str, calls: list[ToolCallRecord]) -> dict[str, Any]:
    """A tool-using worker's answer as its output."""
    return {"status": "done", "text": text, "tools_called": tools_called(calls)}


def failed_output(reason: str, calls: list[ToolCallRecord]) -> dict[str, Any]:
    """A tool-using worker's failed attempt as its output: the reason, no answer."""
    return {"status": "failed", "error": reason, "text": "", "tools_called": tools_called(calls)}


async def agent_attempt(
    name: str,
    tools: Sequence[BaseTool],
    system: str,
    inp: WorkerInput,
    spec: str,
    max_steps: int,
) -> tuple[dict[str, Any], Usage, list[ToolCallRecord]]:
    """One attempt as a worker output: the answer, or `failed` with the reason."""
    try:
        text, usage, calls = await run_agent(name, tools, system, inp, spec, max_steps)
    except AgentFailed as exc:
        return failed_output(str(exc), exc.calls), exc.usage, exc.calls
    return agent_output(text, calls), usage, calls
