"""The sandbox for model-written code: it runs real programs, and nothing gets out.

Every escape test checks both that the program was stopped (with the right, readable
`violation`, or a clear error) and that nothing leaked: no connection was made, no secret
was printed, no file appeared outside, no process survived.
"""

from __future__ import annotations

import asyncio
import os
import socket
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from workers import sandbox, sandbox_supervisor
from workers.sandbox import (
    ALLOW_WEAKER_ENV,
    SIMULATE_MISSING_ENV,
    SandboxLimits,
    SandboxUnavailable,
    isolation_report,
    run_sandboxed,
    run_sandboxed_sync,
)

REPORT = isolation_report()
pytestmark = pytest.mark.skipif(
    not REPORT["mode"].startswith("full"), reason=f"sandbox {REPORT['mode']} (docs/sandbox.md)"
)

REPO = Path(__file__).resolve().parents[1]
NETWORK = "network access is blocked in the sandbox"


def code(source: str) -> dict[str, str]:
    return {"main.py": textwrap.dedent(source)}


def processes_with(marker: str) -> list[int]:
    """Host PIDs whose command line contains `marker` (seen from outside any namespace)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture
def marker() -> str:
    return f"sandbox-test-{uuid.uuid4().hex}"


def test_every_layer_is_active_here():
    assert REPORT["mode"] == "full isolation", REPORT
    for layer in ("landlock", "seccomp", "userns", "pidns", "netns", "shm", "rlimits"):
        assert REPORT[layer].startswith("on"), (layer, REPORT[layer])


# --- it runs real work --------------------------------------------------------------------


async def test_a_component_and_its_pytest_tests_pass():
    files = {
        "calc.py": "def add(a, b):\n    return a + b\n",
        "test_calc.py": "from calc import add\n\n\ndef test_add(tmp_path):\n"
        "    (tmp_path / 'scratch').write_text('ok')\n    assert add(2, 3) == 5\n",
    }
    result = await run_sandboxed(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], files)
    assert result.ok, result.summary() + result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert result.summary().startswith("ok after")


async def test_pandas_and_matplotlib_make_a_png_that_is_returned():
    script = """
        import pandas as pd
        import matplotlib.pyplot as plt

        df = pd.read_csv("data.csv")
        df.plot(x="month", y="sales")
        plt.savefig("out.png")
        print(int(df["sales"].sum()))
    """
    files = {**code(script), "data.csv": "month,sales\n1,10\n2,20\n3,15\n"}
    result = await run_sandboxed(["python", "main.py"], files, collect=("*.png", "*.csv"))
    assert result.ok, result.stderr
    assert result.stdout.strip() == "45"
    assert result.files["out.png"].startswith(b"\x89PNG")
    assert set(result.files) == {"out.png", "data.csv"}


async def test_concurrent_runs_do_not_interfere():
    runs = [
        run_sandboxed(["python", "main.py"], code(f"import time; time.sleep(0.2); print({i})"))
        for i in range(3)
    ]
    results = await asyncio.gather(*runs)
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n"]
    assert all(r.ok for r in results)


async def test_multiprocessing_gets_a_private_dev_shm():
    before = set(os.listdir("/dev/shm"))
    script = """
        import multiprocessing

        if __name__ == "__main__":
            with multiprocessing.Pool(2) as pool:
                print(pool.map(abs, [-1, -2]))
    """
    result = await run_sandboxed(["python", "main.py"], code(script))
    assert result.ok and result.stdout.strip() == "[1, 2]", result.stderr
    assert result.isolation["shm"].startswith("on")
    assert not {n for n in set(os.listdir("/dev/shm")) - before if n.startswith("sem.mp")}


async def test_collecting_and_removing_the_workdir_happen_off_the_event_loop(monkeypatch):
    # The program decides how big its tree is; globbing or removing it on the event loop
    # would stall every other run and request meanwhile.
    calls: dict[str, tuple[int, Path]] = {}

    def on_thread(name, real):
        def call(workdir, *args):
            calls[name] = (threading.get_ident(), workdir)
            return real(workdir, *args)

        return call

    monkeypatch.setattr(sandbox, "remove", on_thread("remove", sandbox.remove))
    monkeypatch.setattr(
        sandbox_supervisor, "collect", on_thread("collect", sandbox_supervisor.collect)
    )
    script = "for i in range(200):\n    open(f'f{i}.txt', 'w').close()\n"
    result = await run_sandboxed(["python", "-c", script], {}, collect=["*.txt"])
    assert result.ok and len(result.files) == 20, result.summary()
    assert calls.keys() == {"remove", "collect"}
    assert threading.get_ident() not in {thread for thread, _ in calls.values()}
    assert not calls["remove"][1].exists()


def test_the_sync_wrapper_works_without_a_loop():
    result = run_sandboxed_sync(["python", "-c", "print('hi')"], {})
    assert (result.exit_code, result.stdout, result.violation) == (0, "hi\n", None)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.py", "a/../../x.py", ""])
async def test_bad_file_paths_are_rejected(bad):
    with pytest.raises(ValueError, match="relative"):
        await run_sandboxed(["python", "-c", "pass"], {bad: "x"})
    with pytest.raises(ValueError, match="relative"):
        await run_sandboxed(["python", "-c", "pass"], {}, collect=[bad])


async def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak-4242")
    script = f"""
        import os
        print(sorted(os.environ.items()))
        import tempfile
        print(os.environ["HOME"] == os.getcwd(), tempfile.gettempdir().startswith(os.getcwd()))
        try:
            print(open("/proc/{os.getpid()}/environ", "rb").read())
        except OSError as e:
            print("parent environ:", type(e).__name__)
    """
    result = await run_sandboxed(["python", "main.py"], code(script))
    assert result.ok, result.stderr
    assert "sk-do-not-leak" not in result.stdout + result.stderr
    assert "OPENAI_API_KEY" not in result.stdout
    assert "True True" in result.stdout
    assert "parent environ: PermissionError" in result.stdout


# --- nothing gets out ---------------------------------------------------------------------


async def test_network_is_blocked_tcp_udp_and_local_sockets(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "host.sock"))
    listener.listen()
    listener.setblocking(False)
    script = f"""
        import socket

        attempts = {{
            "postgres": lambda: socket.create_connection(("127.0.0.1", 5432), timeout=2),
            "external": lambda: socket.create_connection(("1.1.1.1", 53), timeout=2),
            "ipv6": lambda: socket.create_connection(("::1", 5432), timeout=2),
            "udp": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
                b"x", ("1.1.1.1", 53)
            ),
            "host unix socket": lambda: socket.socket(socket.AF_UNIX).connect(
                "{tmp_path / "host.sock"}"
            ),
        }}
        failures = []
        for name, attempt in attempts.items():
            try:
                attempt()
                print(name, "CONNECTED")
            except OSError as e:
                print(name, "refused:", e)
                failures.append(e)
        raise failures[-1]
    """
    result = await run_sandboxed(["python", "main.py"], code(script))
    try:
        assert result.violation == NETWORK, result.summary()
        assert "CONNECTED" not in result.stdout
        assert result.stdout.count("refused: [Errno 13] Permission denied") == 5
        assert "socket(AF_INET, SOCK_STREAM)" in result.blocked
        assert "socket(AF_INET, SOCK_DGRAM)" in result.blocked
        assert "socket(AF_INET6, SOCK_STREAM)" in result.blocked
        assert "connect() to a local socket" in result.blocked
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


async def test_files_outside_the_workdir_cannot_be_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7e3a")
    targets = [str(secret), "/etc/shadow", str(REPO / "pyproject.toml"), str(REPO / ".env")]
    script = f"""
        import os

        for path in {targets!r}:
            try:
                print(path, open(path).read())
            except OSError as e:
                print(path, "->", type(e).__name__)
        for directory in ({str(REPO)!r}, {str(tmp_path)!r}, "/etc", "/tmp"):
            try:
                print(directory, os.listdir(directory))
            except OSError as e:
                print(directory, "->", type(e).__name__)
    """
    result = await run_sandboxed(["python", "main.py"], code(script))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "TOP-SECRET" not in out and "[build-system]" not in out and "root:" not in out
    for target in [*targets, str(REPO), str(tmp_path), "/etc", "/tmp"]:
        assert f"{target} -> PermissionError" in out or f"{target} -> FileNotFoundError" in out
    assert f"{secret} -> PermissionError" in out and f"{REPO} -> PermissionError" in out


async def test_files_outside_the_workdir_cannot_be_written(tmp_path):
    outside = Path("/tmp") / f"sandbox-escape-{uuid.uuid4().hex}"
    kept = tmp_path / "kept.txt"
    kept.write_text("original")
    kept.chmod(0o600)
    script = f"""
        import os

        os.chmod({str(kept)!r}, 0o777)  # Landlock cannot see chmod: it is made a no-op
        for attempt in (
            lambda: open({str(kept)!r}, "w"),
            lambda: os.unlink({str(kept)!r}),
            lambda: os.rename("main.py", {str(outside)!r}),
            lambda: os.mkdir({str(outside)!r}),
        ):
            try:
                attempt()
                print("WROTE")
            except OSError as e:
                print(type(e).__name__)
        open({str(outside)!r}, "w").write("escaped")
    """
    result = await run_sandboxed(["python", "main.py"], code(script))
    assert result.exit_code == 1
    assert "PermissionError: [Errno 13] Permission denied" in result.stderr
    assert "WROTE" not in result.stdout
    assert not outside.exists()
    assert kept.read_text() == "original" and kept.stat().st_mode & 0o777 == 0o600


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


DAEMON = """
    import os, sys, time

    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.closerange(0, 3)
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(1000)", "{m}"])
        os._exit(0)
    os.wait()
    time.sleep(0.3)
    print("daemon running")
