"""Workers from a workers file: each declaration made a `WorkerSpec` the planner can use."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import BaseTool

from foreman.core.context import Context
from foreman.core.extras import MissingExtra
from foreman.core.prompts import render
from foreman.core.state import ToolCallRecord, Usage, add_usage
from foreman.workers.base import DependencyResult, WorkerInput, request_prompt
from foreman.workers.declared.config import (
    AgentWorker,
    Loaded,
    McpWorker,
    PromptWorker,
    Rules,
    WorkerBase,
    WorkersFileError,
    load,
)
from foreman.workers.declared.outputs import Shape, shape_of
from foreman.workers.spec import Runner, WorkerRun, WorkerSpec, hash_parts

# The kinds whose runner needs an optional package live in their own modules, imported
# only when a file declares one: `make_runner(name, decl, loaded, shape) -> Runner`.
KIND_MODULES = {
    "mcp": "foreman.workers.declared.mcp",
    "remote_graph": "foreman.workers.declared.remote_graph",
    "a2a": "foreman.workers.declared.a2a",
}


def model_of(name: str, decl: WorkerBase, ctx: Context) -> str:
    """The model a declared worker runs on: `--model NAME=...`, its own, else its role's."""
    return ctx.worker_models.get(name) or decl.model or str(getattr(ctx, f"{decl.role}_model"))


def system_prompt(name: str, decl: WorkerBase, loaded: Loaded, default: str) -> str:
    """The worker's system prompt: inline, from its file, else Foreman's `default` prompt.

    Raises:
        WorkersFileError: both are given, or the file cannot be read.
    """
    if decl.prompt and decl.prompt_file:
        where = loaded.where("workers", name, "prompt_file")
        raise WorkersFileError(f"{where}: give `prompt` or `prompt_file`, not both")
    if decl.prompt_file:
        try:
            return loaded.resolve(decl.prompt_file).read_text("utf-8")
        except OSError as exc:
            where = loaded.where("workers", name, "prompt_file")
            raise WorkersFileError(f"{where}: cannot read the prompt: {exc.strerror}") from exc
    return decl.prompt or render(default)


async def shaped(
    name: str,
    text: str,
    shape: Shape,
    inp: WorkerInput,
    ctx: Context,
    spec: str,
) -> tuple[dict[str, Any], Usage | None]:
    """A text answer (an agent's, a remote agent's) in the worker's declared shape.

    Text stays as it is; any other shape costs one call of the worker's model, which reads
    the answer as data.
    """
    if shape.is_text:
        return {"status": "done", "text": text}, None
    answer = DependencyResult(id="answer", worker=name, status="accepted", text=text)
    form = inp.model_copy(
        update={
            "dependencies": {"answer": answer},
            "subtask": inp.subtask.model_copy(
                update={
                    "objective": f"Put the answer in <inputs> in the requested form. "
                    f"It was for: {inp.subtask.objective}"
                }
            ),
        }
    )
    messages = [SystemMessage(render("llm")), HumanMessage(request_prompt(form))]
    return await shape.ask(spec, messages, ctx, role=f"{name} worker")


def prompt_runner(name: str, decl: PromptWorker, loaded: Loaded, shape: Shape) -> Runner:
    """A model with the worker's prompt: one call per attempt."""
    system = system_prompt(name, decl, loaded, "llm")

    async def run(inp: WorkerInput, ctx: Context) -> WorkerRun:
        spec = model_of(name, decl, ctx)
        messages = [SystemMessage(system), HumanMessage(request_prompt(inp))]
        output, usage = await shape.ask(spec, messages, ctx, role=f"{name} worker")
        return {"output": output, "usage": usage, "model": spec, "tool_calls": []}

    return run


def tool_agent_runner(
    name: str, decl: AgentWorker, system: str, shape: Shape, tools: Sequence[BaseTool]
) -> Runner:
    """A tool-calling agent over LangChain `tools`."""
    from foreman.workers.declared.agent import agent_attempt

    async def run(inp: WorkerInput, ctx: Context) -> WorkerRun:
        spec = model_of(name, decl, ctx)
        output, usage, calls = await agent_attempt(name, tools, system, inp, spec, decl.max_steps)
        return await finish(name, output, usage, spec, calls, shape, inp, ctx)

    return run


async def finish(
    name: str,
    output: dict[str, Any],
    usage: Usage,
    spec: str,
    calls: list[ToolCallRecord],
    shape: Shape,
    inp: WorkerInput,
    ctx: Context,
) -> WorkerRun:
    """A text answer put in the worker's shape, its usage and tool calls, as a `WorkerRun`."""
    if output.get("status") == "done" and not shape.is_text:
        formed, spent = await shaped(name, str(output.get("text", "")), shape, inp, ctx, spec)
        formed["tools_called"] = output.get("tools_called", [])
        output, usage = formed, add_usage(usage, spent) if spent else usage
    return {"output": output, "usage": usage, "model": spec, "tool_calls": calls}


