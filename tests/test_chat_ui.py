"""Agent Chat UI in headless Chromium: a request, the plan review answered, the answer shown.

`make test-ui` installs the UI, Chromium and playwright-core under `.ui/` first
(`scripts/chat_ui.py`); the default `make test` leaves this module out (marker `ui`). The
real `langgraph dev` serves Foreman offline; an assistant turns plan review on (the UI sends
no context). `tests/ui/drive_chat.mjs` does what a person does in the browser; the page may
reach loopback only. Screenshots: tests/output/ui/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from urllib.request import Request

import pytest

from scripts import chat_ui
from tests.conftest import HEAT_PUMPS
from tests.support.langgraph_dev import DIRECT, REPO, dev_server
from tests.support.ports import free_port

OUT = REPO / "tests" / "output" / "ui"
DRIVER = REPO / "tests" / "ui" / "drive_chat.mjs"

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(not chat_ui.is_installed(), reason="no Agent Chat UI: run `make test-ui`"),
]


def api(url: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST `body` to) the server's API, on loopback."""
    data = None if body is None else json.dumps(body).encode()
    req = Request(url, data=data, headers={"Content-Type": "application/json"})
    with DIRECT.open(req, timeout=10) as resp:
        return json.loads(resp.read())


def paragraphs(answer: str) -> list[str]:
    """The answer's prose paragraphs (no quotes, headings or lists): the page must show them."""
    return [p for p in answer.split("\n") if p[:1].isalpha()]


def test_plan_review_answered_in_agent_chat_ui(tmp_path: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    with dev_server(tmp_path, {}) as server:
        assistant = api(
            f"{server.url}/assistants",
            {"graph_id": "foreman", "context": {"review_plan": True}, "name": "review"},
        )["assistant_id"]
        with chat_ui.serve(free_port()) as ui:
            page = f"{ui}/?apiUrl={server.url}&assistantId={assistant}"
            done = subprocess.run(
                ["node", str(DRIVER), page, HEAT_PUMPS, str(OUT)],
                env={**os.environ, "PLAYWRIGHT_DIR": str(chat_ui.PLAYWRIGHT_DIR)},
                capture_output=True,
                text=True,
                timeout=100,
            )
        assert done.returncode == 0, f"{done.stderr}\n{server.log()}"
        shown = json.loads(done.stdout)
        [thread] = parse_qs(urlparse(shown["url"]).query)["threadId"]
        values = api(f"{server.url}/threads/{thread}/state")["values"]

    print("\nbrowser steps (s):", json.dumps(shown["steps"]))
    assert shown["blocked"] == [] and shown["errors"] == []
    # The interrupt was rendered by the UI's own inbox view, from the schema Foreman offers.
    assert "review_plan" in shown["review"] and "Edit/Accept" in shown["review"]
    assert "Find evidence on running costs" in shown["review"]  # the plan, as the chat shows it
    # The person's accept came back as an approval, and the run finished.
    reviews = [e["detail"]["action"] for e in values["audit"] if e["kind"] == "plan_review"]
    assert reviews == ["approve"]
    assert values["status"] == "done", values.get("error")
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "ai"]
    # The page shows the answer itself: each cited paragraph, word for word.
    said = paragraphs(values["answer"])
    assert len(said) >= 4 and all(re.search(r"\[[a-z-]+#p\d+\]", p) for p in said)
    missing = [p for p in said if p not in shown["text"]]
    assert not missing, f"not on the page: {missing}"
    assert "How they work" in shown["text"] and "Running costs" in shown["text"]
    assert (OUT / "answer.png").stat().st_size > 20_000
