"""MCP workers (`kind = "mcp"`): a tool-calling agent over the allow-listed tools of MCP servers.

Each attempt opens its own session to every server the worker names (a stdio server is
started for the attempt and stopped after it; an HTTP session is ended), lists their tools
through `langchain_mcp_adapters`, keeps only those on the worker's allow-list and runs the
same loop as the `agent` kind (`agent.agent_attempt`). Sessions are per attempt so no
process outlives the attempt that needed it, even when the attempt times out or fails.

A server that cannot be started or reached, an allow-listed tool no server offers, and a
tool that reports an error (an MCP `isError` result) or cannot be called all end the attempt
as `failed` with a reason naming the server or tool; the orchestrator then retries,
substitutes an alternative, or gives up, as for any worker.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta
from difflib import get_close_matches
from typing import TextIO, cast

from foreman.core.extras import require

require("An MCP worker", "mcp")

import httpx  # noqa: E402  (after `require`: a missing extra is one clear sentence)
from langchain_core.tools import BaseTool  # noqa: E402
from langchain_mcp_adapters.sessions import StreamableHttpConnection, create_session  # noqa: E402
from langchain_mcp_adapters.tools import load_mcp_tools  # noqa: E402
from mcp import ClientSession, McpError, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from foreman.core.context import Context  # noqa: E402
from foreman.core.state import empty_usage  # noqa: E402
from foreman.workers.base import WorkerInput  # noqa: E402
from foreman.workers.declared import environment  # noqa: E402
from foreman.workers.declared.agent import agent_attempt, failed_output  # noqa: E402
from foreman.workers.declared.build import finish, model_of, system_prompt  # noqa: E402
from foreman.workers.declared.config import Loaded, McpServer, McpWorker  # noqa: E402
from foreman.workers.declared.outputs import Shape  # noqa: E402
from foreman.workers.spec import Runner, WorkerRun  # noqa: E402

STDERR_CHARS = 400
"""How much of a stdio server's last error output a start-up failure quotes."""
# What opening a session raises when a server cannot be started or reached: the command
# is missing (OSError), the server closed the connection or answered with an error
# (McpError), HTTP failed (httpx), or it took longer than `timeout_s`.
_UNAVAILABLE = (OSError, McpError, httpx.HTTPError, TimeoutError)


class ServerUnavailable(Exception):
    """An MCP server could not be started or reached, or lacks an allow-listed tool."""


def expanded(values: dict[str, str] | None, server: str, key: str) -> dict[str, str] | None:
    """`env` or `headers` with each `${NAME}` read from the environment (`environment.py`).

    Raises:
        ServerUnavailable: a variable is not set (the message names it, never a value).
    """
    try:
        return environment.expanded(values, f"MCP server {server}: {key}")
    except environment.UnsetVariable as exc:
        raise ServerUnavailable(str(exc)) from exc


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, which anyio's task groups raise."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _why(exc: BaseException, timeout_s: float | None = None) -> str:
    """One line saying why a server could not be used."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g}s" if timeout_s else "timed out"
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    if isinstance(exc, McpError):
        return f"the server ended the session: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _stderr_tail(errlog: TextIO) -> str:
    """The last lines a stdio server wrote to its error output, on one line."""
    errlog.flush()
    errlog.seek(0)
    return " ".join(errlog.read().split())[-STDERR_CHARS:]


@asynccontextmanager
async def _stdio_session(
    name: str, server: McpServer, loaded: Loaded, errlog: TextIO
) -> AsyncIterator[ClientSession]:
    """A session to a server this attempt starts; the process is stopped on exit.

    The server's error output goes to `errlog`, not the terminal, so a server that fails to
    start can be quoted in the reason. `mcp`'s own `stdio_client` is used for that (the
    adapters' sessions write it to Foreman's stderr); the server gets `env` on top of the
    SDK's safe default environment, not Foreman's (no API keys leak to it).
    """
    assert server.command is not None  # the schema requires it for stdio
    params = StdioServerParameters(
        command=server.command,
        args=server.args,
        env=expanded(server.env, name, "env"),
        cwd=loaded.resolve(server.cwd) if server.cwd else None,
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(
            read, write, read_timeout_seconds=timedelta(seconds=server.timeout_s)
        ) as session,
    ):
        yield session


def _http_session(name: str, server: McpServer) -> AbstractAsyncContextManager[ClientSession]:
    """A session to a streamable HTTP server, through the adapters' connection config."""
    assert server.url is not None  # the schema requires it for streamable_http
    connection: StreamableHttpConnection = {
        "transport": "streamable_http",
        "url": server.url,
        "headers": expanded(server.headers, name, "headers"),
        "timeout": server.timeout_s,
        "session_kwargs": {"read_timeout_seconds": timedelta(seconds=server.timeout_s)},
    }
    return create_session(connection)


