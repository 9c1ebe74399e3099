"""Run untrusted, model-written programs in a sandbox (docs/sandbox.md explains the layers).

A run gets a fresh working directory holding only the files given, a clean environment,
kernel-enforced limits and no way out: no network, no files outside its directory besides
read-only access to the Python installation and system libraries, no signals or tracing of
other processes. `sandbox_launch.py` sets the layers up (namespaces, rlimits, Landlock,
seccomp) before it `execve`s the program; this module supervises: wall clock, output cap,
refused network calls, collection of output files. A missing layer raises
`SandboxUnavailable` unless FOREMAN_SANDBOX_ALLOW_WEAKER=1.

Example:
    >>> result = await run_sandboxed(["python", "main.py"], {"main.py": "print(6 * 7)"})
    >>> result.ok, result.stdout.strip()
    (True, '42')
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from workers import sandbox_launch as launch

ALLOW_WEAKER_ENV = "FOREMAN_SANDBOX_ALLOW_WEAKER"
SIMULATE_MISSING_ENV = "FOREMAN_SANDBOX_SIMULATE_MISSING"  # e.g. "userns,pidns", for tests
REQUIRED_LAYERS = ("landlock", "seccomp", "userns", "pidns")
_LAUNCHER = str(Path(launch.__file__).resolve())
_INTERNAL_DIRS = (".tmp", ".cache", ".config")  # HOME-like state, never collected
_SYSTEM_READ = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache"]
_SYSTEM_READ += ["/etc/localtime", "/etc/mime.types", "/etc/fonts"]
_DEVICES = {"/dev/null": "rw", "/dev/zero": "r", "/dev/urandom": "r", "/dev/random": "r"}


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


@dataclass
class SandboxResult:
    """How a sandboxed run ended and what it produced."""

    exit_code: int | None
    """Exit status, negative for a signal; None when the sandbox killed the program."""
    stdout: str
    """Captured standard output, possibly truncated."""
    stderr: str
    """Captured standard error, possibly truncated."""
    duration_s: float
    """Wall-clock seconds from start to end."""
    violation: str | None
    """Why a limit or isolation rule stopped the program, in words; None when none did."""
    files: dict[str, bytes]
    """Collected output files by relative path."""
    blocked: list[str] = field(default_factory=list)
    """Network calls the sandbox refused, e.g. `socket(AF_INET, SOCK_STREAM)`."""
    isolation: dict[str, str] = field(default_factory=dict)
    """The isolation layers of this run and their state."""

    @property
    def ok(self) -> bool:
        """Whether the program exited 0 and no limit stopped it."""
        return self.exit_code == 0 and self.violation is None

    def summary(self) -> str:
        """One line for feedback and the audit trail."""
        if self.violation:
            head = f"stopped: {self.violation}"
        elif self.exit_code is not None and self.exit_code < 0:
            head = f"killed by signal {-self.exit_code}"
        else:
            head = "ok" if self.ok else f"exit {self.exit_code}"
        line = f"{head} after {self.duration_s:.2f} s"
        errors = [s.strip() for s in self.stderr.splitlines() if s.strip()]
        if not self.ok and errors:
            line += f"; {errors[-1][:160]}"
        if self.files:
            line += f"; files: {', '.join(sorted(self.files))}"
        return line


class SandboxUnavailable(RuntimeError):
    """Isolation cannot be set up here; the message says what is missing and what to do."""


async def run_sandboxed(
    command: list[str],
    files: Mapping[str, str | bytes],
    limits: SandboxLimits = SandboxLimits(),
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
    content = {_relative(name): _bytes(data) for name, data in files.items()}
    patterns = [str(_relative(p)) for p in collect]
    required = _required_layers()
    workdir = _prepare(content)
    try:
        return await _run(command, workdir, limits, patterns, required)
    finally:
        _remove(workdir)


def run_sandboxed_sync(
    command: list[str],
    files: Mapping[str, str | bytes],
    limits: SandboxLimits = SandboxLimits(),
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
    report = dict(_probe())
    report["rlimits"] = "on: CPU, address space, file size, open files, core=0, processes"
    report["environment"] = "on: clean environment, HOME and TMPDIR inside the workdir"
    missing = [name for name in REQUIRED_LAYERS if not report.get(name, "off").startswith("on")]
    if not missing:
        report["mode"] = "full isolation"
    elif _weaker_allowed():
        report["mode"] = f"WEAKER ({ALLOW_WEAKER_ENV}=1), without {', '.join(missing)}"
    else:
        report["mode"] = f"unavailable, missing {', '.join(missing)}: runs raise"
    return report


# --- supervising a run -------------------------------------------------------------------


async def _run(
    command: list[str], workdir: Path, limits: SandboxLimits, collect: list[str], required: set[str]
) -> SandboxResult:
    config: dict[str, Any] = {
        "argv": [_executable(command[0]), *command[1:]],
        "env": _environment(workdir),
        "read": _read_roots(),
        "write": [str(workdir)],
        "devices": _DEVICES,
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
            *(sys.executable, "-I", "-S", "-B", _LAUNCHER, json.dumps(config)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env={},
            pass_fds=(status_w, child_chan.fileno()),
            start_new_session=True,  # its own process group, away from our terminal
        )
        guard = _NetworkGuard(chan)
        output = _Output(limits.max_output_bytes)
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
        raise SandboxUnavailable(_explain(errors[0] if errors else f"launcher failed: {stderr}"))
    if not (end or stopped):
        stopped = "lost"  # the init died under the program
    exit_code = None if stopped else end.get("exit", -end.get("signal", 0))
    return SandboxResult(
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        duration_s=round(time.monotonic() - start, 3),
        violation=_diagnose(stopped, output, exit_code, end.get("cpu", 0.0), guard, limits),
        files=_collect(workdir, collect, limits),
        blocked=guard.blocked,
        isolation=layers,
    )


async def _supervise(proc: asyncio.subprocess.Process, output: _Output, wall: float) -> str | None:
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
    launch.kill_tree(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


class _Output:
    """stdout and stderr, read as they come, capped together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.parts: tuple[list[bytes], list[bytes]] = ([], [])
        self.exceeded = asyncio.Event()

    async def pump(self, stream: asyncio.StreamReader, index: int) -> None:
        while chunk := await stream.read(1 << 16):
            if len(chunk) > self.limit - self.size:
                chunk = chunk[: max(self.limit - self.size, 0)]
                self.exceeded.set()
            self.parts[index].append(chunk)
            self.size += len(chunk)

    def text(self) -> tuple[str, str]:
        out, err = (b"".join(p).decode("utf-8", "replace") for p in self.parts)
        return out, err


