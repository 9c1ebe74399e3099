"""Serve Foreman from several Aegra instances that share one PostgreSQL and one Redis.

Aegra (https://github.com/ibbybuilds/aegra, Apache-2.0) serves the graphs `langgraph.json`
names over the LangGraph Platform HTTP API, so `langgraph_sdk` clients work unchanged. With
`REDIS_BROKER_ENABLED=true` every instance pushes the runs it accepts onto one Redis list and
executes runs it pulls from that list: any instance may execute a run another accepted. The
worker executing a run holds a lease on it in PostgreSQL and renews it; when an instance dies,
the lease reaper of a live instance puts its runs back on the queue (see `aegra.env`).

Run with any Python >= 3.11 that has psycopg (Foreman's dev `.venv` has it: `make install`):

    python deploy/aegra/cluster.py install   # .aegra/venv: Python >= 3.12, aegra-api, Foreman
    python deploy/aegra/cluster.py up        # 2 instances on 127.0.0.1:2026-2027 until Ctrl-C

`up` creates the database if missing, migrates it once, starts the instances with
`langgraph.json` (unchanged: the same file LangGraph Platform deploys) and waits until each
answers `/health`. The test `tests/test_aegra.py` drives the same `Cluster` class.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = REPO / ".aegra" / "venv"
ENV_FILE = HERE / "aegra.env"
REQUIREMENTS = HERE / "requirements.txt"
STAMP_NAME = ".installed"
MIN_PYTHON = (3, 12)  # aegra-api >= 0.7 requires it
# Loopback only, never through a proxy.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def venv_python(venv: Path = VENV) -> Path:
    """The interpreter of the Aegra virtualenv."""
    return venv / "bin" / "python"


def is_installed(venv: Path = VENV) -> bool:
    """Whether `install` completed for this virtualenv."""
    return (venv / STAMP_NAME).exists() and venv_python(venv).exists()


def find_python() -> str:
    """A Python >= 3.12 to build the virtualenv with: `$AEGRA_PYTHON`, on PATH, or pyenv's."""
    candidates = [os.environ.get("AEGRA_PYTHON", ""), "python3.13", "python3.12"]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob("3.1[2-9]*/bin/python"))
    for candidate in filter(None, candidates):
        exe = shutil.which(candidate)
        if exe is None:
            continue
        probe = f"import sys; sys.exit(sys.version_info[:2] < {MIN_PYTHON!r})"
        if subprocess.run([exe, "-c", probe], capture_output=True).returncode == 0:
            return exe
    raise SystemExit("no Python >= 3.12 found: set AEGRA_PYTHON to one")


