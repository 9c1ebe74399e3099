"""A real A2A agent on 127.0.0.1 for tests, built with a2a-sdk's server side.

A "translator" with deterministic behaviour, keyed on the text it receives:

- `Translate "good morning" into French.`: completes, its artifact `bonjour`.
- a known phrase and no language: asks which language (input-required); the answer in the
  same task (`French`) completes it.
- a phrase it does not know: fails, saying which.
- `What can you do?` (no quoted phrase): answers with a Message, not a Task.

`protocol="0.3"` serves the A2A 0.3 JSON-RPC methods (many agents still speak it) and says
so on the card. `mode` changes the whole server: `slow` waits `delay_s` before any answer,
`malformed` answers every JSON-RPC call with `result` (default: neither a Task nor a Message).

    with TranslatorServer() as agent:
        agent.url  # http://127.0.0.1:PORT, its card at /.well-known/agent-card.json
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any, Literal

import uvicorn
from a2a.helpers import (
    get_message_text,
    new_task_from_user_message,
    new_text_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Role,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.ports import free_port

PHRASES = {
    ("good morning", "french"): "bonjour",
    ("thank you", "french"): "merci",
    ("cheese", "french"): "fromage",
    ("good morning", "spanish"): "buenos días",
}
LANGUAGES = ("french", "spanish")
Mode = Literal["normal", "slow", "malformed"]
MALFORMED = {"unexpected": 1}
"""What `malformed` answers by default: a JSON-RPC result with neither a task nor a message."""


def _phrase(text: str) -> str | None:
    found = re.search(r"[\"“']([^\"”']+)[\"”']", text)
    return found.group(1).strip().casefold() if found else None


def _language(text: str) -> str | None:
    said = text.casefold()
    return next((lang for lang in LANGUAGES if lang in said), None)


class Translator(AgentExecutor):
    """Translates a few English phrases; asks for the language when it is not given."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.requests: list[str] = []
        """The text of every message received, in order."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        self.requests.append(text)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        task = context.current_task
        earlier = (
            [get_message_text(m) for m in task.history if m.role == Role.ROLE_USER] if task else []
        )
        phrase = next((p for p in map(_phrase, [text, *earlier]) if p), None)
        if phrase is None:
            await event_queue.enqueue_event(
                new_text_message(
                    "I translate short English phrases into French or Spanish: put the phrase "
                    "in quotes and name the language.",
                    context_id=context.context_id,
                )
            )
            return
        assert context.task_id and context.context_id and context.message
        if task is None:  # a new task: the SDK wants it enqueued before its updates
            await event_queue.enqueue_event(new_task_from_user_message(context.message))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        language = _language(text) or next(filter(None, map(_language, earlier)), None)
        if language is None:
            await updater.requires_input(
                updater.new_agent_message(
                    [new_text_part(f'Which language should I translate "{phrase}" into?')]
                )
            )
            return
        answer = PHRASES.get((phrase, language))
        if answer is None:
            await updater.failed(
                updater.new_agent_message(
                    [new_text_part(f'I do not know how to say "{phrase}" in {language.title()}.')]
                )
            )
            return
        await updater.add_artifact([new_text_part(answer)], name="translation")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def agent_card(url: str, protocol: str = "1.0") -> AgentCard:
    """The translator's card: JSON-RPC at `url` in A2A `protocol`, no streaming."""
    return AgentCard(
        name="Translator",
        description="Translates short English phrases into French or Spanish.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version=protocol)
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="translate",
                name="Translate",
                description="English to French or Spanish, a few phrases.",
                tags=["translation"],
            )
        ],
    )


def _answering(result: Any) -> Any:
    async def malformed(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": result})

    return malformed


class TranslatorServer:
    """The translator served by uvicorn in a thread, on a free loopback port."""

    def __init__(
        self,
        mode: Mode = "normal",
        delay_s: float = 5.0,
        protocol: str = "1.0",
        result: Any = MALFORMED,
        rpc_url: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.agent = Translator(delay_s=delay_s if mode == "slow" else 0.0)
        # `rpc_url`: what the card says the agent's endpoint is (the default: this server)
        card = agent_card(rpc_url or f"{self.url}/", protocol)
        if mode == "malformed":
            rpc = [Route("/", _answering(result), methods=["POST"])]
        else:
            handler = DefaultRequestHandler(self.agent, InMemoryTaskStore(), card)
            rpc = create_jsonrpc_routes(
                handler, rpc_url="/", enable_v0_3_compat=protocol.startswith("0.")
            )
        app = Starlette(routes=[*create_agent_card_routes(card), *rpc])
        self.headers: list[dict[str, str]] = []
        """The headers of each HTTP request the server received."""

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
            await app(scope, receive, send)

        config = uvicorn.Config(recording, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> TranslatorServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the A2A test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def requests(self) -> list[str]:
        """What the agent received, in order."""
        return self.agent.requests
