"""Calling the models: structured and text calls, provider failures, usage and cost.

Specs resolve to models in `foreman.core.providers` (re-exported here). Every call is
named and tagged for tracing and streaming clients: structured calls carry
`foreman:structured`, the final answer's prose `foreman:answer` (README, Streaming).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from foreman.core.providers import (
    ModelConfigError,
    check_specs,
    env_prefix,
    http_retries,
    http_timeout,
    is_in_process,
    load_chat_model,
    register_provider,
    unregister_provider,
)
from foreman.core.redact import redact
from foreman.core.resources import DATA_DIR
from foreman.core.state import Usage, add_usage, empty_usage


def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(HTTP errors, timeouts) of the HTTP client the `openai` SDK uses.

    openai 3.x moved from `httpx` to `httpx2`; a failure that escapes the SDK's own error
    types is one of these, whichever version is installed.
    """
    errors: list[type[Exception]] = [httpx.HTTPError]
    timeouts: list[type[Exception]] = [httpx.TimeoutException]
    try:
        import httpx2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pass
    else:
        errors.append(httpx2.HTTPError)
        timeouts.append(httpx2.TimeoutException)
    return tuple(errors), tuple(timeouts)


__all__ = [
    "ANSWER_TAG",
    "STRUCTURED_TAG",
    "ModelConfigError",
    "ProviderError",
    "StructuredOutputError",
    "ainvoke_structured",
    "ainvoke_text",
    "check_specs",
    "http_retries",
    "http_timeout",
    "load_chat_model",
    "provider_error",
    "provider_errors",
    "register_provider",
    "unregister_provider",
    "usage_of",
]

HTTP_ERRORS, HTTP_TIMEOUTS = _transport_errors()
# What a provider call raises when the provider (not Foreman) failed.
PROVIDER_ERRORS: tuple[type[Exception], ...] = (openai.APIError, *HTTP_ERRORS)
# The same for partner SDKs, by module and class; they count once their module is loaded.
PARTNER_ERRORS = {
    "anthropic": "APIError",
    "ollama": "ResponseError",
    "google.genai.errors": "APIError",
}
# Tags of model calls, for tracing and for chat clients streaming with `messages`.
STRUCTURED_TAG = "foreman:structured"
ANSWER_TAG = "foreman:answer"

M = TypeVar("M", bound=BaseModel)


class StructuredOutputError(ValueError):
    """The model answered, but not in the requested schema (or no text); `usage` is its cost."""

    def __init__(self, message: str, usage: Usage | None = None):
        super().__init__(redact(message))
        self.usage = usage


class ProviderError(RuntimeError):
    """A model provider failed after its retries: unreachable, refused, unknown model, stalled.

    Retrying the subtask on the same provider would fail the same way, so the run stops
    (resumable from its last checkpoint) with one message saying what failed and what to do.
    """

    def __init__(self, role: str, spec: str, url: str, problem: str, hint: str):
        self.role, self.spec, self.url = role, spec, url
        super().__init__(redact(f"{role} model {spec} at {url}: {problem}; {hint}"))


@lru_cache(maxsize=1)
def _price_table() -> dict[str, tuple[float, float]]:
    path = Path(os.environ.get("FOREMAN_PRICES", DATA_DIR / "prices.json"))
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {k: (float(v[0]), float(v[1])) for k, v in raw.items() if not k.startswith("_")}


def is_priced(spec: str) -> bool:
    """Whether the price table knows this model spec."""
    return spec.split(":")[0] == "offline" or spec in _price_table()


def cost_usd(spec: str, input_tokens: int, output_tokens: int) -> float:
    """Cost of a call under the price table (0 for offline and unpriced models)."""
    if spec.split(":")[0] == "offline":
        return 0.0
    price_in, price_out = _price_table().get(spec, (0.0, 0.0))
    return round((input_tokens * price_in + output_tokens * price_out) / 1_000_000, 8)


def usage_of(spec: str, message: BaseMessage | None) -> Usage:
    """Usage of one call as reported by the provider (no local tokenizer)."""
    meta = getattr(message, "usage_metadata", None) or {}
    tokens_in = int(meta.get("input_tokens", 0))
    tokens_out = int(meta.get("output_tokens", 0))
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd": cost_usd(spec, tokens_in, tokens_out),
        "calls": 1,
    }