"""


async def test_a_daemonized_grandchild_is_dead_when_the_run_returns(marker):
    result = await run_sandboxed(["python", "main.py"], code(DAEMON.format(m=marker)))
    assert result.ok and "daemon running" in result.stdout
    assert processes_with(marker) == []


async def test_collected_files_never_follow_symlinks():
    script = "import os\nos.symlink('/etc/hostname', 'leak.txt')\nopen('ok.txt', 'w').write('ok')"
    result = await run_sandboxed(["python", "main.py"], code(script), collect=["*.txt"])
    assert result.ok and result.files == {"ok.txt": b"ok"}


# --- failing closed -----------------------------------------------------------------------


async def test_a_missing_layer_refuses_to_run(monkeypatch):
    monkeypatch.setenv(SIMULATE_MISSING_ENV, "landlock")
    monkeypatch.delenv(ALLOW_WEAKER_ENV, raising=False)
    with pytest.raises(SandboxUnavailable, match=f"landlock is required.*{ALLOW_WEAKER_ENV}=1"):
        await run_sandboxed(["python", "-c", "print('ran')"], {})


async def test_weaker_mode_without_namespaces_still_bounds_and_cleans_up(monkeypatch, marker):
    monkeypatch.setenv(SIMULATE_MISSING_ENV, "userns,pidns,netns")
    monkeypatch.setenv(ALLOW_WEAKER_ENV, "1")
    result = await run_sandboxed(["python", "main.py"], code(DAEMON.format(m=marker)))
    assert result.ok and result.isolation["pidns"].startswith("off")
    assert processes_with(marker) == []
    bomb = "import os\nwhile True:\n    os.fork()\n"
    limits = SandboxLimits(max_processes=8)
    result = await run_sandboxed(["python", "-c", bomb, marker], {}, limits)
    assert result.violation == "process limit (8) reached"
    assert processes_with(marker) == []
