"""Namespaces for the sandbox: its own user, PID, network, IPC, UTS and mount namespaces.

The launcher enters a new user namespace (its own process count, no capabilities outside
it) and makes its children start new PID, network, IPC and UTS namespaces, so the whole
process tree dies with the sandbox and has no network interfaces. With the user namespace it
also mounts a private /dev/shm in a mount namespace of its own. As root it first swaps its
real uid for `nobody`. Stdlib-only, like everything the launcher imports.
"""

from __future__ import annotations

import ctypes
import os
import sys

from .syscalls import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    libc,
    read_proc_file,
    require,
)

MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
NOBODY = 65534
_APPARMOR_USERNS = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"


def enter_namespaces(layers: dict[str, str], required: set[str], missing: set[str]) -> None:
    """Enter a new user namespace; later children start new PID/net/IPC/UTS namespaces.

    Must run single-threaded. A failure raises if the layer is required, else is recorded
    in `layers`. `missing` names layers to treat as unavailable, to test the fallbacks.
    """
    if os.getuid() == 0:
        # RLIMIT_NPROC never binds a real uid 0, even in a user namespace. The effective uid
        # stays 0 so the Python installation stays reachable (e.g. under /root, mode 0700);
        # the user namespace takes away every capability that came with it.
        os.setresuid(NOBODY, 0, 0)
    ids = os.geteuid(), os.getegid()  # inside the namespace they read as unmapped (65534)
    for name, flag, on in (
        ("userns", CLONE_NEWUSER, "on: own process count, no capabilities outside it"),
        ("pidns", CLONE_NEWPID, "on: the whole process tree dies with the sandbox"),
        ("netns", CLONE_NEWNET, "on: no network interfaces"),
    ):
        if sys.platform != "linux":
            layers[name] = "off: not Linux"
        elif name in missing:
            layers[name] = "off: simulated as missing"
        elif libc.unshare(flag) != 0:
            layers[name] = f"off: unshare: {os.strerror(ctypes.get_errno())}"
            if read_proc_file(_APPARMOR_USERNS) == "1":
                layers[name] += " (AppArmor restricts unprivileged user namespaces)"
        else:
            layers[name] = on
            continue
        require(required, name, layers[name])
    if sys.platform == "linux":
        libc.unshare(CLONE_NEWIPC | CLONE_NEWUTS)  # best effort: SysV IPC and hostname
        layers["shm"] = _private_shm(*ids) if layers["userns"].startswith("on") else "off"


def _map_ids(uid: int, gid: int) -> bool:
    """Map our effective ids into the user namespace: as themselves, or root's as 65534.

    Never as 0, so execve grants no capabilities inside either. Files the sandbox owns then
    look owned by its own uid, and a tmpfs of the namespace accepts new files.
    """
    try:
        for name, text in (
            ("uid_map", f"{uid or NOBODY} {uid} 1"),
            ("setgroups", "deny"),  # required before an unprivileged gid_map
            ("gid_map", f"{gid or NOBODY} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError:
        return False
    return True


def _private_shm(uid: int, gid: int) -> str:
    """Mount a small private tmpfs on /dev/shm, so POSIX semaphores (multiprocessing) work."""
    if not os.path.isdir("/dev/shm") or not _map_ids(uid, gid) or libc.unshare(CLONE_NEWNS):
        return "off: no mount namespace"
    # Private first: a mount must never propagate back to the host's /dev/shm.
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return "off: cannot make mounts private"
    opts = b"size=64m,nr_inodes=4096,mode=1777"
    if libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts):
        return f"off: mount: {os.strerror(ctypes.get_errno())}"
    return "on: private 64 MiB /dev/shm"