def provider_errors() -> tuple[type[Exception], ...]:
    """What a provider call raises when the provider failed, for the SDKs loaded so far.

    A partner SDK's errors can only come from a model of it, which imported it first, so
    nothing is imported here.
    """
    loaded = [
        getattr(sys.modules[m], name, None)
        for m, name in PARTNER_ERRORS.items()
        if m in sys.modules
    ]
    return (*PROVIDER_ERRORS, *(t for t in loaded if isinstance(t, type)))


def _base_url(spec: str, model: BaseChatModel) -> str:
    for attr in ("openai_api_base", "anthropic_api_url", "base_url"):
        if url := getattr(model, attr, None):
            return str(url)
    if hasattr(model, "openai_api_key"):
        return "https://api.openai.com/v1"
    if is_in_process(spec):
        return "(in process)"
    if spec.partition(":")[0] == "ollama":
        return os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
    return "(the provider's endpoint)"


def _variables(spec: str, model: BaseChatModel) -> tuple[str, str]:
    """The environment variables of a spec's key and address, for hints."""
    provider = spec.partition(":")[0].strip().lower()
    prefix = env_prefix(provider)
    key = "GOOGLE_API_KEY" if provider == "google_genai" else f"{prefix}_API_KEY"
    native_ollama = provider == "ollama" and not hasattr(model, "openai_api_key")
    return key, "OLLAMA_HOST" if native_ollama else f"{prefix}_BASE_URL"


