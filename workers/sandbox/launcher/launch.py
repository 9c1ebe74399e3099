"""Sandbox launcher: confines itself, then `execve`s the untrusted program.

`foreman.workers.sandbox.supervisor` runs this package as `launcher` in `python -I -S -B`
with a JSON config (or `--probe`). It is single-threaded and stdlib-only, so it may unshare
namespaces and fork, which a `preexec_fn` in a threaded parent may not. Three processes take part:

- launcher (L): as root, swaps its real uid for `nobody`; enters a new user namespace (own
  process count, no capabilities outside it); makes its children start new PID, network,
  IPC and UTS namespaces; waits.
- init (I): PID 1 of the new PID namespace. It reaps orphans and reports how the target
  ended; when it exits, the kernel kills whatever is left in the namespace, daemons included.
- target (T): sets rlimits, drops capabilities, sets no_new_privs, applies Landlock and a
  seccomp filter, hands the filter's listener fd to the supervisor, and `execve`s.

The layers themselves are in `namespaces.py`, `landlock.py` and `seccomp.py` (system-call
plumbing in `syscalls.py`, /proc process trees in `process_tree.py`), all stdlib-only too.

Setup errors and the exit status go to the status pipe as JSON lines; the parent trusts
nothing else from here, and every limit is enforced by the kernel, not by this code.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import socket
import sys
from typing import Any

from .landlock import apply_landlock, landlock_abi
from .namespaces import enter_namespaces
from .process_tree import child_pids, kill_tree, tasks_of_uid
from .seccomp import install_seccomp
from .syscalls import SetupError, check, libc, require

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 24, 28
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 36, 38, 47
# SECBIT_NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each with its _LOCKED bit: a uid 0
# process gets no capabilities from execve.
_SECUREBITS = 0b11001111


def drop_capabilities() -> None:
    """Empty the bounding and ambient sets; uid 0 no longer regains capabilities on exec."""
    if sys.platform != "linux":
        return
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the last capability, EPERM when there are none to drop
    libc.prctl(PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0)


def _set_limits(lim: dict[str, int], layers: dict[str, str]) -> None:
    nproc = lim["nproc"] + 2  # the launcher and the init count too
    if not layers["userns"].startswith("on") and sys.platform == "linux":
        # Without a user namespace RLIMIT_NPROC counts every process of the real uid.
        nproc += tasks_of_uid(os.getuid())
        layers["processes"] = "approximate: RLIMIT_NPROC counts all processes of this uid"
    for name, soft, hard in (
        ("RLIMIT_CPU", lim["cpu"], lim["cpu"] + 1),  # SIGXCPU, then SIGKILL a second later
        ("RLIMIT_AS", lim["memory"], lim["memory"]),
        ("RLIMIT_FSIZE", lim["fsize"], lim["fsize"]),
        ("RLIMIT_NOFILE", lim["nofile"], lim["nofile"]),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_NPROC", nproc, nproc),
    ):
        if hasattr(resource, name):
            which = getattr(resource, name)
            ceiling = resource.getrlimit(which)[1]
            if ceiling != resource.RLIM_INFINITY:
                soft, hard = min(soft, ceiling), min(hard, ceiling)
            resource.setrlimit(which, (soft, hard))
    layers["rlimits"] = "on"


# --- the three processes -----------------------------------------------------------------


class _Status:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, **message: Any) -> None:
        os.write(self.fd, (json.dumps(message)[:4000] + "\n").encode())  # < PIPE_BUF: atomic


def _target(cfg: dict[str, Any], status: _Status, layers: dict[str, str]) -> None:
    """T: confine this process, then become the program."""
    required, missing = set(cfg["required"]), set(cfg["missing"])
    _set_limits(cfg["limits"], layers)
    drop_capabilities()
    if sys.platform == "linux":
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    try:
        if "landlock" in missing:
            raise SetupError("simulated as missing")
        write = cfg["write"] + (["/dev/shm"] if layers.get("shm", "").startswith("on") else [])
        layers["landlock"] = f"on: ABI {apply_landlock(cfg['read'], write, cfg['devices'])}"
    except (SetupError, OSError) as e:
        layers["landlock"] = f"off: {e}"
        require(required, "landlock", layers["landlock"])
    try:
        if "seccomp" in missing:
            raise SetupError("simulated as missing")
        listener = install_seccomp()
        socket.send_fds(socket.socket(fileno=os.dup(cfg["notify_fd"])), [b"L"], [listener])
        os.close(listener)  # the program must never answer its own notifications
        layers["seccomp"] = "on"
    except (SetupError, OSError) as e:
        layers["seccomp"] = f"off: {e}"
        require(required, "seccomp", layers["seccomp"])
    status.send(layers=layers)
    os.closerange(3, 1 << 20)  # the status pipe and the supervisor's socket stay behind
    os.umask(0o007)  # group-writable: see share_with_group in workers/sandbox/workdir.py
    try:
        os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
    except OSError as e:
        os.write(2, f"sandbox: cannot execute {cfg['argv'][0]!r}: {e.strerror}\n".encode())
    os._exit(127)


def _init(cfg: dict[str, Any], status: _Status, layers: dict[str, str]) -> None:
    """I: start the target, reap everything, report how the target ended."""
    pidns = layers["pidns"].startswith("on")

    def abort(*_: Any) -> None:
        if not pidns:  # as PID 1, our exit alone kills everything in the namespace
            for child in child_pids(os.getpid()):
                kill_tree(child)
        os._exit(1)

    # Backstops for a supervisor that died: the launcher's death, and the wall clock.
    signal.signal(signal.SIGTERM, abort)
    signal.signal(signal.SIGALRM, abort)
    signal.alarm(int(cfg["limits"]["wall"]) + 5)
    if sys.platform == "linux":
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL if pidns else signal.SIGTERM, 0, 0, 0)
        if not pidns:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans stay in reach
    target = _fork(_target, cfg, status, layers)
    while True:
        pid, wstatus, usage = os.wait4(-1, 0)
        if pid == target:
            break
    cpu = round(usage.ru_utime + usage.ru_stime, 3)
    if os.WIFSIGNALED(wstatus):
        status.send(signal=os.WTERMSIG(wstatus), cpu=cpu)
    else:
        status.send(exit=os.waitstatus_to_exitcode(wstatus), cpu=cpu)
    # As PID 1 our exit kills everything left in the namespace; otherwise we must.
    for _ in range(0 if pidns else 100):
        children = child_pids(os.getpid())
        if not children:
            break
        for child in children:
            kill_tree(child)
        while _reap():
            pass


def _reap() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG)[0] > 0
    except ChildProcessError:
        return False


def _fork(role: Any, cfg: dict[str, Any], status: _Status, layers: dict[str, str]) -> int:
    """Run `role` in a child that never returns here: setup failures are reported, not run."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        role(cfg, status, layers)
    except BaseException as e:  # fail closed, whatever went wrong: the parent raises it
        code = 125
        try:
            status.send(error=str(e) if isinstance(e, SetupError) else f"{e!r}")
        except BaseException:
            pass
    os._exit(code)


