"""A real MCP server for the MCP worker tests (the `mcp` SDK's FastMCP), over stdio or HTTP.

    python -m tests.support.mcp_server                      # stdio
    python tests/support/mcp_server.py --http PORT          # streamable HTTP on 127.0.0.1

Every tool call the server receives is appended, one JSON line each, to the file named by
`MCP_CALL_LOG` (when set), so a test can prove a call never reached the server.
`MCP_PID_FILE`, when set, receives the process id at start-up, so a test can check that a
stdio server is gone after the attempt that started it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mcp.server.fastmcp import FastMCP

server = FastMCP("foreman-test-tools", host="127.0.0.1", log_level="WARNING")


def _log(tool: str, **args: object) -> None:
    """Note a call received, before running it (a call that raises is noted too)."""
    if path := os.environ.get("MCP_CALL_LOG"):
        with Path(path).open("a", encoding="utf-8") as log:
            log.write(json.dumps({"tool": tool, "args": args, "pid": os.getpid()}) + "\n")


@server.tool()
def miles_to_km(miles: float) -> str:
    """Convert a distance in miles to kilometres."""
    _log("miles_to_km", miles=miles)
    return f"{miles:g} miles = {miles * 1.609344:.2f} km"


@server.tool()
def word_count(text: str) -> str:
    """Count the words in a text."""
    _log("word_count", text=text)
    return f"{len(text.split())} words"


@server.tool()
def stock_level(sku: str) -> str:
    """Look up the stock level of a product by its SKU in the warehouse database."""
    _log("stock_level", sku=sku)
    raise RuntimeError(f"warehouse database unreachable while looking up {sku}")


@server.tool()
def secret_admin_tool(command: str) -> str:
    """Run an administrative command on the server. Never allow-listed in the tests."""
    _log("secret_admin_tool", command=command)
    return f"ran {command}"


def main() -> None:
    """Serve over stdio, or over streamable HTTP with `--http PORT`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve HTTP on this port")
    given = parser.parse_args()
    if pid_file := os.environ.get("MCP_PID_FILE"):
        with Path(pid_file).open("a", encoding="utf-8") as out:
            out.write(f"{os.getpid()}\n")
    if given.http:
        server.settings.port = given.http
        server.run(transport="streamable-http")
    else:
        server.run(transport="stdio")


if __name__ == "__main__":
    main()
