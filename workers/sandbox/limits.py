"""What one sandboxed run may use (`SandboxLimits`), and the words for the limit that stopped it.

The kernel and the supervisor enforce the limits; `diagnose` turns how a run ended into the
result's `violation`, e.g. "wall-clock limit of 30 s exceeded". Some
violations can only be inferred from the program's own error messages (docs/sandbox.md,
"Limits and violations").
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foreman.workers.sandbox.network_guard import NetworkGuard
    from foreman.workers.sandbox.supervisor import Output


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed run may use."""

    wall_seconds: float = 30.0
    """Real time until the whole process tree is killed."""
    cpu_seconds: int = 20
    """CPU time per process (RLIMIT_CPU)."""
    memory_bytes: int = 1 << 30
    """Address space per process (RLIMIT_AS); enough for `import pandas, matplotlib`."""
    max_processes: int = 32
    """Processes and threads at once, the program itself included."""
    max_output_bytes: int = 256_000
    """stdout + stderr captured; exceeding it kills the program."""
    max_file_bytes: int = 16 << 20
    """Size of any single file written (RLIMIT_FSIZE)."""
    max_files_returned: int = 20
    """At most this many files are collected."""
    max_open_files: int = 256
    """File descriptors per process (RLIMIT_NOFILE)."""


def diagnose(
    stopped: str | None,
    output: Output,
    exit_code: int | None,
    cpu: float,
    guard: NetworkGuard,
    limits: SandboxLimits,
) -> str | None:
    """Which limit or isolation rule stopped the run, in words; None when none did."""
    if stopped == "wall":
        return f"wall-clock limit of {limits.wall_seconds:g} s exceeded"
    if stopped == "lost":
        return "the sandbox's init process died, so everything in the sandbox was killed"
    if stopped == "output" or output.exceeded.is_set():
        return f"output limit of {format_size(limits.max_output_bytes)} exceeded"
    sig = -exit_code if exit_code is not None and exit_code < 0 else 0
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds):
        return f"CPU-time limit of {limits.cpu_seconds} s exceeded"
    if sig == signal.SIGSYS:
        return "a forbidden system call was made (seccomp)"
    if exit_code == 0:
        return None
    if guard.blocked:
        return "network access is blocked in the sandbox"
    # The rest can only be inferred from the program's own error messages, which a test
    # runner (pytest) prints on stdout.
    tail = "\n".join(text[-4000:] for text in output.text())
    if sig == signal.SIGXFSZ or "File too large" in tail:
        return f"file-size limit of {format_size(limits.max_file_bytes)} exceeded"
    if re.search(r"BlockingIOError: \[Errno 11\]|can't start new thread|fork: retry", tail):
        return f"process limit ({limits.max_processes}) reached"
    if re.search(r"MemoryError|Cannot allocate memory|bad_alloc|[Oo]ut of memory", tail):
        return f"memory limit of {format_size(limits.memory_bytes)} exceeded"
    return None


def format_size(n: int) -> str:
    """`n` bytes in the largest binary or decimal unit that divides it, e.g. "1 GiB", "256 kB"."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"