def main(argv: list[str]) -> int:
    """`CONFIG_JSON` runs a program; `--probe` prints which layers this machine supports."""
    if argv[1:] == ["--probe"]:
        print(json.dumps(probe()))
        return 0
    cfg = json.loads(argv[1])
    status = _Status(cfg["status_fd"])
    layers: dict[str, str] = {}
    supervisor = os.getppid()
    try:
        enter_namespaces(layers, set(cfg["required"]), set(cfg["missing"]))
    except (SetupError, OSError) as e:
        status.send(error=str(e))
        return 125
    if sys.platform == "linux":  # after the uid change, which clears it
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != supervisor:
        return 125  # the supervisor is already gone
    os.waitpid(_fork(_init, cfg, status, layers), 0)
    return 0


def probe() -> dict[str, str]:
    """Try every layer in this throwaway process and say which work."""
    layers = {"platform": f"{platform.system()} {platform.release()} {platform.machine()}"}
    abi = landlock_abi()
    layers["landlock"] = f"on: ABI {abi}" if abi else "off: needs Linux >= 5.13 with Landlock"
    enter_namespaces(layers, set(), set())
    try:
        if sys.platform != "linux":
            raise SetupError("not Linux")
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        os.close(install_seccomp())
        layers["seccomp"] = "on: unix stream sockets only, no connect(), tracing, mounts, watches"
    except (SetupError, OSError) as e:
        layers["seccomp"] = f"off: {e}"
    return layers
