"""What the MCP worker tests share: the test server over HTTP, workers files, process checks.

`tests/support/mcp_server.py` is the server; this module starts it, writes workers files
that use it, and reads what it logged.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent
SERVER = REPO / "tests" / "support" / "mcp_server.py"


@contextmanager
def serve_http(log: Path) -> Iterator[str]:
    """The test server over streamable HTTP on a free loopback port, logging to `log`: its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", str(port)],
        env={**os.environ, "MCP_CALL_LOG": str(log)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP HTTP server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reaps it and closes the stderr pipe


def write_workers_file(path: Path, calls: Path, pids: Path, url: str) -> None:
    """MCP workers over both transports, each allowed a few of the server's tools.

    The stdio servers log calls to `calls` and their process ids to `pids`; `url` is the
    HTTP server's.
    """
    env = f'env = {{ MCP_CALL_LOG = "{calls}", MCP_PID_FILE = "{pids}" }}'
    stdio = f'transport = "stdio"\ncommand = "{sys.executable}"\n{env}'
    path.write_text(
        f"""
[mcp_servers.units]
{stdio}
args = ["{SERVER}"]

[mcp_servers.units_module]
{stdio}
args = ["-m", "tests.support.mcp_server"]
cwd = "{REPO}"

[mcp_servers.units_http]
transport = "streamable_http"
url = "{url}"

[mcp_servers.missing]
transport = "stdio"
command = "/nonexistent/foreman-mcp-server"

[workers.converter]
kind = "mcp"
capability = "conversion"
description = "converts distances between miles and kilometres"
servers = ["units"]
tools = ["miles_to_km"]
rules = {{ used_tools = true, must_include = ["km"] }}

[workers.http_units]
kind = "mcp"
capability = "conversion"
description = "converts distances between miles and kilometres, over HTTP"
servers = ["units_http"]
tools = ["miles_to_km"]
rules = {{ used_tools = true, must_include = ["km"] }}

[workers.counter]
kind = "mcp"
capability = "counting"
description = "counts the words of a text"
servers = ["units_module"]
tools = ["word_count"]

[workers.broken_units]
kind = "mcp"
capability = "conversion"
description = "converts distances with a server that is not installed"
servers = ["missing"]
tools = ["miles_to_km"]
alternatives = ["converter"]

[workers.stock_clerk]
kind = "mcp"
capability = "inventory"
description = "looks up stock levels in the warehouse"
servers = ["units"]
tools = ["stock_level"]
""",
        encoding="utf-8",
    )


def started(pids: Path) -> list[int]:
    """The processes the stdio servers noted in `pids` as they started."""
    return [int(p) for p in pids.read_text().split()] if pids.exists() else []


def alive(pids: Path) -> list[int]:
    """The processes of `pids` still running (a zombie, exited but not reaped, counts)."""
    return [p for p in started(pids) if Path(f"/proc/{p}").exists()]


def received(log: Path) -> list[dict[str, Any]]:
    """The tool calls a server received."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


class RogueModel(BaseChatModel):
    """Calls `secret_admin_tool` first, then the converter, then quotes what came back."""

    @property
    def _llm_type(self) -> str:
        return "rogue"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=tools, **kwargs)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            call = {"name": "secret_admin_tool", "args": {"command": "drop tables"}, "id": "c1"}
            message = AIMessage(content="", tool_calls=[call])
        elif len(results) == 1:
            call = {"name": "miles_to_km", "args": {"miles": 26.2}, "id": "c2"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            message = AIMessage(content="The tools said: " + " / ".join(m.text for m in results))
        message.usage_metadata = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        return ChatResult(generations=[ChatGeneration(message=message)])


def start_up_file(tmp_path: Path, pids: Path) -> Path:
    """Servers that fail at start-up in three ways, and a worker with a misspelt tool."""
    python = f'transport = "stdio"\ncommand = "{sys.executable}"'
    record_pid = f"import os; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\\\n'); "
    path = tmp_path / "start.toml"
    servers = {
        "exits": f'{python}\nargs = ["-c", "{record_pid}import sys; '
        "sys.stderr.write('boom: no config file\\\\n'); sys.exit(3)\"]",
        "hangs": f'{python}\nargs = ["-c", "{record_pid}import time; time.sleep(60)"]\n'
        "timeout_s = 1",
        "refused": f'transport = "streamable_http"\nurl = "http://127.0.0.1:{free_port()}/mcp"',
        "real": f'{python}\nargs = ["{SERVER}"]\nenv = {{ MCP_PID_FILE = "{pids}" }}',
    }
    text = "".join(f"[mcp_servers.{name}]\n{body}\n\n" for name, body in servers.items())
    for name in servers:
        tools = '["miles_to_kms"]' if name == "real" else '["miles_to_km"]'
        text += (
            f'[workers.{name}_w]\nkind = "mcp"\ncapability = "x"\ndescription = "x"\n'
            f'servers = ["{name}"]\ntools = {tools}\n\n'
        )
    path.write_text(text, encoding="utf-8")
    return path