def _status_of(exc: Exception) -> int | None:
    """The HTTP status an SDK error carries (`status_code`; google-genai calls it `code`)."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(exc, "code", None)
    return status if isinstance(status, int) and status > 0 else None


def provider_error(role: str, spec: str, model: BaseChatModel, exc: Exception) -> ProviderError:
    """Turn a client exception into a `ProviderError` a person can act on.

    Read by HTTP status and by the error names the openai and anthropic SDKs share, so it
    speaks the same for every provider.
    """
    url = _base_url(spec, model)
    key_var, url_var = _variables(spec, model)
    name = spec.partition(":")[2] or spec
    tries = f"{http_retries() + 1} {'try' if http_retries() == 0 else 'tries'}"
    detail = " ".join(str(getattr(exc, "message", None) or exc).split())[:240].rstrip(". ")
    kind = type(exc).__name__
    status = _status_of(exc)
    problem, hint = f"{kind}: {detail}", "see the provider's documentation"
    if status in (401, 403):
        problem = f"the API key was refused (HTTP {status}: {detail})"
        hint = f"check {key_var}"
    elif status == 404:
        problem = f"the server does not know model {name!r} (HTTP 404: {detail})"
        hint = "check the model name (--model ROLE=PROVIDER:MODEL) and the base URL"
    elif status in (400, 422):
        problem = f"the request was rejected (HTTP {status}: {detail})"
        hint = (
            "the model may not support this kind of structured output; try "
            "FOREMAN_STRUCTURED_OUTPUT=json_mode or json_schema"
        )
    elif status == 429:
        problem = f"rate limited (HTTP 429) in {tries}"
        hint = "wait, then resume; or lower --max-parallel"
    elif status is not None:
        problem = f"server error (HTTP {status}) in {tries}: {detail}"
        hint = "the provider is failing; resume when it is back"
    elif isinstance(exc, (openai.APITimeoutError, *HTTP_TIMEOUTS)) or kind == "APITimeoutError":
        problem = f"no answer within {http_timeout():g}s, {tries}"
        hint = "is the server overloaded or stuck? resume later, or raise FOREMAN_HTTP_TIMEOUT"
    elif isinstance(exc, (openai.APIConnectionError, *HTTP_ERRORS)) or kind == "APIConnectionError":
        problem = f"could not connect ({detail})"
        hint = f"is the server running? check {url_var}"
    return ProviderError(role, spec, url, problem, hint)


def tagged(config: RunnableConfig | None, *tags: str, **metadata: Any) -> RunnableConfig:
    """`config` with `tags` and `metadata` added (a copy; the caller's is left as it is)."""
    out: RunnableConfig = {**(config or {})}
    out["tags"] = [*out.get("tags", []), *(t for t in tags if t not in out.get("tags", []))]
    out["metadata"] = {**out.get("metadata", {}), **metadata}
    return out


async def ainvoke_structured(
    spec: str,
    schema: type[M],
    messages: Sequence[BaseMessage],
    *,
    method: str = "function_calling",
    role: str = "model",
    config: RunnableConfig | None = None,
) -> tuple[M, Usage]:
    """Call the model for `spec` and parse its answer into `schema`.

    The call is tagged `foreman:structured`, named `config["run_name"]` (else after the
    role and the schema) and carries `foreman_role`, `model` and `schema` metadata.

    Raises:
        StructuredOutputError: the answer did not match the schema.
        ModelConfigError: the spec does not resolve to a model.
        ProviderError: the provider failed after its retries (`role` names who asked).
    """
    parsed, usage = await _ainvoke_schema(
        spec, schema, schema.__name__, schema, messages, method, role, config
    )
    return cast(M, parsed), usage


async def ainvoke_json(
    spec: str,
    schema: dict[str, Any],
    messages: Sequence[BaseMessage],
    *,
    method: str = "function_calling",
    role: str = "model",
    config: RunnableConfig | None = None,
) -> tuple[dict[str, Any], Usage]:
    """Like `ainvoke_structured`, for a JSON schema (with a `title`): returns a dict.

    The caller validates the dict against the schema; this checks only that one came back.
    """
    name = str(schema.get("title", "json"))
    parsed, usage = await _ainvoke_schema(spec, schema, name, dict, messages, method, role, config)
    return cast(dict[str, Any], parsed), usage


async def _ainvoke_schema(
    spec: str,
    schema: dict[str, Any] | type[BaseModel],
    name: str,
    answer_type: type,
    messages: Sequence[BaseMessage],
    method: str,
    role: str,
    config: RunnableConfig | None,
) -> tuple[Any, Usage]:
    """One structured call: the answer (an `answer_type`) and its usage; see the callers."""
    model = load_chat_model(spec)
    kwargs = {"method": method} if not is_in_process(spec) else {}
    runnable = model.with_structured_output(schema, include_raw=True, **kwargs)
    config = tagged(config, STRUCTURED_TAG, foreman_role=role, model=spec, schema=name)
    config.setdefault("run_name", f"{role} · {name}")
    try:
        out = await runnable.ainvoke(list(messages), config=config)
    except provider_errors() as exc:
        raise provider_error(role, spec, model, exc) from exc
    assert isinstance(out, dict)
    raw = out.get("raw")
    usage = usage_of(spec, raw if isinstance(raw, AIMessage) else None)
    parsed = out.get("parsed")
    if out.get("parsing_error") is not None or not isinstance(parsed, answer_type):
        detail = out.get("parsing_error") or "no structured answer"
        raise StructuredOutputError(f"{spec} did not return a valid {name}: {detail}", usage)
    return parsed, usage


async def ainvoke_text(
    spec: str,
    messages: Sequence[BaseMessage],
    *,
    attempts: int = 1,
    role: str = "model",
    config: RunnableConfig | None = None,
) -> tuple[str, Usage]:
    """A plain text answer, asked again (at most `attempts` calls) while it is empty.

    Streamed as text tokens when the graph is streamed with `stream_mode="messages"`: the
    model sees LangGraph's streaming handler and streams, and each chunk carries this
    call's tags (`config["tags"]`, e.g. `foreman:answer`) in its metadata.

    Raises:
        StructuredOutputError: every answer was empty (carries the usage of all calls).
        ProviderError: the provider failed after its retries.
    """
    model = load_chat_model(spec)
    config = tagged(config, foreman_role=role, model=spec)
    config.setdefault("run_name", f"{role} · text")
    usage = empty_usage()
    asked = list(messages)
    for _ in range(max(1, attempts)):
        try:
            out = await model.ainvoke(asked, config=config)
        except provider_errors() as exc:
            raise provider_error(role, spec, model, exc) from exc
        usage = add_usage(usage, usage_of(spec, out))
        if text := out.text.strip():
            return text, usage
        asked = [*messages, HumanMessage("Your previous answer was empty. Answer again.")]
    raise StructuredOutputError(
        f"the {role} model {spec} returned no text in {max(1, attempts)} attempts", usage
    )