def _runner(name: str, decl: WorkerBase, loaded: Loaded, shape: Shape) -> Runner:
    if isinstance(decl, PromptWorker):
        return prompt_runner(name, decl, loaded, shape)
    if isinstance(decl, AgentWorker):
        from foreman.workers.declared.agent import import_tools

        tools = import_tools(decl, loaded, name)
        return tool_agent_runner(
            name, decl, system_prompt(name, decl, loaded, "agent"), shape, tools
        )
    kind = str(getattr(decl, "kind", ""))
    try:
        module = import_module(KIND_MODULES[kind])
    except MissingExtra as exc:
        raise WorkersFileError(f"{loaded.where('workers', name, 'kind')}: {exc}") from exc
    runner: Runner = module.make_runner(name, decl, loaded, shape)
    return runner


def label_of(name: str, decl: WorkerBase) -> Callable[[Context], str]:
    """What a declared worker's attempts run on, as the audit names it."""
    url = str(getattr(decl, "url", "")).rstrip("/")
    kind = str(getattr(decl, "kind", ""))
    if kind == "remote_graph":
        return lambda ctx: f"remote:{url}/{getattr(decl, 'graph', '')}"
    if kind == "a2a":
        return lambda ctx: f"a2a:{url}"
    return lambda ctx: model_of(name, decl, ctx)


def specs_of(loaded: Loaded, known: Collection[str]) -> list[WorkerSpec]:
    """The workers a loaded file declares, checked against the workers `known` already.

    Raises:
        WorkersFileError: a name already taken, an unknown alternative or MCP server, or a
            prompt, schema or tool that cannot be loaded; the message names the line.
    """
    declared = loaded.file.workers
    problems: list[str] = []
    for name, decl in declared.items():
        if name in known:
            problems.append(f"{loaded.where('workers', name)}: a worker is already named {name!r}")
        unknown = [a for a in decl.alternatives if a not in known and a not in declared]
        if unknown:
            where = loaded.where("workers", name, "alternatives")
            problems.append(f"{where}: unknown alternatives: {', '.join(unknown)}")
        if isinstance(decl, McpWorker):
            missing = [s for s in decl.servers if s not in loaded.file.mcp_servers]
            if missing:
                where = loaded.where("workers", name, "servers")
                problems.append(f"{where}: no [mcp_servers.{missing[0]}] in the file")
    if problems:
        raise WorkersFileError("\n".join(problems))
    specs = []
    for name, decl in declared.items():
        shape = shape_of(name, decl, loaded)
        rules = decl.rules

        def check(
            output: dict[str, Any],
            inp: WorkerInput,
            ctx: Context,
            *,
            _s: Shape = shape,
            _r: Rules = rules,
        ) -> list[str]:
            return _s.problems(_r, output, inp)

        specs.append(
            WorkerSpec(
                name=name,
                capability=decl.capability,
                description=decl.description,
                output_schema=shape.model,
                check=check,
                render=shape.render,
                alternatives=tuple(decl.alternatives),
                runner=_runner(name, decl, loaded, shape),
                model_label=label_of(name, decl),
                origin=loaded.where("workers", name),
                uses_tools=not isinstance(decl, PromptWorker),
                timeout_s=decl.timeout_s,
                max_tokens=decl.max_tokens,
                max_cost_usd=decl.max_cost_usd,
                version=declared_version(name, decl, loaded, shape),
                cacheable=decl.cache if decl.cache is not None else isinstance(decl, PromptWorker),
            )
        )
    return specs


def declared_version(name: str, decl: WorkerBase, loaded: Loaded, shape: Shape) -> str:
    """A declared worker's version: its declaration, prompt file, output schema and servers.

    What the declaration says (inline prompt, model, rules, tools, URL) in full; the text of
    its prompt file; its output's JSON schema (a schema file's too); the MCP servers it
    uses. An edited declaration or prompt is a new version, and reuses no old result.
    """
    parts = [name, decl.model_dump_json(), json.dumps(shape.model.model_json_schema())]
    if decl.prompt_file:
        try:
            parts.append(loaded.resolve(decl.prompt_file).read_text("utf-8"))
        except OSError:
            pass  # `system_prompt` reports it with the line, where the prompt is used
    for server in getattr(decl, "servers", []):
        found = loaded.file.mcp_servers.get(server)
        parts.append(found.model_dump_json() if found is not None else server)
    return hash_parts(parts)


@lru_cache(maxsize=8)
def _cached(path: str, stamp: tuple[int, int], known: tuple[str, ...]) -> tuple[WorkerSpec, ...]:
    del stamp  # part of the key: an edited file is read again
    return tuple(specs_of(load(path), known))


def declared_workers(path: str | Path, known: Collection[str]) -> list[WorkerSpec]:
    """The workers a file declares (read again when it changes).

    Raises:
        WorkersFileError: see `specs_of`; a missing file too.
    """
    file = Path(path).expanduser().resolve()
    try:
        stat = file.stat()
    except OSError as exc:
        raise WorkersFileError(f"{path}: cannot read the workers file: {exc.strerror}") from exc
    return list(_cached(str(file), (stat.st_mtime_ns, stat.st_size), tuple(known)))