_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif): 80 bytes
_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp): 24 bytes
_MAX_NOTIFICATIONS = 100
_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}


class _NetworkGuard:
    """Answers the seccomp filter's notifications: refuses the call (EACCES), records it.

    The filter sends every socket() but unix stream sockets, and every connect(), here. If
    nobody answers, the kernel fails those calls itself (ENOSYS): the guard fails closed.
    """

    def __init__(self, chan: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        self.chan = chan
        self.listener: int | None = None
        self.blocked: list[str] = []
        chan.setblocking(False)
        self.loop.add_reader(chan.fileno(), self._receive)

    def _receive(self) -> None:
        try:
            _, fds, _, _ = socket.recv_fds(self.chan, 16, 1)
        except BlockingIOError:
            return
        except OSError:
            fds = []
        self.loop.remove_reader(self.chan.fileno())
        if fds:
            self.listener = fds[0]
            self.loop.add_reader(self.listener, self._answer)

    def _answer(self) -> None:
        assert self.listener is not None
        poll = select.poll()
        poll.register(self.listener, select.POLLIN)
        if not any(events & select.POLLIN for _, events in poll.poll(0)):
            self.loop.remove_reader(self.listener)  # hang-up: no sandboxed process left
            return
        notif = bytearray(80)
        try:
            fcntl.ioctl(self.listener, _NOTIF_RECV, notif)
        except OSError:
            return  # the caller died meanwhile
        # struct seccomp_notif {u64 id; u32 pid, flags; struct seccomp_data data}, where data
        # is {i32 nr; u32 arch; u64 ip; u64 args[6]}.
        (notif_id,), (nr,) = struct.unpack_from("<Q", notif, 0), struct.unpack_from("<i", notif, 16)
        family, kind = (a & 0xFFFFFFFF for a in struct.unpack_from("<QQ", notif, 32))
        if nr == launch.SYSCALLS["socket"]:
            self.blocked.append(
                f"socket({_FAMILIES.get(family, family)}, {_TYPES.get(kind & 0xF, kind & 0xF)})"
            )
        else:
            self.blocked.append("connect() to a local socket")
        try:
            fcntl.ioctl(
                self.listener, _NOTIF_SEND, struct.pack("<QqiI", notif_id, 0, -errno.EACCES, 0)
            )
        except OSError:
            pass
        if len(self.blocked) >= _MAX_NOTIFICATIONS:
            # A program hammering socket() must not keep our event loop busy: once the
            # listener is closed, the kernel refuses those calls by itself (ENOSYS).
            self.loop.remove_reader(self.listener)
            os.close(self.listener)
            self.listener = None

    def close(self) -> None:
        self.loop.remove_reader(self.chan.fileno())
        if self.listener is not None:
            self.loop.remove_reader(self.listener)
            os.close(self.listener)


# --- setup -------------------------------------------------------------------------------


def _relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or "\0" in name or path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"sandbox paths must be relative, without '..': {name!r}")
    return path


