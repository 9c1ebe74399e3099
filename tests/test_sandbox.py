"""The sandbox for model-written code: it runs real programs, and nothing gets out.

Every escape test checks both that the program was stopped (with the right, readable
`violation`, or a clear error) and that nothing leaked: no connection was made, no secret
was printed, no file appeared outside, no process survived. Runaway programs and the limits
that stop them are in test_sandbox_limits.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from foreman.workers import sandbox
from foreman.workers.sandbox import (
    ALLOW_WEAKER_ENV,
    SIMULATE_MISSING_ENV,
    SandboxLimits,
    SandboxUnavailable,
    isolation_report,
    run_sandboxed,
    run_sandboxed_sync,
)
from foreman.workers.sandbox import supervisor as sandbox_supervisor
from tests.support.sandbox import code, processes_with

REPORT = isolation_report()
pytestmark = pytest.mark.skipif(
    not REPORT["mode"].startswith("full"), reason=f"sandbox {REPORT['mode']} (docs/sandbox.md)"
)

REPO = Path(__file__).resolve().parents[1]
NETWORK = "network access is blocked in the sandbox"


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
