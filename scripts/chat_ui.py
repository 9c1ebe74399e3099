"""Agent Chat UI for `make test-ui` (and for trying Foreman in a browser): install and serve.

`install` sets up, under `.ui/` (gitignored), once:
- Chromium from the Debian package (`apt-get install chromium`), if /usr/bin/chromium is absent;
- Agent Chat UI, the way its README offers through npm: `npx create-agent-chat-app` (pinned),
  its Next.js app only, its npm dependencies as `tests/ui/agent-chat-app.package-lock.json`
  pins them, then a production build, so each run starts it in a second (`next dev` would
  compile the page on every first visit);
- playwright-core, which drives that Chromium (it downloads no browser of its own).
A stamp names what was installed; a later `install` with the same versions does nothing.

`serve` starts the built UI on a loopback port. It has no server address built in: open it as
`http://127.0.0.1:PORT/?apiUrl=http://127.0.0.1:2024&assistantId=foreman` (or fill its form).

Stdlib only, like `deploy/aegra/cluster.py`: `make test-ui` runs it before the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UI_DIR = Path(os.environ.get("FOREMAN_UI_DIR", REPO / ".ui"))
APP = UI_DIR / "agent-chat-app"
WEB = APP / "apps" / "web"
DRIVER = UI_DIR / "driver"  # playwright-core's own npm prefix
PLAYWRIGHT_DIR = DRIVER / "node_modules" / "playwright-core"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CREATE_APP = "create-agent-chat-app@0.1.6"
PLAYWRIGHT = "playwright-core@1.65.2"
STAMP = UI_DIR / ".installed"
# The template pins no versions of its own: this lockfile does (`npm ci`). To update them,
# delete it and run `make ui-install`, which writes a new one here.
LOCK = REPO / "tests" / "ui" / "agent-chat-app.package-lock.json"
# The app loads the Inter font through next/font/google, which `next build` fetches from
# Google Fonts; with no route there the build fails. The page keeps the browser's font.
FONT_PATCH = {
    'import { Inter } from "next/font/google";\n': "",
    'const inter = Inter({\n  subsets: ["latin"],\n  preload: true,\n  display: "swap",\n});\n': (
        'const inter = { className: "" }; // offline build: no Google Fonts\n'
    ),
}
QUIET_NPM = ["--no-audit", "--no-fund", "--loglevel=error"]
NODE_ENV = {"NEXT_TELEMETRY_DISABLED": "1", "npm_config_update_notifier": "false"}


def _key() -> str:
    lock = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16] if LOCK.exists() else "unlocked"
    return f"{CREATE_APP} {PLAYWRIGHT} lock {lock} font-patch-1\n"


def is_installed() -> bool:
    """Whether `install` finished for these versions (and the browser is there)."""
    return (
        STAMP.exists()
        and STAMP.read_text() == _key()
        and (WEB / ".next" / "BUILD_ID").exists()
        and PLAYWRIGHT_DIR.exists()
        and CHROMIUM.exists()
    )


def _run(cmd: list[str], cwd: Path) -> None:
    print(f"  $ {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, env={**os.environ, **NODE_ENV})


def _patch_font(layout: Path) -> None:
    text = layout.read_text()
    for old, new in FONT_PATCH.items():
        if old not in text:
            raise SystemExit(f"{layout}: no {old!r} to patch (another template?)")
        text = text.replace(old, new)
    layout.write_text(text)


def install() -> None:
    """Install what is missing; print how long each step took."""
    if is_installed():
        print(f"Agent Chat UI: installed in {UI_DIR} ({CREATE_APP}, {PLAYWRIGHT})")
        return
    if not shutil.which("npm"):
        raise SystemExit("make test-ui needs Node.js (20 or later) and npm")
    steps: list[tuple[str, float]] = []

    def timed(name: str, *cmds: tuple[list[str], Path]) -> None:
        start = time.monotonic()
        print(f"{name} ...", flush=True)
        for cmd, cwd in cmds:
            _run(cmd, cwd)
        steps.append((name, time.monotonic() - start))

    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            raise SystemExit(f"no {CHROMIUM}: run `sudo apt-get install -y chromium` first")
        apt = ["apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0"]
        timed(
            "chromium (apt)",
            (["apt-get", "-q", "update"], REPO),
            ([*apt, "install", "chromium"], REPO),
        )
    UI_DIR.mkdir(exist_ok=True)
    STAMP.unlink(missing_ok=True)
    shutil.rmtree(APP, ignore_errors=True)
    create = [
        "npx", "--yes", CREATE_APP, "--yes", "--project-name", APP.name,
        "--package-manager", "npm", "--framework", "nextjs", "--include-agent", "none",
        "--install-deps", "false",
    ]  # fmt: skip
    timed("Agent Chat UI (npx create-agent-chat-app)", (create, UI_DIR))
    _patch_font(WEB / "src" / "app" / "layout.tsx")
    shutil.rmtree(APP / "apps" / "agents")  # no agent chosen: only their npm dependencies
    if LOCK.exists():
        shutil.copyfile(LOCK, APP / "package-lock.json")
        timed("its dependencies (npm ci)", (["npm", "ci", *QUIET_NPM], APP))
    else:
        timed("its dependencies (npm install)", (["npm", "install", *QUIET_NPM], APP))
        shutil.copyfile(APP / "package-lock.json", LOCK)
        print(f"wrote {LOCK.relative_to(REPO)}: commit it")
    timed(
        "its production build (next build)",
        ([str(APP / "node_modules/.bin/next"), "build", "--no-lint"], WEB),
    )
    timed(
        "playwright-core (npm)",
        (["npm", "install", *QUIET_NPM, "--prefix", str(DRIVER), PLAYWRIGHT], UI_DIR),
    )
    STAMP.write_text(_key())
    total = sum(s for _, s in steps)
    print("\n".join(f"  {s:6.1f} s  {name}" for name, s in steps) + f"\n  {total:6.1f} s  in all")


@contextmanager
def serve(port: int, host: str = "127.0.0.1", timeout_s: float = 30.0) -> Iterator[str]:
    """Run the built UI (`next start`) on `host:port`; yields its URL, stops it on exit."""
    url = f"http://{host}:{port}"
    cmd = [str(APP / "node_modules/.bin/next"), "start", "-H", host, "-p", str(port)]
    log = UI_DIR / "next.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=WEB,
            env={**os.environ, **NODE_ENV},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                direct.open(url, timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    msg = f"`next start` did not serve {url}:\n{log.read_text()}"
                    raise RuntimeError(msg) from None
                time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    """`install`, or `serve` until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install Chromium, Agent Chat UI and playwright-core")
    serve_cmd = sub.add_parser("serve", help="serve the built UI on loopback")
    serve_cmd.add_argument("--port", type=int, default=3000)
    serve_cmd.add_argument("--api", default="http://127.0.0.1:2024", help="langgraph dev URL")
    serve_cmd.add_argument("--assistant", default="foreman", help="graph or assistant id")
    args = parser.parse_args()
    if args.command == "install":
        install()
        return
    if not is_installed():
        sys.exit("not installed: run `make ui-install`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so `serve` stops the UI too
    with serve(args.port) as url:
        print(f"Agent Chat UI: {url}/?apiUrl={args.api}&assistantId={args.assistant}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
