"""Run untrusted, model-written programs in a sandbox (docs/sandbox.md explains the layers).

A run gets a fresh working directory holding only the files given, a clean environment,
kernel-enforced limits and no way out: no network, no files outside its directory besides
read-only access to the Python installation and system libraries, no signals or tracing of
other processes. `launcher/launch.py` sets the layers up (namespaces, rlimits, Landlock,
seccomp) before it `execve`s the program; `supervisor.py` supervises: wall clock,
output cap, refused network calls, collection of output files. A missing layer raises
`SandboxUnavailable` unless FOREMAN_SANDBOX_ALLOW_WEAKER=1.

This module is the public interface; everything callers need is importable from here. The
parts: `limits` (`SandboxLimits`, violation messages), `result`
(`SandboxResult`), `policy` (required layers, environment, readable trees,
`SandboxUnavailable`), `workdir` (the working directory), `supervisor` and
`network_guard` (the parent's side of a run), and the launcher with its layers.

Example:
    >>> result = await run_sandboxed(["python", "main.py"], {"main.py": "print(6 * 7)"})
    >>> result.ok, result.stdout.strip()
    (True, '42')
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from foreman.workers.sandbox.limits import SandboxLimits
from foreman.workers.sandbox.policy import (
    ALLOW_WEAKER_ENV,
    REQUIRED_LAYERS,
    SIMULATE_MISSING_ENV,
    SandboxUnavailable,
    required_layers,
    weaker_allowed,
)
from foreman.workers.sandbox.result import SandboxResult
from foreman.workers.sandbox.supervisor import launch_and_supervise, probe_layers
from foreman.workers.sandbox.workdir import as_bytes, prepare, relative, remove

__all__ = [
    "ALLOW_WEAKER_ENV",
    "REQUIRED_LAYERS",
    "SIMULATE_MISSING_ENV",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "isolation_report",
    "run_sandboxed",
    "run_sandboxed_sync",
]

# One shared default, as a `SandboxLimits()` default argument would be; it is frozen.
_DEFAULT_LIMITS = SandboxLimits()


async def run_sandboxed(
    command: list[str],
    files: Mapping[str, str | bytes],
    limits: SandboxLimits = _DEFAULT_LIMITS,
    collect: Sequence[str] = (),
) -> SandboxResult:
    """Run `command` in a fresh sandboxed directory holding `files`.

    Args:
        command: Program and arguments; `python` (or `python3`) is this interpreter, so its
            site-packages (pytest, pandas, matplotlib) are importable.
        files: Relative path -> content, written before the run.
        limits: Resource limits.
        collect: Glob patterns of files to return, e.g. `("*.png", "result.json")`.

    Returns:
        The result; a limit or rule that stopped the program is named in `violation`.

    Raises:
        ValueError: A path in `files` or `collect` is absolute or contains `..`.
        SandboxUnavailable: A required isolation layer cannot be set up here.
    """
    if not command:
        raise ValueError("empty command")
    content = {relative(name): as_bytes(data) for name, data in files.items()}
    patterns = [str(relative(p)) for p in collect]
    required = required_layers()
    workdir = prepare(content)
    try:
        return await launch_and_supervise(command, workdir, limits, patterns, required)
    finally:
        # The program decides how big the tree is (50 000 files take seconds to remove): in
        # a thread, so that other runs and requests on this event loop go on meanwhile.
        await asyncio.to_thread(remove, workdir)


def run_sandboxed_sync(
    command: list[str],
    files: Mapping[str, str | bytes],
    limits: SandboxLimits = _DEFAULT_LIMITS,
    collect: Sequence[str] = (),
) -> SandboxResult:
    """`run_sandboxed` for synchronous callers (also from inside a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_sandboxed(command, files, limits, collect))
    with ThreadPoolExecutor(1) as pool:  # this thread's loop is busy: use a fresh one
        return pool.submit(asyncio.run, run_sandboxed(command, files, limits, collect)).result()


def isolation_report() -> dict[str, str]:
    """Which isolation layers work on this machine, and whether runs are allowed."""
    report = dict(probe_layers())
    report["rlimits"] = "on: CPU, address space, file size, open files, core=0, processes"
    report["environment"] = "on: clean environment, HOME and TMPDIR inside the workdir"
    missing = [name for name in REQUIRED_LAYERS if not report.get(name, "off").startswith("on")]
    if not missing:
        report["mode"] = "full isolation"
    elif weaker_allowed():
        report["mode"] = f"WEAKER ({ALLOW_WEAKER_ENV}=1), without {', '.join(missing)}"
    else:
        report["mode"] = f"unavailable, missing {', '.join(missing)}: runs raise"
    return report
