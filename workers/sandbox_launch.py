"""Sandbox launcher: confines itself, then `execve`s the untrusted program.

`workers.sandbox` runs it as `python -I -S -B sandbox_launch.py CONFIG_JSON` (or `--probe`).
It is single-threaded and stdlib-only, so it may unshare namespaces and fork, which a
`preexec_fn` in a threaded parent may not. Three processes take part:

- launcher (L): as root, swaps its real uid for `nobody`; enters a new user namespace (own
  process count, no capabilities outside it); makes its children start new PID, network,
  IPC and UTS namespaces; waits.
- init (I): PID 1 of the new PID namespace. It reaps orphans and reports how the target
  ended; when it exits, the kernel kills whatever is left in the namespace, daemons included.
- target (T): sets rlimits, drops capabilities, sets no_new_privs, applies Landlock and a
  seccomp filter, hands the filter's listener fd to the supervisor, and `execve`s.

Setup errors and the exit status go to the status pipe as JSON lines; the parent trusts
nothing else from here, and every limit is enforced by the kernel, not by this code.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import signal
import socket
import struct
import sys
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
    open_by_handle_at=304, acct=163, quotactl=179, iopl=172, ioperm=173,
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
    open_by_handle_at=265, acct=89, quotactl=60,
)  # fmt: skip
_SHARED = dict(
    clone3=435, openat2=437, fchmodat2=452, setxattrat=463, removexattrat=466,
    io_uring_setup=425, io_uring_enter=426, io_uring_register=427, open_tree=428,
    move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442,
    landlock_create_ruleset=444, landlock_add_rule=445, landlock_restrict_self=446,
)  # fmt: skip
SYSCALLS: dict[str, int] = {
    **_SHARED,
    **{"x86_64": _X86, "aarch64": _ARM}.get(platform.machine(), {}),
}

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

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_ANY_NEW_NS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
_ANY_NEW_NS |= CLONE_NEWPID | CLONE_NEWNET
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 24, 28
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 36, 38, 47
# SECBIT_NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each with its _LOCKED bit: a uid 0
# process gets no capabilities from execve.
_SECUREBITS = 0b11001111
NOBODY = 65534
_APPARMOR_USERNS = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"

# Landlock (include/uapi/linux/landlock.h). Filesystem rights added per ABI: 1 = bits 0-12,
# 2 = REFER, 3 = TRUNCATE, 5 = IOCTL_DEV; net (ABI 4) = BIND_TCP | CONNECT_TCP; scopes
# (ABI 6) = ABSTRACT_UNIX_SOCKET | SIGNAL.
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
LL_MAKE_CHAR, LL_MAKE_BLOCK, LL_TRUNCATE, LL_IOCTL_DEV = 1 << 6, 1 << 11, 1 << 14, 1 << 15
LL_READ = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
_LL_FS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_LL_NET, _LL_SCOPES = 0b11, 0b11


class _RulesetAttr(ctypes.Structure):  # struct landlock_ruleset_attr
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):  # struct landlock_path_beneath_attr, packed: 12 bytes
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFprog(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SetupError(Exception):
    """An isolation layer could not be set up."""


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(result: int, what: str) -> int:
    if result < 0:
        raise SetupError(f"{what} failed: {os.strerror(ctypes.get_errno())}")
    return result


def _syscall(name: str, *args: Any) -> int:
    if name not in SYSCALLS:
        raise SetupError(f"{name}: unsupported machine {platform.machine()}")
    return int(_libc.syscall(ctypes.c_long(SYSCALLS[name]), *args))


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


# --- Landlock ----------------------------------------------------------------------------


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    if sys.platform != "linux":
        return 0
    return max(_syscall("landlock_create_ruleset", None, ctypes.c_size_t(0), ctypes.c_uint32(1)), 0)


def apply_landlock(read: list[str], write: list[str], devices: dict[str, str]) -> int:
    """Deny all filesystem access but the rules given; return the ABI used.

    `read` trees are readable and executable, `write` trees fully usable (no device nodes),
    `devices` maps device files to "r" or "rw". ABI 4+ also denies TCP bind/connect, ABI 6+
    keeps signals and abstract unix sockets inside the sandbox.
    """
    abi = landlock_abi()
    if abi < 1:
        raise SetupError("Landlock is not available (Linux >= 5.13 with Landlock enabled)")
    fs = _LL_FS[max(v for v in _LL_FS if v <= abi)]
    attr = _RulesetAttr(fs, _LL_NET if abi >= 4 else 0, _LL_SCOPES if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct grew with the ABI
    ruleset = _check(_syscall("landlock_create_ruleset", ctypes.byref(attr), size, 0), "landlock")
    rules = [(p, LL_READ) for p in read]
    rules += [(p, fs & ~(LL_MAKE_CHAR | LL_MAKE_BLOCK)) for p in write]
    rules += [(p, LL_READ_FILE | (LL_WRITE_FILE if m == "rw" else 0)) for p, m in devices.items()]
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # e.g. no /lib64 on aarch64
            try:
                if not os.path.isdir(path):
                    access &= LL_FILE_RIGHTS  # directory rights on a file are EINVAL
                rule = _PathBeneath(access & fs, fd)
                _check(_syscall("landlock_add_rule", ruleset, 1, ctypes.byref(rule), 0), path)
            finally:
                os.close(fd)
        _check(_syscall("landlock_restrict_self", ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


# --- seccomp -----------------------------------------------------------------------------

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
        (_JSET, _ANY_NEW_NS, "eperm", "allow"),
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
    return _check(_syscall("seccomp", 1, flags, ctypes.byref(prog)), "seccomp")


# --- namespaces, capabilities, limits, process trees -------------------------------------


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
        elif _libc.unshare(flag) != 0:
            layers[name] = f"off: unshare: {os.strerror(ctypes.get_errno())}"
            if _read(_APPARMOR_USERNS) == "1":
                layers[name] += " (AppArmor restricts unprivileged user namespaces)"
        else:
            layers[name] = on
            continue
        _require(required, name, layers[name])
    if sys.platform == "linux":
        _libc.unshare(CLONE_NEWIPC | CLONE_NEWUTS)  # best effort: SysV IPC and hostname
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
    if not os.path.isdir("/dev/shm") or not _map_ids(uid, gid) or _libc.unshare(CLONE_NEWNS):
        return "off: no mount namespace"
    # Private first: a mount must never propagate back to the host's /dev/shm.
    if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return "off: cannot make mounts private"
    opts = b"size=64m,nr_inodes=4096,mode=1777"
    if _libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts):
        return f"off: mount: {os.strerror(ctypes.get_errno())}"
    return "on: private 64 MiB /dev/shm"


def _require(required: set[str], name: str, why: str) -> None:
    if name in required:
        raise SetupError(f"{name} is required but {why.removeprefix('off: ')}")


def drop_capabilities() -> None:
    """Empty the bounding and ambient sets; uid 0 no longer regains capabilities on exec."""
    if sys.platform != "linux":
        return
    _libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the last capability, EPERM when there are none to drop
    _libc.prctl(PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0)


def _set_limits(lim: dict[str, int], layers: dict[str, str]) -> None:
    nproc = lim["nproc"] + 2  # the launcher and the init count too
    if not layers["userns"].startswith("on") and sys.platform == "linux":
        # Without a user namespace RLIMIT_NPROC counts every process of the real uid.
        nproc += _tasks_of_uid(os.getuid())
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


def _tasks_of_uid(uid: int) -> int:
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fields = dict(line.split(":", 1) for line in _read(f"/proc/{pid}/status").splitlines())
        if fields.get("Uid", "-1").split()[0] == str(uid):
            count += int(fields.get("Threads", "1"))
    return count


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in _read(f"/proc/{pid}/task/{tid}/children").split()]
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
        new = [child for child in _children(pid) if child not in seen]
        seen.update(new)
        frontier += new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


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
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    try:
        if "landlock" in missing:
            raise SetupError("simulated as missing")
        write = cfg["write"] + (["/dev/shm"] if layers.get("shm", "").startswith("on") else [])
        layers["landlock"] = f"on: ABI {apply_landlock(cfg['read'], write, cfg['devices'])}"
    except (SetupError, OSError) as e:
        layers["landlock"] = f"off: {e}"
        _require(required, "landlock", layers["landlock"])
    try:
        if "seccomp" in missing:
            raise SetupError("simulated as missing")
        listener = install_seccomp()
        socket.send_fds(socket.socket(fileno=os.dup(cfg["notify_fd"])), [b"L"], [listener])
        os.close(listener)  # the program must never answer its own notifications
        layers["seccomp"] = "on"
    except (SetupError, OSError) as e:
        layers["seccomp"] = f"off: {e}"
        _require(required, "seccomp", layers["seccomp"])
    status.send(layers=layers)
    os.closerange(3, 1 << 20)  # the status pipe and the supervisor's socket stay behind
    os.umask(0o007)  # group-writable: see _share_with_group in workers/sandbox.py
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
            for child in _children(os.getpid()):
                kill_tree(child)
        os._exit(1)

    # Backstops for a supervisor that died: the launcher's death, and the wall clock.
    signal.signal(signal.SIGTERM, abort)
    signal.signal(signal.SIGALRM, abort)
    signal.alarm(int(cfg["limits"]["wall"]) + 5)
    if sys.platform == "linux":
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL if pidns else signal.SIGTERM, 0, 0, 0)
        if not pidns:
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans stay in reach
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
        children = _children(os.getpid())
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
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
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
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        os.close(install_seccomp())
        layers["seccomp"] = "on: only unix stream sockets, no connect(), no tracing or mounts"
    except (SetupError, OSError) as e:
        layers["seccomp"] = f"off: {e}"
    return layers


if __name__ == "__main__":
    sys.exit(main(sys.argv))
