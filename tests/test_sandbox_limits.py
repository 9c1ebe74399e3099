"""The sandbox's limits: a runaway program is stopped, and the host keeps its resources.

Each test runs a real hostile program and checks both the readable `violation` (or the
error the program got) and that nothing outlived or outgrew the run: no process left, no
memory held beyond the limit, no inotify instance taken from the host user.
"""

from __future__ import annotations

import pytest

from foreman.workers.sandbox import SandboxLimits, isolation_report, run_sandboxed
from tests.support.sandbox import code, processes_with

REPORT = isolation_report()
pytestmark = pytest.mark.skipif(
    not REPORT["mode"].startswith("full"), reason=f"sandbox {REPORT['mode']} (docs/sandbox.md)"
)


async def test_a_fork_bomb_is_bounded_and_cleaned_up(marker):
    bomb = "import os\nwhile True:\n    os.fork()\n"
    limits = SandboxLimits(max_processes=8, wall_seconds=10)
    result = await run_sandboxed(["python", "-c", bomb, marker], {}, limits)
    assert result.violation == "process limit (8) reached", result.summary()
    assert result.duration_s < 5
    assert processes_with(marker) == []


async def test_a_memory_bomb_hits_the_memory_limit():
    bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(32 << 20))\n"
    limits = SandboxLimits(memory_bytes=256 << 20)
    result = await run_sandboxed(["python", "-c", bomb], {}, limits)
    assert result.violation == "memory limit of 256 MiB exceeded", result.summary()
    assert "MemoryError" in result.stderr


async def test_memory_outside_the_address_space_stays_under_the_memory_limit():
    # RLIMIT_AS counts mappings, not pages written into a memfd or a /dev/shm file (each may
    # grow to max_file_bytes) nor SysV shared memory after shmdt(): a hog would hold far more.
    script = """
        import ctypes, errno, os

        chunk, target = b"x" * (8 << 20), 512 << 20
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p

        def hold(new_file):
            held = 0  # the files stay open: their pages stay in memory
            try:
                while held < target:
                    fd = new_file(held)
                    while held < target:
                        try:
                            held += os.write(fd, chunk)
                        except OSError as e:
                            if e.errno != errno.EFBIG:
                                raise
                            break  # this file is at max_file_bytes: take another
            except OSError as e:
                return held, errno.errorcode[e.errno]
            return held, "none"

        def segments():
            held = 0
            while held < target:
                segment = libc.shmget(0, 64 << 20, 0o600)  # IPC_PRIVATE
                if segment < 0:
                    return held, errno.errorcode[ctypes.get_errno()]
                address = libc.shmat(segment, None, 0)
                ctypes.memset(address, 1, 64 << 20)
                libc.shmdt(ctypes.c_void_p(address))  # unmapped, but the pages stay
                held += 64 << 20
            return held, "none"

        print("memfd", *hold(lambda n: os.memfd_create("hog")))
        print("shm", *hold(lambda n: os.open(f"/dev/shm/hog{n}", os.O_CREAT | os.O_WRONLY)))
        print("sysv", *segments())
        queue = libc.msgget(0, 0o600)  # message queues hold kernel memory, unbounded too
        print("msgget", 0, errno.errorcode[ctypes.get_errno()] if queue < 0 else "none")
    """
    limits = SandboxLimits(memory_bytes=256 << 20)
    result = await run_sandboxed(["python", "main.py"], code(script), limits)
    assert result.ok, result.stderr
    held = {
        name: (int(size), error) for name, size, error in map(str.split, result.stdout.splitlines())
    }
    assert held["memfd"] == held["sysv"] == held["msgget"] == (0, "ENOSYS")
    assert held["shm"][0] <= 64 << 20 and held["shm"][1] == "ENOSPC"  # the private tmpfs
    assert sum(size for size, _ in held.values()) <= limits.memory_bytes


async def test_a_busy_loop_hits_the_cpu_limit(marker):
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=10)
    result = await run_sandboxed(["python", "-c", "while True: pass", marker], {}, limits)
    assert result.violation == "CPU-time limit of 1 s exceeded", result.summary()
    assert 0.9 < result.duration_s < 5
    assert processes_with(marker) == []


async def test_a_sleeping_program_hits_the_wall_clock(marker):
    limits = SandboxLimits(wall_seconds=1)
    result = await run_sandboxed(
        ["python", "-c", "import time; time.sleep(1000)", marker], {}, limits
    )
    assert result.violation == "wall-clock limit of 1 s exceeded"
    assert result.exit_code is None and result.duration_s < 3
    assert processes_with(marker) == []


async def test_printing_gigabytes_hits_the_output_limit():
    flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    limits = SandboxLimits(max_output_bytes=10_000)
    result = await run_sandboxed(["python", "-c", flood], {}, limits)
    assert result.violation == "output limit of 10 kB exceeded"
    assert len(result.stdout) + len(result.stderr) <= 10_000
    assert result.duration_s < 3


async def test_a_large_file_hits_the_file_size_limit():
    limits = SandboxLimits(max_file_bytes=1 << 20)
    result = await run_sandboxed(
        ["python", "-c", "open('big', 'wb').write(bytes(2 << 20))"], {}, limits, collect=["big"]
    )
    assert result.violation == "file-size limit of 1 MiB exceeded"
    assert len(result.files.get("big", b"")) <= 1 << 20


async def test_file_watching_is_absent_so_no_host_inotify_instance_is_used():
    # Landlock does not mediate watches: inotify or fanotify would see names of files made
    # in /tmp or another run's directory, and use up the instances of the host user.
    script = """
        import ctypes, errno

        libc = ctypes.CDLL(None, use_errno=True)
        for name, call in (
            ("inotify_init1", lambda: libc.inotify_init1(0)),
            ("fanotify_init", lambda: libc.fanotify_init(0x200, 0)),  # FAN_REPORT_FID: no privilege
        ):
            created = 0
            while call() >= 0:
                created += 1
            print(name, created, errno.errorcode[ctypes.get_errno()])
    """
    result = await run_sandboxed(["python", "main.py"], code(script))
    assert result.ok, result.stderr
    assert result.stdout.splitlines() == ["inotify_init1 0 ENOSYS", "fanotify_init 0 ENOSYS"]
