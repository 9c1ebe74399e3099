"""Landlock for the sandbox: deny the program every file but the trees it is given.

The target process applies it just before `execve`: the Python installation and system
libraries read + execute, the working directory read/write, a few device files. Newer
kernels add to it automatically (ABI 4: no TCP bind/connect; ABI 6: signals and abstract
unix sockets stay inside the sandbox). Stdlib-only, like everything the launcher imports.
"""

from __future__ import annotations

import ctypes
import os
import sys

from .syscalls import SetupError, check, syscall

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


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    if sys.platform != "linux":
        return 0
    return max(syscall("landlock_create_ruleset", None, ctypes.c_size_t(0), ctypes.c_uint32(1)), 0)


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
    ruleset = check(syscall("landlock_create_ruleset", ctypes.byref(attr), size, 0), "landlock")
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
                check(syscall("landlock_add_rule", ruleset, 1, ctypes.byref(rule), 0), path)
            finally:
                os.close(fd)
        check(syscall("landlock_restrict_self", ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi
