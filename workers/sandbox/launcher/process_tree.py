"""Process trees under /proc, for the sandbox: count a user's tasks, find and kill descendants.

Used on both sides: the supervisor kills the launcher's whole tree at the wall-clock or
output limit; the init kills what is left when there is no PID namespace to do it, and the
launcher counts a uid's tasks when RLIMIT_NPROC cannot be per-namespace. Stdlib-only, like
everything the launcher imports.
"""

from __future__ import annotations

import os
import signal

from .syscalls import read_proc_file


def tasks_of_uid(uid: int) -> int:
    """How many tasks (threads) the processes of real uid `uid` have: what RLIMIT_NPROC counts."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        status = read_proc_file(f"/proc/{pid}/status")
        fields = dict(line.split(":", 1) for line in status.splitlines())
        if fields.get("Uid", "-1").split()[0] == str(uid):
            count += int(fields.get("Threads", "1"))
    return count


def child_pids(pid: int) -> list[int]:
    """The direct children of process `pid`, from all its threads."""
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in read_proc_file(f"/proc/{pid}/task/{tid}/children").split()]
    except OSError:
        pass
    return found


def kill_tree(root: int) -> None:
    """SIGSTOP `root` and all its descendants (so none can fork away), then SIGKILL them."""
    stopped, frontier, seen = [], [root], {root}
    while frontier:
        pid = frontier.pop()
        try:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        except OSError:
            pass
        new = [child for child in child_pids(pid) if child not in seen]
        seen.update(new)
        frontier += new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
