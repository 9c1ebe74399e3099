"""System calls for the sandbox launcher: numbers, namespace flags, libc, setup errors.

The launcher and its helpers call the kernel through ctypes, because the calls they need
(Landlock, seccomp, unshare, prctl) have no stdlib wrapper. This module holds what they
share: the system-call numbers of x86_64 and aarch64, the `clone`/`unshare` namespace flags,
the libc handle, `SetupError` for a layer that cannot be set up, and small helpers to call,
check and require. It is stdlib-only, like everything the launcher imports.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

# System call numbers: x86_64 and aarch64 (the "generic" table); newer calls share numbers.
_X86 = dict(
    arch=0xC000003E,  # AUDIT_ARCH_X86_64
    socket=41, socketpair=53, connect=42, clone=56, ioctl=16, open=2, openat=257,
    prlimit64=302, seccomp=317, chmod=90, fchmod=91, fchmodat=268, chown=92, fchown=93,
    lchown=94, fchownat=260, utime=132, utimes=235, futimesat=261, utimensat=280,
    setxattr=188, lsetxattr=189, fsetxattr=190, removexattr=197, lremovexattr=198,
    fremovexattr=199, truncate=76, ptrace=101, process_vm_readv=310, process_vm_writev=311,
    bpf=321, perf_event_open=298, userfaultfd=323, keyctl=250, add_key=248, request_key=249,
    kexec_load=246, kexec_file_load=320, init_module=175, finit_module=313,
    delete_module=176, mount=165, umount2=166, pivot_root=155, chroot=161, swapon=167,
    swapoff=168, reboot=169, unshare=272, setns=308, name_to_handle_at=303,
    open_by_handle_at=304, acct=163, quotactl=179, iopl=172, ioperm=173, inotify_init=253,
    inotify_init1=294, inotify_add_watch=254, fanotify_init=300, fanotify_mark=301,
    memfd_create=319, shmget=29, shmat=30, shmctl=31, shmdt=67, semget=64, semop=65,
    semctl=66, semtimedop=220, msgget=68, msgsnd=69, msgrcv=70, msgctl=71,
)  # fmt: skip
_ARM = dict(
    arch=0xC00000B7,  # AUDIT_ARCH_AARCH64
    socket=198, socketpair=199, connect=203, clone=220, ioctl=29, openat=56,
    prlimit64=261, seccomp=277, fchmod=52, fchmodat=53, fchown=55, fchownat=54,
    utimensat=88, setxattr=5, lsetxattr=6, fsetxattr=7, removexattr=14, lremovexattr=15,
    fremovexattr=16, truncate=45, ptrace=117, process_vm_readv=270, process_vm_writev=271,
    bpf=280, perf_event_open=241, userfaultfd=282, keyctl=219, add_key=217, request_key=218,
    kexec_load=104, kexec_file_load=294, init_module=105, finit_module=273,
    delete_module=106, mount=40, umount2=39, pivot_root=41, chroot=51, swapon=224,
    swapoff=225, reboot=142, unshare=97, setns=268, name_to_handle_at=264,
    open_by_handle_at=265, acct=89, quotactl=60, inotify_init1=26, inotify_add_watch=27,
    fanotify_init=262, fanotify_mark=263, memfd_create=279, msgget=186, msgctl=187,
    msgrcv=188, msgsnd=189, semget=190, semctl=191, semtimedop=192, semop=193, shmget=194,
    shmctl=195, shmat=196, shmdt=197,
)  # fmt: skip
_SHARED = dict(
    clone3=435, openat2=437, fchmodat2=452, setxattrat=463, removexattrat=466,
    io_uring_setup=425, io_uring_enter=426, io_uring_register=427, open_tree=428,
    move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442,
    landlock_create_ruleset=444, landlock_add_rule=445, landlock_restrict_self=446,
    memfd_secret=447,
)  # fmt: skip
SYSCALLS: dict[str, int] = {
    **_SHARED,
    **{"x86_64": _X86, "aarch64": _ARM}.get(platform.machine(), {}),
}

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
ANY_NEW_NS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
ANY_NEW_NS |= CLONE_NEWPID | CLONE_NEWNET


class SetupError(Exception):
    """An isolation layer could not be set up."""


libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def check(result: int, what: str) -> int:
    """Return `result`, or raise `SetupError` naming `what` and errno when it is negative."""
    if result < 0:
        raise SetupError(f"{what} failed: {os.strerror(ctypes.get_errno())}")
    return result


def syscall(name: str, *args: Any) -> int:
    """Make system call `name` by number; `SetupError` if this machine has no number for it."""
    if name not in SYSCALLS:
        raise SetupError(f"{name}: unsupported machine {platform.machine()}")
    return int(libc.syscall(ctypes.c_long(SYSCALLS[name]), *args))


def require(required: set[str], name: str, why: str) -> None:
    """Raise `SetupError` if layer `name` is required; `why` says why it is off."""
    if name in required:
        raise SetupError(f"{name} is required but {why.removeprefix('off: ')}")


def read_proc_file(path: str) -> str:
    """A small file under /proc, stripped; empty when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""