def _bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def _weaker_allowed() -> bool:
    return os.environ.get(ALLOW_WEAKER_ENV) == "1"


def _required_layers() -> set[str]:
    if _weaker_allowed():
        return set()
    if sys.platform != "linux":
        raise SandboxUnavailable(_explain(f"this is {sys.platform}, and the sandbox needs Linux"))
    return set(REQUIRED_LAYERS)


def _explain(error: str) -> str:
    return (
        f"the sandbox cannot isolate programs here: {error}. See docs/sandbox.md for what it "
        f"needs, or set {ALLOW_WEAKER_ENV}=1 to run with the layers that are available "
        "(isolation_report() lists them)."
    )


def _executable(name: str) -> str:
    if name in ("python", "python3"):
        return sys.executable
    return shutil.which(name, path=_search_path()) or name


def _search_path() -> str:
    return f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"


def _environment(workdir: Path) -> dict[str, str]:
    env = {
        "PATH": _search_path(),
        "HOME": str(workdir),
        "XDG_CACHE_HOME": str(workdir / ".cache"),
        "XDG_CONFIG_HOME": str(workdir / ".config"),
        "MPLCONFIGDIR": str(workdir / ".config" / "matplotlib"),
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PYTHONUNBUFFERED": "1",  # output written before a kill is not lost
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # As root the real and effective uids differ (see sandbox_launch), so the loader drops
    # TMPDIR (AT_SECURE); tempfile falls back to TEMP and TMP.
    env |= dict.fromkeys(("TMPDIR", "TEMP", "TMP"), str(workdir / ".tmp"))
    # One thread per numeric library: threads count as processes, and as memory.
    for name in ("OPENBLAS", "OMP", "MKL", "NUMEXPR"):
        env[f"{name}_NUM_THREADS"] = "1"
    return env


@lru_cache(maxsize=1)
def _read_roots() -> list[str]:
    """The Python installation and system libraries: readable and executable, never writable."""
    import site
    import sysconfig

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots |= {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {*site.getsitepackages(), str(Path(sys.executable).resolve().parent)}
    home = Path.home().resolve()
    for root in roots:
        if Path(root).resolve() == Path("/") or home.is_relative_to(Path(root).resolve()):
            raise SandboxUnavailable(_explain(f"the Python installation at {root} holds {home}"))
    return sorted(roots) + [p for p in _SYSTEM_READ if os.path.exists(p)]


@lru_cache(maxsize=1)
def _probe() -> dict[str, str]:
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-B", _LAUNCHER, "--probe"],
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


# --- results -----------------------------------------------------------------------------


def _diagnose(
    stopped: str | None,
    output: _Output,
    exit_code: int | None,
    cpu: float,
    guard: _NetworkGuard,
    limits: SandboxLimits,
) -> str | None:
    if stopped == "wall":
        return f"wall-clock limit of {limits.wall_seconds:g} s exceeded"
    if stopped == "lost":
        return "the sandbox's init process died, so everything in the sandbox was killed"
    if stopped == "output" or output.exceeded.is_set():
        return f"output limit of {_size(limits.max_output_bytes)} exceeded"
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
        return f"file-size limit of {_size(limits.max_file_bytes)} exceeded"
    if re.search(r"BlockingIOError: \[Errno 11\]|can't start new thread|fork: retry", tail):
        return f"process limit ({limits.max_processes}) reached"
    if re.search(r"MemoryError|Cannot allocate memory|bad_alloc|[Oo]ut of memory", tail):
        return f"memory limit of {_size(limits.memory_bytes)} exceeded"
    return None


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _collect(workdir: Path, patterns: list[str], limits: SandboxLimits) -> dict[str, bytes]:
    """Regular files matching `patterns`, never through a symlink (the sandbox is dead now)."""
    found: dict[str, bytes] = {}
    try:
        paths = sorted({p for pattern in patterns for p in workdir.glob(pattern)})
    except (OSError, RecursionError):  # a hostile tree: return nothing rather than fail
        return found
    for path in paths:
        rel = path.relative_to(workdir).as_posix()
        if rel.split("/")[0] in _INTERNAL_DIRS or os.path.realpath(path) != str(path):
            continue  # HOME-like state, or a symlink on the way
        if len(found) >= limits.max_files_returned:
            break
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_size <= limits.max_file_bytes:
                found[rel] = f.read(limits.max_file_bytes)
    return found


def _prepare(content: dict[PurePosixPath, bytes]) -> Path:
    """A fresh private working directory holding `content`."""
    workdir = Path(os.path.realpath(tempfile.mkdtemp(prefix="foreman-sandbox-")))
    try:
        for rel, data in content.items():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_bytes(data)
        for name in _INTERNAL_DIRS:
            (workdir / name).mkdir(exist_ok=True)
        if os.getuid() == 0:
            _share_with_group(workdir)
    except BaseException:
        _remove(workdir)
        raise
    return workdir


def _share_with_group(workdir: Path) -> None:
    """Make the workdir group-accessible when running as root.

    The sandbox's real uid is then not 0 (see sandbox_launch), and access(2) checks the real
    uid: with group rights (the gid stays 0) `os.access(path, os.W_OK)` tells the truth, as
    matplotlib needs. Other users still get nothing: mode 0770, group root.
    """
    for parent, _, names in os.walk(workdir):
        os.chmod(parent, 0o770)
        for name in names:
            os.chmod(os.path.join(parent, name), 0o660)


def _remove(workdir: Path) -> None:
    try:
        # The program may have made directories without permissions (mkdir mode 0).
        for parent, dirs, _ in os.walk(workdir):
            for name in dirs:
                path = os.path.join(parent, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o700)
        shutil.rmtree(workdir)
    except (OSError, RecursionError):  # e.g. directories nested thousands deep
        subprocess.run(["chmod", "-R", "u+rwx", "--", workdir], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", "--", workdir], check=False, capture_output=True)
