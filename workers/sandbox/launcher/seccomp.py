"""The sandbox's seccomp filter: which system calls are refused, faked or sent to the supervisor.

A classic-BPF program over the system-call number and arguments, installed by the target
process just before `execve` with a user-notification listener: socket() calls other than
unix stream sockets, and every connect(), are handed to the supervisor in Foreman's process
(`network_guard.py`), which refuses them and records them. Tracing, mounts,
namespaces, kernel attack surface and ownership changes are refused; metadata changes that
Landlock does not mediate are made no-ops; file watching, memfd and SysV IPC look absent.
Stdlib-only, like everything the launcher imports.
"""

from __future__ import annotations

import ctypes
import platform
import struct

from .syscalls import ANY_NEW_NS, SYSCALLS, SetupError, check, syscall

# Refused (EPERM): tracing, kernel attack surface, namespaces, mounts, modules, ownership.
_DENY = """ptrace process_vm_readv process_vm_writev bpf perf_event_open userfaultfd keyctl
    add_key request_key kexec_load kexec_file_load init_module finit_module delete_module mount
    umount2 pivot_root chroot swapon swapoff reboot unshare setns name_to_handle_at
    open_by_handle_at acct quotactl iopl ioperm io_uring_setup io_uring_enter io_uring_register
    open_tree move_mount fsopen fsconfig fsmount fspick mount_setattr truncate chown fchown
    lchown fchownat""".split()
# Landlock does not mediate chmod, utime or xattrs, so they could touch files outside the
# workdir: they "succeed" without effect instead, which keeps shutil.copy/copy2 working.
_NOOP = """chmod fchmod fchmodat fchmodat2 utime utimes futimesat utimensat setxattr lsetxattr
    fsetxattr removexattr lremovexattr fremovexattr setxattrat removexattrat""".split()
# Made to look absent (ENOSYS, as on a kernel built without them, which is the failure
# programs are prepared for). Landlock does not mediate file watches, so inotify and
# fanotify would let the program watch /tmp and other runs' directories (names of files
# created there) and use up the instances of the host user, whose limit they count against.
# RLIMIT_AS counts mapped memory only: pages written into memfds are not, so a program
# could hold open-files x max_file_bytes of memory per process; SysV shared memory stays
# after shmdt() and message queues hold kernel memory, neither bounded by any rlimit.
# Nothing Foreman runs uses them (Python, pytest, pandas, matplotlib, multiprocessing, whose
# semaphores live in /dev/shm; libffi only as a fallback).
_ABSENT = """inotify_init inotify_init1 inotify_add_watch fanotify_init fanotify_mark
    memfd_create memfd_secret shmget shmat shmctl shmdt semget semop semctl semtimedop
    msgget msgsnd msgrcv msgctl""".split()


class _SockFprog(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_LD, _JEQ, _JGE, _JSET, _AND, _RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06  # classic BPF
_ALLOW, _ERRNO, _NOTIFY, _KILL = 0x7FFF0000, 0x00050000, 0x7FC00000, 0x80000000
_Insn = tuple[int, int, int | str, int | str]  # code, k, jump if true, jump if false


def _filter_program() -> bytes:
    """The filter, over struct seccomp_data {i32 nr; u32 arch; u64 ip; u64 args[6]}."""
    nr = SYSCALLS
    arg0, arg1, arg2 = 16, 24, 32  # low 32 bits (little-endian) of args[0..2]
    prog: list[_Insn | str] = [
        (_LD, 4, 0, 0),
        (_JEQ, nr["arch"], 0, "kill"),  # another ABI (i386 on x86_64) would bypass the table
        (_LD, 0, 0, 0),
        (_JGE, 0x40000000, "kill", 0),  # x32 system calls
        *[(_JEQ, nr[name], "eperm", 0) for name in _DENY if name in nr],
        *[(_JEQ, nr[name], "noop", 0) for name in _NOOP if name in nr],
        *[(_JEQ, nr[name], "enosys", 0) for name in _ABSENT if name in nr],
        (_JEQ, nr["socket"], "socket", 0),
        (_JEQ, nr["socketpair"], "type", 0),
        (_JEQ, nr["connect"], "notify", 0),  # only unix sockets exist: no host sockets
        (_JEQ, nr["clone"], "clone", 0),
        (_JEQ, nr["clone3"], "enosys", 0),  # flags behind a pointer; glibc falls back
        (_JEQ, nr["openat2"], "enosys", 0),  # flags behind a pointer; glibc never needs it
        (_JEQ, nr["prlimit64"], "prlimit", 0),
        (_JEQ, nr["ioctl"], "ioctl", 0),
        (_JEQ, nr["openat"], "openat", 0),
        *([(_JEQ, nr["open"], "open", 0)] if "open" in nr else []),
        (_RET, _ALLOW, 0, 0),
        "socket",  # AF_UNIX stream/seqpacket only; anything else goes to the supervisor
        (_LD, arg0, 0, 0),
        (_JEQ, 1, 0, "notify"),
        "type",  # datagram unix sockets could sendto() a host socket by its path
        (_LD, arg1, 0, 0),
        (_AND, 0xF, 0, 0),
        (_JEQ, 1, "allow", 0),
        (_JEQ, 5, "allow", "eacces"),
        "clone",
        (_LD, arg0, 0, 0),
        (_JSET, ANY_NEW_NS, "eperm", "allow"),
        "prlimit",  # its own limits only
        (_LD, arg0, 0, 0),
        (_JEQ, 0, "allow", "eperm"),
        "ioctl",  # FS_IOC_SETFLAGS (64/32-bit), FS_IOC_FSSETXATTR: chattr
        (_LD, arg1, 0, 0),
        *[(_JEQ, request, "noop", 0) for request in (0x40086602, 0x40046602, 0x401C5820)],
        (_RET, _ALLOW, 0, 0),
        # open(O_RDONLY | O_TRUNC) truncates, unseen by Landlock before ABI 3.
        *[item for arg, name in ((arg2, "openat"), (arg1, "open")) for item in (
            name, (_LD, arg, 0, 0), (_JSET, 0o1000, 0, "allow"), (_AND, 3, 0, 0),
            (_JEQ, 0, "eperm", "allow"),
        )],
        *[item for name, value in (
            ("allow", _ALLOW), ("eperm", _ERRNO | 1), ("eacces", _ERRNO | 13),
            ("enosys", _ERRNO | 38), ("noop", _ERRNO | 0), ("notify", _NOTIFY), ("kill", _KILL),
        ) for item in (name, (_RET, value, 0, 0))],
    ]  # fmt: skip
    labels: dict[str, int] = {}
    code: list[_Insn] = []
    for item in prog:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)

    def offset(target: int | str, at: int) -> int:
        return labels[target] - at - 1 if isinstance(target, str) else target

    return b"".join(
        struct.pack("<HBBI", op, offset(jt, i), offset(jf, i), k)
        for i, (op, k, jt, jf) in enumerate(code)
    )


def install_seccomp() -> int:
    """Install the filter on this thread (needs no_new_privs); return the listener fd."""
    if "socket" not in SYSCALLS:
        raise SetupError(f"seccomp: unsupported machine {platform.machine()}")
    program = _filter_program()
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    flags = 1 << 3  # SECCOMP_FILTER_FLAG_NEW_LISTENER (Linux 5.0)
    return check(syscall("seccomp", 1, flags, ctypes.byref(prog)), "seccomp")
