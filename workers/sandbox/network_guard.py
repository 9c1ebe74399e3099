"""The supervisor's side of the seccomp filter: refuse the sandbox's network calls, record them.

The filter (`launcher/seccomp.py`) hands every socket() but unix stream sockets, and every
connect(), to a user-notification listener; the target process passes that listener to
Foreman's process over a socket pair. `NetworkGuard` answers on the event loop with EACCES
and keeps a readable list of what was refused (`SandboxResult.blocked`).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import select
import socket
import struct

from foreman.workers.sandbox.launcher.syscalls import SYSCALLS

_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif): 80 bytes
_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp): 24 bytes
_MAX_NOTIFICATIONS = 100
_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}


class NetworkGuard:
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
        if nr == SYSCALLS["socket"]:
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
        """Stop answering; the kernel then fails further calls itself (ENOSYS)."""
        self.loop.remove_reader(self.chan.fileno())
        if self.listener is not None:
            self.loop.remove_reader(self.listener)
            os.close(self.listener)
