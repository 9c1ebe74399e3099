"""The sandbox supervisor: spawn the launcher, watch the run, turn its end into a result.

It starts `launcher/launch.py` in a new session with a JSON config (argv, environment,
readable and writable trees, limits), answers the seccomp filter's network notifications
(`NetworkGuard`), reads stdout and stderr as they come under a shared cap, and kills the
whole process tree at the wall-clock or output limit, or when its caller is cancelled. The
launcher reports setup errors and the exit status over a status pipe, the only channel it
trusts. It also runs the launcher's `--probe` for `isolation_report()`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from foreman.workers.sandbox.launcher.process_tree import kill_tree
from foreman.workers.sandbox.limits import SandboxLimits, diagnose
from foreman.workers.sandbox.network_guard import NetworkGuard
from foreman.workers.sandbox.policy import (
    DEVICES,
    SIMULATE_MISSING_ENV,
    SandboxUnavailable,
    environment,
    executable,
    explain,
    read_roots,
)
from foreman.workers.sandbox.result import SandboxResult
from foreman.workers.sandbox.workdir import collect

# The child has no site-packages (-S) and ignores the environment (-I): put the folder that
# holds `launcher/` last on its path, after the standard library, and run the package. Its
# arguments follow `-c`, so `sys.argv[1]` is the config as when it ran as a script.
_SANDBOX_DIR = str(Path(__file__).resolve().parent)
LAUNCH_CODE = (
    f"import runpy, sys; sys.path.append({_SANDBOX_DIR!r}); "
    "runpy.run_module('launcher', run_name='__main__', alter_sys=True)"
)


async def launch_and_supervise(
    command: list[str],
    workdir: Path,
    limits: SandboxLimits,
    patterns: list[str],
    required: set[str],
) -> SandboxResult:
    """Run `command` in the prepared `workdir` under the launcher, and say how it ended.

    `patterns` are the (checked) globs of files to collect, `required` the layers whose
    absence raises `SandboxUnavailable` instead of running with less.
    """
    config: dict[str, Any] = {
        "argv": [executable(command[0]), *command[1:]],
        "env": environment(workdir),
        "read": read_roots(),
        "write": [str(workdir)],
        "devices": DEVICES,
        "required": sorted(required),
        "missing": os.environ.get(SIMULATE_MISSING_ENV, "").split(","),
        "limits": {
            "wall": limits.wall_seconds,
            "cpu": limits.cpu_seconds,
            "memory": limits.memory_bytes,
            "fsize": limits.max_file_bytes,
            "nofile": limits.max_open_files,
            "nproc": limits.max_processes,
        },
    }
    status_r, status_w = os.pipe()
    chan, child_chan = socket.socketpair()
    config |= {"status_fd": status_w, "notify_fd": child_chan.fileno()}
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-I", "-S", "-B", "-c", LAUNCH_CODE, json.dumps(config)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env={},
            pass_fds=(status_w, child_chan.fileno()),
            start_new_session=True,  # its own process group, away from our terminal
        )
        guard = NetworkGuard(chan)
        output = Output(limits.max_output_bytes)
        try:
            stopped = await _supervise(proc, output, limits.wall_seconds)
        finally:
            guard.close()
    finally:
        os.close(status_w)
        child_chan.close()
        chan.close()
        messages = _read_messages(status_r)
    stdout, stderr = output.text()
    layers: dict[str, str] = {}
    for message in messages:
        layers.update(message.get("layers", {}))
    errors = [str(m["error"]) for m in messages if "error" in m]
    end = next((m for m in messages if "exit" in m or "signal" in m), {})
    started = any("layers" in m for m in messages)  # sent just before execve
    if errors or not (started or stopped):
        raise SandboxUnavailable(explain(errors[0] if errors else f"launcher failed: {stderr}"))
    if not (end or stopped):
        stopped = "lost"  # the init died under the program
    exit_code = None if stopped else end.get("exit", -end.get("signal", 0))
    # Globbing and reading a tree the program made can take long: off the event loop.
    files = await asyncio.to_thread(collect, workdir, patterns, limits)
    return SandboxResult(
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        duration_s=round(time.monotonic() - start, 3),
        violation=diagnose(stopped, output, exit_code, end.get("cpu", 0.0), guard, limits),
        files=files,
        blocked=guard.blocked,
        isolation=layers,
    )


async def _supervise(proc: asyncio.subprocess.Process, output: Output, wall: float) -> str | None:
    """Wait for the sandbox to end; kill it at the wall-clock or output limit."""
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        asyncio.create_task(output.pump(proc.stdout, 0)),
        asyncio.create_task(output.pump(proc.stderr, 1)),
    ]
    exited = asyncio.create_task(proc.wait())
    overflow = asyncio.create_task(output.exceeded.wait())
    stopped = None
    try:
        done, _ = await asyncio.wait(
            {exited, overflow}, timeout=wall, return_when=asyncio.FIRST_COMPLETED
        )
        if exited not in done:
            stopped = "output" if overflow in done else "wall"
            _kill(proc)
        await exited
        # Once the launcher is gone, so is everything it started: EOF is imminent.
        _, pending = await asyncio.wait(pumps, timeout=2.0)
        for task in pending:
            task.cancel()
    except BaseException:  # cancelled: the sandbox must not outlive its caller
        _kill(proc)
        raise
    finally:
        overflow.cancel()
    return stopped


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return  # reaped: the pid may be someone else's now
    kill_tree(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


class Output:
    """stdout and stderr, read as they come, capped together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.parts: tuple[list[bytes], list[bytes]] = ([], [])
        self.exceeded = asyncio.Event()

    async def pump(self, stream: asyncio.StreamReader, index: int) -> None:
        """Read `stream` (0: stdout, 1: stderr) to EOF, keeping what fits under the cap."""
        while chunk := await stream.read(1 << 16):
            if len(chunk) > self.limit - self.size:
                chunk = chunk[: max(self.limit - self.size, 0)]
                self.exceeded.set()
            self.parts[index].append(chunk)
            self.size += len(chunk)

    def text(self) -> tuple[str, str]:
        """The captured stdout and stderr as text; undecodable bytes are replaced."""
        out, err = (b"".join(p).decode("utf-8", "replace") for p in self.parts)
        return out, err


@lru_cache(maxsize=1)
def probe_layers() -> dict[str, str]:
    """Which isolation layers the launcher can set up here (`--probe`), once per process."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-c", LAUNCH_CODE, "--probe"],
            capture_output=True,
            text=True,
            timeout=30,
            env={},
            check=True,
        )
        return dict(json.loads(done.stdout))
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return {"probe": f"failed: {e}"}


def _read_messages(fd: int) -> list[dict[str, Any]]:
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 1 << 16):
            data += chunk
    except BlockingIOError:
        pass  # a writer survived; nothing it writes now matters
    finally:
        os.close(fd)
    messages = []
    for line in data.splitlines():
        try:
            messages.append(json.loads(line))
        except ValueError:
            continue
    return messages
