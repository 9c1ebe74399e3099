"""Loopback OpenAI-compatible Chat Completions server for tests.

Standard library only. A real ``langchain_openai.ChatOpenAI`` (or ``openai``
client) can talk to it over HTTP on 127.0.0.1::

    with OpenAICompatServer(lambda req: Reply(content="hi")) as server:
        llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="m")
        llm.invoke("hello")
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "OpenAICompatServer",
    "Reply",
    "Responder",
    "requested_schema_name",
    "split_messages",
    "structured_reply",
]

# (type, code) of the OpenAI error body by HTTP status; others are "server_error".
_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


@dataclass
class Reply:
    """What the fake model answers to one chat completion request.

    Attributes:
        content: Plain assistant text.
        tool_call: ``(function name, arguments dict)`` returned as a tool call.
        tool_calls: More tool calls, after ``tool_call``: an agent's turn may make several.
        json_body: Returned as ``message.content = json.dumps(json_body)``.
        error: ``(HTTP status, message)`` returned as an OpenAI error body; ``{authorization}``
            in the message is replaced by the request's Authorization header, as some servers
            echo it back.
        delay_s: Seconds to sleep before answering.
        prompt_tokens: Usage override; default counts words in the request.
        completion_tokens: Usage override; default counts words in the answer.
    """

    content: str | None = None
    tool_call: tuple[str, dict] | None = None
    tool_calls: list[tuple[str, dict]] = field(default_factory=list)
    json_body: dict | None = None
    error: tuple[int, str] | None = None
    delay_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


Responder = Callable[[dict], Reply]


def requested_schema_name(request: dict) -> str | None:
    """Return the function or json_schema name a request asks the model to fill.

    Args:
        request: Parsed JSON body of a chat completion request.

    Returns:
        The forced (or first) tool's function name, the ``json_schema`` name,
        or ``None`` when the request asks for neither.
    """
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return choice["function"].get("name")
    for tool in request.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            return tool["function"].get("name")
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("name")
    return None


def structured_reply(request: dict, args: dict) -> Reply:
    """Build the Reply that fits the structured-output method of ``request``.

    Args:
        request: Parsed JSON body of a chat completion request.
        args: The structured object the model should "produce".

    Returns:
        A tool-call Reply for function calling, a ``json_body`` Reply for
        ``response_format`` json_schema, otherwise JSON text content.
    """
    if request.get("tools"):
        return Reply(tool_call=(requested_schema_name(request) or "", args))
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return Reply(json_body=args)
    return Reply(content=json.dumps(args))


def split_messages(request: dict) -> tuple[str, str]:
    """System (or developer) text and the rest, each joined with newlines.

    Args:
        request: Parsed JSON body of a chat completion request.

    Returns:
        ``(system, other)``: the texts a chat model would see as system and user turns.
    """
    messages = request.get("messages") or []
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    other = [m for m in messages if m.get("role") not in ("system", "developer")]
    return (
        "\n".join(_message_text(m.get("content"), "\n") for m in system),
        "\n".join(_message_text(m.get("content"), "\n") for m in other),
    )


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _message_text(content: Any, sep: str = " ") -> str:
    """Join the text of a message content (string or list of parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = (p.get("text") if isinstance(p, dict) else p for p in content)
    return sep.join(p for p in parts if isinstance(p, str))


def _prompt_words(request: dict) -> int:
    messages = request.get("messages") or []
    return sum(_words(_message_text(m.get("content"))) for m in messages)


def _split_stream(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to ``text``."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


def _render(request: dict, reply: Reply) -> tuple[str | None, list[dict], dict]:
    """Return (content, tool_calls, usage) for a reply to ``request``."""
    content = json.dumps(reply.json_body) if reply.json_body is not None else reply.content
    calls = ([reply.tool_call] if reply.tool_call is not None else []) + reply.tool_calls
    tool_calls = [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for name, args in calls
    ]
    if not tool_calls and content is None:
        content = ""
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = _prompt_words(request)
    completion = reply.completion_tokens
    if completion is None:
        completion = _words(content) + sum(_words(c["function"]["arguments"]) for c in tool_calls)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return content, tool_calls, {**usage, "total_tokens": prompt + completion}


def _envelope(request: dict, obj: str) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": obj,
        "created": int(time.time()),
        "model": request.get("model") or "test-model",
        "system_fingerprint": None,
    }


def _completion(request: dict, reply: Reply) -> dict:
    """Build a non-streaming ``chat.completion`` object."""
    content, tool_calls, usage = _render(request, reply)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = "tool_calls" if tool_calls else "stop"
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    return {**_envelope(request, "chat.completion"), "choices": [choice], "usage": usage}


def _stream_chunks(request: dict, reply: Reply) -> list[dict]:
    """Build the ``chat.completion.chunk`` objects of a streamed answer."""
    content, tool_calls, usage = _render(request, reply)
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    base = _envelope(request, "chat.completion.chunk")
    if include_usage:
        base["usage"] = None
    deltas: list[dict] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in _split_stream(content or "")]
    for index, call in enumerate(tool_calls):
        fn = call["function"]
        deltas.append(
            {"tool_calls": [{**call, "index": index, "function": {**fn, "arguments": ""}}]}
        )
        for piece in _split_stream(fn["arguments"]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    finish = "tool_calls" if tool_calls else "stop"
    deltas.append({})
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None if d else finish}]}
        for d in deltas
    ]
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep test output quiet."""

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str) -> None:
        kind, code = _ERROR_KINDS.get(status, ("server_error", None))
        error = {"message": message, "type": kind, "param": None, "code": code}
        self._send_json(status, {"error": error})

    def do_GET(self) -> None:
        """Serve ``/v1/models``; anything else is a 404."""
        if self.path.rstrip("/") != "/v1/models":
            self._send_error(404, f"Unknown path: {self.path}")
            return
        models = self.server.owner.models_seen() or ["test-model"]
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in models]
        self._send_json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        """Serve ``/v1/chat/completions`` (and Azure's ``.../chat/completions?api-version=``)."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.owner._record_path(self.path)
        if not self.path.partition("?")[0].rstrip("/").endswith("/chat/completions"):
            self._send_error(404, f"Unknown path: {self.path}")
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self._send_error(400, "Request body must be a JSON object")
            return
        owner = self.server.owner
        owner._record(request)
        try:
            reply = owner.responder(request)
        except Exception as exc:  # surfaced to the client as a 500
            self._send_error(500, f"Responder failed: {exc!r}")
            return
        if reply.delay_s and owner._stopped.wait(reply.delay_s):
            self.close_connection = True
            return
        if reply.error is not None:
            status, message = reply.error
            auth = self.headers.get("Authorization", "")
            self._send_error(status, message.replace("{authorization}", auth))
        elif request.get("stream"):
            self._send_stream(request, reply)
        else:
            self._send_json(200, _completion(request, reply))

    def _send_stream(self, request: dict, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for chunk in _stream_chunks(request, reply):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: OpenAICompatServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up early (e.g. timeout tests)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class OpenAICompatServer:
    """OpenAI-compatible Chat Completions server on 127.0.0.1 for tests.

    Attributes:
        responder: Called with each parsed request body; returns a Reply.
        requests: Every chat completion request body received, in order.
        paths: The path (with query) of every POST received, in order.
        base_url: ``http://127.0.0.1:<port>/v1`` once started.
    """

    def __init__(self, responder: Responder) -> None:
        """Create a stopped server that answers with ``responder``."""
        self.responder = responder
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.base_url = ""
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def _record(self, request: dict) -> None:
        with self._lock:
            self.requests.append(request)

    def _record_path(self, path: str) -> None:
        with self._lock:
            self.paths.append(path)

    def models_seen(self) -> list[str]:
        """Return the distinct model names requested so far, in order."""
        with self._lock:
            models = [r.get("model") for r in self.requests]
        return list(dict.fromkeys(m for m in models if isinstance(m, str)))

    def start(self) -> OpenAICompatServer:
        """Bind 127.0.0.1 on an OS-assigned port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopped.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=f"openai-{port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed handlers and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopped.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