async def _server_tools(
    stack: AsyncExitStack, name: str, server: McpServer, loaded: Loaded
) -> list[BaseTool]:
    """Open a session to server `name` on `stack` and list its tools as LangChain tools.

    Raises:
        ServerUnavailable: it could not be started, reached or initialized in `timeout_s`.
    """
    errlog: TextIO | None = None
    opening: AbstractAsyncContextManager[ClientSession]
    if server.transport == "stdio":
        errlog = stack.enter_context(
            cast(
                TextIO,
                await asyncio.to_thread(
                    tempfile.TemporaryFile, "w+", encoding="utf-8", errors="replace"
                ),
            )
        )
        opening = _stdio_session(name, server, loaded, errlog)
    else:
        opening = _http_session(name, server)
    try:
        # The session is opened on a stack of its own, handed to the attempt's once it
        # works: a transport that fails in the background (a refused HTTP connection)
        # cancels the opening, and only closing its task groups says why.
        async with asyncio.timeout(server.timeout_s), AsyncExitStack() as opened:
            session = await opened.enter_async_context(opening)
            await session.initialize()
            # isError results raise (handle_tool_errors=False): a tool that fails fails
            # the attempt, with its message as the reason, as an `agent` tool that raises
            tools = await load_mcp_tools(session, server_name=name, handle_tool_errors=False)
            stack.push_async_exit(opened.pop_all())
    except (*_UNAVAILABLE, BaseExceptionGroup) as exc:
        leaves = _leaves(exc)
        if not all(isinstance(leaf, _UNAVAILABLE) for leaf in leaves):
            raise
        where = f"`{server.command}`" if server.transport == "stdio" else str(server.url)
        reason = f"MCP server {name} ({where}) could not be used: "
        reason += _why(leaves[0], server.timeout_s)
        if errlog is not None and (said := await asyncio.to_thread(_stderr_tail, errlog)):
            reason += f"; it said: {said}"
        raise ServerUnavailable(reason) from exc
    return tools


def allowed(name: str, decl: McpWorker, offered: Sequence[tuple[str, BaseTool]]) -> list[BaseTool]:
    """The tools of `offered` (server, tool) on the worker's allow-list, in its order.

    A tool offered by two of the worker's servers comes from the first in `servers`.

    Raises:
        ServerUnavailable: an allow-listed tool none of the servers offers.
    """
    by_name: dict[str, BaseTool] = {}
    for _, tool in offered:
        by_name.setdefault(tool.name, tool)
    missing = [t for t in decl.tools if t not in by_name]
    if missing:
        # the tools it does offer are not named: they are not the worker's to know of
        close = [m for t in missing for m in get_close_matches(t, list(by_name), n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ServerUnavailable(
            f"worker {name}: allow-listed tool {', '.join(missing)} is not offered by MCP "
            f"server {', '.join(decl.servers)}{hint}"
        )
    return [by_name[t] for t in decl.tools]


async def open_tools(
    stack: AsyncExitStack, name: str, decl: McpWorker, loaded: Loaded
) -> list[BaseTool]:
    """Open the worker's servers on `stack`, one after another; its allow-listed tools.

    Raises:
        ServerUnavailable: see `_server_tools` and `allowed`.
    """
    offered: list[tuple[str, BaseTool]] = []
    for server_name in decl.servers:
        server = loaded.file.mcp_servers[server_name]
        tools = await _server_tools(stack, server_name, server, loaded)
        offered += [(server_name, t) for t in tools]
    return allowed(name, decl, offered)


def make_runner(name: str, decl: McpWorker, loaded: Loaded, shape: Shape) -> Runner:
    """The runner of an `mcp` worker: one agent attempt over fresh sessions."""
    system = system_prompt(name, decl, loaded, "agent")

    async def run(inp: WorkerInput, ctx: Context) -> WorkerRun:
        spec = model_of(name, decl, ctx)
        attempt = None
        failure = ""
        try:
            async with AsyncExitStack() as stack:
                # nothing raised in here may cross the sessions' task groups, which wrap it
                # in an ExceptionGroup: a server that cannot be used is returned, not raised
                try:
                    tools = await open_tools(stack, name, decl, loaded)
                except ServerUnavailable as exc:
                    failure = str(exc)
                else:
                    attempt = await agent_attempt(name, tools, system, inp, spec, decl.max_steps)
        except BaseExceptionGroup as group:
            leaves = _leaves(group)
            if not all(isinstance(leaf, _UNAVAILABLE) for leaf in leaves):
                # the agent's model failed (a provider error): the orchestrator handles it
                raise (leaves[0] if len(leaves) == 1 else group) from group
            if attempt is None:  # a session broke off before the agent finished
                failure = f"worker {name}: an MCP session broke off: {_why(leaves[0])}"
        if attempt is None:
            # no answer, and maybe no model call: "-", as the data worker says it
            return {
                "output": failed_output(failure, []),
                "usage": empty_usage(),
                "model": "-",
                "tool_calls": [],
            }
        output, usage, calls = attempt
        return await finish(name, output, usage, spec, calls, shape, inp, ctx)

    return run