def install(venv: Path = VENV, python: str | None = None) -> None:
    """Create the Aegra virtualenv and install aegra-api and this checkout of Foreman in it."""
    python = python or find_python()
    (venv / STAMP_NAME).unlink(missing_ok=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # Foreman's postgres extra: the instances keep checkpoints and outputs in PostgreSQL.
    subprocess.run([*pip, "-r", str(REQUIREMENTS), "-e", f"{REPO}[postgres]"], check=True)
    (venv / STAMP_NAME).touch()


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    """`KEY=VALUE` lines of an env file; blank lines and `#` comments are skipped."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def ensure_database(url: str) -> None:
    """Create the database `url` names if its server does not have it yet."""
    import psycopg  # Aegra depends on it, and Foreman's postgres extra

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{name}"')


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with _DIRECT.open(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class Instance:
    """One Aegra server process on a loopback port."""

    def __init__(self, name: str, port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 4000) -> str:
        """The end of the instance's log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} {self.log} ---\n{text[-chars:]}"

    def signal(self, sig: int) -> None:
        """Send `sig` to the instance's whole process group."""
        if self.alive:
            assert self.proc is not None
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Terminate the process group; kill it if it lingers."""
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if not self.alive:
                return
            self.signal(sig)
            assert self.proc is not None
            try:
                self.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue


class Cluster:
    """N Aegra instances serving `langgraph.json` from one PostgreSQL and one Redis.

    Example:
        >>> with Cluster(ports=[2026, 2027], log_dir=Path("/tmp/aegra")) as cluster:
        ...     print([i.url for i in cluster.instances])
    """

    def __init__(
        self,
        *,
        ports: Sequence[int] = (2026, 2027),
        log_dir: Path,
        env: dict[str, str] | None = None,
        venv: Path = VENV,
        config: Path = REPO / "langgraph.json",
        ready_timeout_s: float = 60.0,
    ) -> None:
        """Prepare (not start) the instances.

        Args:
            ports: One loopback port per Aegra server to start.
            log_dir: Where each instance's log (and working directory) goes.
            env: Base environment (default: this process's); `aegra.env` fills what it lacks.
            venv: The virtualenv `install` made.
            config: The LangGraph configuration the servers load.
            ready_timeout_s: How long an instance may take to answer `/health`.
        """
        self.venv = venv
        self.config = config
        self.log_dir = log_dir
        self.ready_timeout_s = ready_timeout_s
        base = dict(os.environ if env is None else env)
        self.env = {**read_env(), **base}
        for var in _PROXY_VARS:
            self.env.pop(var, None)
        self.env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        self.env.update(AEGRA_CONFIG=str(config), HOST="127.0.0.1", PYTHONUNBUFFERED="1")
        self.instances = [
            Instance(f"aegra-{i}", port, log_dir / f"aegra-{i}.log") for i, port in enumerate(ports)
        ]

    @property
    def database_url(self) -> str:
        """The PostgreSQL every instance uses."""
        return self.env["DATABASE_URL"]

    def migrate(self) -> None:
        """Create the database if needed and bring it to head, once for all (`migrate.py`)."""
        ensure_database(self.database_url)
        with (self.log_dir / "migrate.log").open("wb") as log:
            subprocess.run(
                [str(venv_python(self.venv)), str(HERE / "migrate.py")],
                env=self.env,
                cwd=self.log_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )

    def start_instance(self, instance: Instance) -> None:
        """Start one instance in its own process group (not waiting for it)."""
        cmd = [str(venv_python(self.venv)), "-m", "uvicorn", "aegra_api.main:app"]
        cmd += ["--host", "127.0.0.1", "--port", str(instance.port), "--no-access-log"]
        workdir = self.log_dir / instance.name
        workdir.mkdir(parents=True, exist_ok=True)
        with instance.log.open("ab") as log:
            instance.proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env={**self.env, "PORT": str(instance.port)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, instance: Instance) -> None:
        """Wait until the instance reports itself healthy, or raise with its log."""
        deadline = time.monotonic() + self.ready_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if not instance.alive:
                raise RuntimeError(f"{instance.name} exited\n{instance.tail()}")
            try:
                health = _get_json(f"{instance.url}/health")
                if health.get("status") == "healthy":
                    return
                last = repr(health)
            except (OSError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{instance.name} not ready after {self.ready_timeout_s}s: {last}")

    def leases(self) -> dict[str, tuple[str, str | None, int]]:
        """Every run in the database: its status, the instance holding its lease, its retries.

        A worker takes a lease as `HOST-PID-worker-N`; a run the lease reaper re-queued after
        its instance died counts a retry in `execution_params`.
        """
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT run_id, status, claimed_by, execution_params->'_retry_count' FROM runs"
            ).fetchall()
        names = {str(i.proc.pid): i.name for i in self.instances if i.proc is not None}
        found: dict[str, tuple[str, str | None, int]] = {}
        for run_id, status, claimed_by, retries in rows:
            pid = re.search(r"-(\d+)-worker-\d+$", claimed_by or "")
            holder = names.get(pid.group(1), claimed_by) if pid else None
            found[str(run_id)] = (status, holder, int(retries or 0))
        return found

    def start(self) -> None:
        """Migrate, start the first instance, then the others, and wait for all of them.

        The first instance registers the graphs' default assistants; two doing it at once on a
        fresh database collide (`duplicate key value violates unique constraint
        "assistant_pkey"`, aegra-api 0.11.0) and one exits.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.migrate()
        first, *others = self.instances
        self.start_instance(first)
        self.wait_ready(first)
        for instance in others:
            self.start_instance(instance)
        for instance in others:
            self.wait_ready(instance)

    def stop(self) -> None:
        """Stop every instance this cluster started."""
        for instance in self.instances:
            instance.stop()

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Command line: `install` or `up`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="create .aegra/venv (Python >= 3.12, aegra-api, Foreman)")
    up = sub.add_parser("up", help="serve Foreman from N instances until Ctrl-C")
    up.add_argument("-n", "--instances", type=int, default=2)
    up.add_argument("--base-port", type=int, default=2026)
    up.add_argument("--database-url", help="default: DATABASE_URL, else aegra.env's")
    up.add_argument("--redis-url", help="default: REDIS_URL, else aegra.env's")
    up.add_argument("--log-dir", type=Path, default=REPO / ".aegra" / "logs")
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
        return 0
    if not is_installed():
        print("the Aegra virtualenv is missing: run `make aegra-install`", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    ports = [args.base_port + i for i in range(args.instances)]
    cluster = Cluster(ports=ports, log_dir=args.log_dir, env=env)
    # `kill PID` stops the instances too, not only Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with cluster:
        for instance in cluster.instances:
            print(f"{instance.name}: {instance.url}  (log: {instance.log})", flush=True)
        print("Ctrl-C stops them.", flush=True)
        try:
            while all(i.alive for i in cluster.instances):
                time.sleep(1.0)
        except KeyboardInterrupt:
            return 0
    dead = [i.name for i in cluster.instances if not i.alive]
    print(f"stopped: {', '.join(dead)} exited", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
