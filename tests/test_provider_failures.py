"""A provider that fails, as the CLI user meets it: one clear line, exit 1, a resumable thread.

Each role's model (planner, a worker, the judge, the synthesizer) talks HTTP to a loopback
OpenAI-compatible server that refuses the key (401), does not know the model (404), keeps
failing (500), never answers, or is not there at all. The run must stop with one line that
names the role, the model and the URL, write the audit trail so far, print the resume
command, show no traceback, and keep no credential anywhere.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from foreman.core.models import load_chat_model
from tests.support.engine_models import offline_reply
from tests.support.openai_server import (
    OpenAICompatServer,
    Reply,
)
from tests.support.ports import free_port

REQUEST = "Write a report on residential heat pumps: how they work and running costs"
SECRET = "sk-test-DoNotLeakThisKey0123456789"
MODELS = {"planner": "planner", "worker": "worker", "validator": "judge", "synthesizer": "synth"}
ROLE_NAMES = {
    "planner": "planner model",
    "worker": "worker model",  # "research worker model" or "writer worker model"
    "validator": "judge model",
    "synthesizer": "synthesizer model",
}
FAULTS: dict[str, Any] = {
    "401": Reply(error=(401, "Incorrect API key provided: {authorization}")),
    "404": Reply(error=(404, "The model does not exist or you do not have access to it.")),
    "500": Reply(error=(500, "backend overloaded")),
    "stall": Reply(delay_s=30.0),
}
SAYS = {
    "401": ("API key was refused", "check LOCAL_API_KEY"),
    "404": ("does not know model", "check the model name"),
    "500": ("server error (HTTP 500)", "resume when it is back"),
    "stall": ("no answer within 2s", "FOREMAN_HTTP_TIMEOUT"),
    "down": ("could not connect", "DEAD_BASE_URL"),
}


class FaultyResponder:
    """Answers like the offline engines, except the model named in `failing`."""

    def __init__(self) -> None:
        self.failing: str | None = None
        self.fault: Reply | None = None

    def __call__(self, request: dict[str, Any]) -> Reply:
        if request.get("model") == self.failing and self.fault is not None:
            return self.fault
        return offline_reply(request)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyResponder]:
    """A loopback server behind `local:`, and `dead:` pointing at a port nobody listens on."""
    responder = FaultyResponder()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("COLUMNS", "400")
    with OpenAICompatServer(responder) as server:
        monkeypatch.setenv("LOCAL_BASE_URL", server.base_url)
        monkeypatch.setenv("LOCAL_API_KEY", SECRET)
        monkeypatch.setenv("DEAD_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
        monkeypatch.setenv("FOREMAN_HTTP_RETRIES", "0")
        # generous for the models that answer (a loaded machine can be slow), short only for
        # the test that stalls (`stalling`)
        monkeypatch.setenv("FOREMAN_HTTP_TIMEOUT", "30")
        load_chat_model.cache_clear()
        yield responder
    load_chat_model.cache_clear()


def model_options(failing_role: str, kind: str) -> list[str]:
    options = []
    for role, name in MODELS.items():
        provider = "dead" if role == failing_role and kind == "down" else "local"
        options += ["--model", f"{role}={provider}:{name}"]
    return options


def stored_bytes(db: Any) -> bytes:
    """Every value in every table of the SQLite database, as bytes."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = b""
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                out += b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    return out


@pytest.mark.parametrize("kind", ["401", "404", "500", "stall", "down"])
@pytest.mark.parametrize("role", list(MODELS))
def test_a_failing_provider_stops_the_run_with_one_clear_line(
    role: str, kind: str, provider: FaultyResponder, cli: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    provider.failing, provider.fault = MODELS[role], FAULTS.get(kind)
    if kind == "stall":
        monkeypatch.setenv("FOREMAN_HTTP_TIMEOUT", "2")
        load_chat_model.cache_clear()
    thread = f"{role}-{kind}"
    result = cli("run", REQUEST, "--thread", thread, "--judge", "--no-ask", "--quiet",
                 *model_options(role, kind))  # fmt: skip
    out = result.output
    assert result.exit_code == 1, out
    problem, hint = SAYS[kind]
    [line] = [ln for ln in out.splitlines() if ln.startswith("provider failed:")]
    assert ROLE_NAMES[role] in line and problem in line and hint in line, line
    spec = f"{'dead' if kind == 'down' else 'local'}:{MODELS[role]}"
    assert spec in line and "http://127.0.0.1:" in line
    assert f"foreman resume {thread}" in out
    assert "Traceback" not in out
    audit = tmp_path / "home" / "runs" / thread / "audit.md"
    assert "- stopped: ProviderError" in audit.read_text()
    # the key the server echoed back is nowhere: terminal, audit files, checkpoints
    for text in (out, audit.read_text(), (audit.parent / "audit.json").read_text()):
        assert SECRET not in text
    assert SECRET.encode() not in stored_bytes(tmp_path / "cli.sqlite")


@pytest.mark.parametrize("role", list(MODELS))
def test_the_stopped_run_resumes_once_the_provider_is_back(
    role: str, provider: FaultyResponder, cli: Any
) -> None:
    provider.failing, provider.fault = MODELS[role], FAULTS["500"]
    thread = f"back-{role}"
    first = cli("run", REQUEST, "--thread", thread, "--judge", "--no-ask", "--quiet",
                *model_options(role, "500"))  # fmt: skip
    assert first.exit_code == 1
    before = json.loads(cli("show", thread, "--format", "json").output)
    accepted = {s: r for s, r in (before.get("results") or {}).items() if r["status"] == "accepted"}

    provider.failing = None
    again = cli("resume", thread, "--no-ask", "--quiet")
    assert again.exit_code == 0, again.output
    after = json.loads(cli("show", thread, "--format", "json").output)
    assert after["status"] == "done"
    for sid, rec in accepted.items():  # nothing accepted before the failure ran again
        assert after["results"][sid]["attempts"] == rec["attempts"], sid
    # and the run kept its own models: every attempt and call went to the `local:` ones
    assert set(after["usage"]) <= {f"local:{m}" for m in MODELS.values()}


def test_debug_shows_the_traceback(provider: FaultyResponder, cli: Any) -> None:
    provider.failing, provider.fault = "planner", FAULTS["500"]
    result = cli("--debug", "run", REQUEST, "--thread", "dbg", "--no-ask", "--quiet",
                 *model_options("planner", "500"))  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" in result.output and "InternalServerError" in result.output
    assert SECRET not in result.output
