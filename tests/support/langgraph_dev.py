"""Start the real `langgraph dev` server on a loopback port for end-to-end tests.

The server runs from this checkout's `langgraph.json` in a scratch directory (with `graph`
and `foreman` symlinks, since `langgraph.json` paths are relative to the working directory),
so its `.langgraph_api/` data and any `.env` of the checkout stay out of the test. Reload,
browser, tracing, analytics, the version check and proxies are off; `FOREMAN_*` variables
of the caller's environment are dropped, only the ones a test passes are set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent
LANGGRAPH = Path(sys.executable).with_name("langgraph")
READY_TIMEOUT_S = 60.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
# Loopback only, never through a proxy.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class DevServer:
    """A running `langgraph dev` process and where its output goes."""

    proc: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    def log(self, chars: int = 6000) -> str:
        """The end of the server's stderr (and stdout), colour codes removed."""
        parts = []
        for path in (self.stderr, self.stdout):
            text = ANSI.sub("", path.read_text(errors="replace")) if path.exists() else ""
            parts.append(f"--- {path.name} (last {chars} chars) ---\n{text[-chars:]}")
        return "\n".join(parts)


class DevServerError(RuntimeError):
    """The server did not come up; the message holds the command and its log."""


def _get_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with DIRECT.open(req, timeout=2) as resp:
        return json.loads(resp.read())


def _announced_url(stderr: Path) -> str | None:
    """The API address the server printed (it moves to another port if ours was taken)."""
    if not stderr.exists():
        return None
    found = re.search(r"API:\s*(http://[^\s]+)", ANSI.sub("", stderr.read_text(errors="replace")))
    return found.group(1).rstrip("/") if found else None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group, killing it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue


def _wait_ready(proc: subprocess.Popen[bytes], port: int, stderr: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevServerError(f"`langgraph dev` exited with code {proc.returncode}")
        url = _announced_url(stderr) or f"http://127.0.0.1:{port}"
        try:
            if _get_json(f"{url}/ok").get("ok"):
                found = _get_json(f"{url}/assistants/search", {"graph_id": "foreman"})
                if found:
                    return url
                last_error = "no assistant for graph `foreman`"
        except (OSError, ValueError) as exc:
            last_error = repr(exc)
        time.sleep(0.25)
    raise DevServerError(f"not ready after {READY_TIMEOUT_S:g}s ({last_error})")


def _config(workdir: Path, graphs: Mapping[str, str] | None) -> Path:
    """The checkout's `langgraph.json`, or a copy in `workdir` serving `graphs` as well."""
    if not graphs:
        return REPO / "langgraph.json"
    config = json.loads((REPO / "langgraph.json").read_text())
    config["graphs"] = {**config["graphs"], **graphs}
    config.pop("env", None)
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@contextmanager
def dev_server(
    workdir: Path,
    env: Mapping[str, str],
    graphs: Mapping[str, str] | None = None,
    jobs: int = 1,
) -> Iterator[DevServer]:
    """Run `langgraph dev` in `workdir` with `env` added; stop its process group on exit.

    `graphs` (id -> `./tests/...py:attr`) are served beside Foreman's; `jobs` runs at once
    (`langgraph dev` runs one by default: a run waiting on another of the same server waits
    for ever).
    """
    if not LANGGRAPH.exists():
        raise DevServerError(f"`langgraph` CLI not found next to {sys.executable}")
    for package in ("graph", "foreman", "tests"):
        (workdir / package).symlink_to(REPO / package, target_is_directory=True)
    config = _config(workdir, graphs)
    stdout, stderr = workdir / "server.stdout.log", workdir / "server.stderr.log"
    port = free_port()
    full_env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in PROXY_VARS and not key.startswith("FOREMAN_")
    }
    full_env.update(
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        # Import this checkout's packages, whichever one the venv has installed.
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH")) if p),
    )
    full_env.update(env)
    cmd = [
        str(LANGGRAPH),
        "dev",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
        "--n-jobs-per-worker",
        str(jobs),
    ]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    server = DevServer(proc, f"http://127.0.0.1:{port}", stdout, stderr)
    try:
        try:
            server.url = _wait_ready(proc, port, stderr)
        except DevServerError as exc:
            raise DevServerError(f"{exc}\n{' '.join(cmd)}\n{server.log()}") from exc
        yield server
    finally:
        _stop(proc)
