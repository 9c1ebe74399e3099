"""Chat models per role: the offline provider, OpenAI-compatible endpoints, usage and cost."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel

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


HTTP_ERRORS, HTTP_TIMEOUTS = _transport_errors()
# What a provider call raises when the provider (not Foreman) failed.
PROVIDER_ERRORS: tuple[type[Exception], ...] = (openai.APIError, *HTTP_ERRORS)

ProviderFactory = Callable[[str], BaseChatModel]
M = TypeVar("M", bound=BaseModel)


class ModelConfigError(ValueError):
    """A model spec that cannot be turned into a model (unknown provider, missing URL)."""


class StructuredOutputError(ValueError):
    """The model answered, but not in the requested schema; `usage` is what the call cost."""

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


def http_timeout() -> float:
    """Seconds one HTTP request to a provider may take (`FOREMAN_HTTP_TIMEOUT`, default 60)."""
    return _env_number("FOREMAN_HTTP_TIMEOUT", 60.0, float)


def http_retries() -> int:
    """Retries of a failed or stalled request (`FOREMAN_HTTP_RETRIES`, default 1)."""
    return int(_env_number("FOREMAN_HTTP_RETRIES", 1, int))


def _env_number(name: str, default: float, kind: type[float] | type[int]) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ModelConfigError(f"{name} must be a non-negative number, got {raw!r}")
    return value


_PROVIDERS: dict[str, ProviderFactory] = {"offline": lambda name: _offline(name)}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make `name:MODEL` specs resolve through `factory(MODEL)` (tests, custom providers)."""
    _PROVIDERS[name] = factory
    load_chat_model.cache_clear()


def unregister_provider(name: str) -> None:
    """Remove a provider registered with `register_provider`."""
    _PROVIDERS.pop(name, None)
    load_chat_model.cache_clear()


def _offline(name: str) -> BaseChatModel:
    from foreman.core.offline.model import OfflineChatModel

    return OfflineChatModel(model_name=name or "extractive")


def _openai_compatible(provider: str, model: str) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    prefix = provider.upper().replace("-", "_")
    base_url = os.environ.get(f"{prefix}_BASE_URL")
    api_key = os.environ.get(f"{prefix}_API_KEY")
    if provider != "openai" and not base_url:
        raise ModelConfigError(
            f"unknown provider {provider!r}: set {prefix}_BASE_URL to its OpenAI-compatible "
            f"endpoint (e.g. http://127.0.0.1:11434/v1), or use `offline` or `openai:MODEL`"
        )
    if provider == "openai" and not api_key:
        raise ModelConfigError("model spec uses `openai:` but OPENAI_API_KEY is not set")
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        # A stalled provider is given up after timeout x (retries + 1), plus the client's
        # short back-off: 2 minutes by default (README, Providers).
        timeout=openai.Timeout(http_timeout(), connect=min(10.0, http_timeout())),
        max_retries=http_retries(),
        stream_usage=True,
    )


@lru_cache(maxsize=64)
def load_chat_model(spec: str) -> BaseChatModel:
    """Resolve a `PROVIDER:MODEL` spec (or just `offline`) to a chat model, cached."""
    provider, _, model = spec.partition(":")
    provider = provider.strip().lower()
    if not provider:
        raise ModelConfigError(f"empty model spec {spec!r}")
    if provider in _PROVIDERS:
        return _PROVIDERS[provider](model)
    if not model:
        raise ModelConfigError(f"model spec {spec!r} needs a model name: {provider}:MODEL")
    return _openai_compatible(provider, model)


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


def _base_url(model: BaseChatModel) -> str:
    url = getattr(model, "openai_api_base", None)
    if url:
        return str(url)
    return "https://api.openai.com/v1" if hasattr(model, "openai_api_key") else "(in process)"


def provider_error(role: str, spec: str, model: BaseChatModel, exc: Exception) -> ProviderError:
    """Turn a client exception into a `ProviderError` a person can act on."""
    url = _base_url(model)
    prefix = spec.partition(":")[0].upper().replace("-", "_")
    name = spec.partition(":")[2] or spec
    tries = f"{http_retries() + 1} {'try' if http_retries() == 0 else 'tries'}"
    detail = " ".join(str(getattr(exc, "message", None) or exc).split())[:240].rstrip(". ")
    key_hint = f"check {prefix}_API_KEY"
    problem, hint = f"{type(exc).__name__}: {detail}", "see the provider's documentation"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        problem = f"the API key was refused (HTTP {exc.status_code}: {detail})"
        hint = key_hint
    elif isinstance(exc, openai.NotFoundError):
        problem = f"the server does not know model {name!r} (HTTP 404: {detail})"
        hint = "check the model name (--model ROLE=PROVIDER:MODEL) and the base URL"
    elif isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        problem = f"the request was rejected (HTTP {exc.status_code}: {detail})"
        hint = (
            "the model may not support this kind of structured output; try "
            "FOREMAN_STRUCTURED_OUTPUT=json_mode or json_schema"
        )
    elif isinstance(exc, openai.RateLimitError):
        problem = f"rate limited (HTTP 429) in {tries}"
        hint = "wait, then resume; or lower --max-parallel"
    elif isinstance(exc, openai.APIStatusError):
        problem = f"server error (HTTP {exc.status_code}) in {tries}: {detail}"
        hint = "the provider is failing; resume when it is back"
    elif isinstance(exc, (openai.APITimeoutError, *HTTP_TIMEOUTS)):
        problem = f"no answer within {http_timeout():g}s, {tries}"
        hint = "is the server overloaded or stuck? resume later, or raise FOREMAN_HTTP_TIMEOUT"
    elif isinstance(exc, (openai.APIConnectionError, *HTTP_ERRORS)):
        problem = f"could not connect ({detail})"
        hint = f"is the server running? check {prefix}_BASE_URL"
    return ProviderError(role, spec, url, problem, hint)


async def ainvoke_structured(
    spec: str,
    schema: type[M],
    messages: Sequence[BaseMessage],
    *,
    method: str = "function_calling",
    role: str = "model",
) -> tuple[M, Usage]:
    """Call the model for `spec` and parse its answer into `schema`.

    Raises:
        StructuredOutputError: the answer did not match the schema.
        ModelConfigError: the spec does not resolve to a model.
        ProviderError: the provider failed after its retries (`role` names who asked).
    """
    model = load_chat_model(spec)
    kwargs = {"method": method} if spec.split(":")[0] not in _PROVIDERS else {}
    runnable = model.with_structured_output(schema, include_raw=True, **kwargs)
    try:
        out = await runnable.ainvoke(list(messages))
    except PROVIDER_ERRORS as exc:
        raise provider_error(role, spec, model, exc) from exc
    assert isinstance(out, dict)
    raw = out.get("raw")
    usage = usage_of(spec, raw if isinstance(raw, AIMessage) else None)
    parsed = out.get("parsed")
    if out.get("parsing_error") is not None or not isinstance(parsed, schema):
        detail = out.get("parsing_error") or "no structured answer"
        raise StructuredOutputError(
            f"{spec} did not return a valid {schema.__name__}: {detail}", usage
        )
    return parsed, usage


async def ainvoke_structured_reasking(
    spec: str,
    schema: type[M],
    messages: Sequence[BaseMessage],
    *,
    attempts: int,
    method: str = "function_calling",
    role: str = "model",
) -> tuple[M, Usage]:
    """`ainvoke_structured`, asking again with what was wrong when an answer is malformed.

    At most `attempts` calls; the usage returned (or carried by the error) counts them all.

    Raises:
        StructuredOutputError: no answer matched the schema.
    """
    usage = empty_usage()
    problem = ""
    for _ in range(max(1, attempts)):
        asked = list(messages)
        if problem:
            asked.append(
                HumanMessage(
                    f"Your previous answer was not a valid {schema.__name__} ({problem}). "
                    "Answer again, following the schema exactly."
                )
            )
        try:
            parsed, spent = await ainvoke_structured(spec, schema, asked, method=method, role=role)
        except StructuredOutputError as exc:
            usage = add_usage(usage, exc.usage or empty_usage())
            problem = str(exc)
            continue
        return parsed, add_usage(usage, spent)
    raise StructuredOutputError(
        f"the {role} model {spec} did not return a valid {schema.__name__} in "
        f"{max(1, attempts)} attempts; last problem: {problem}",
        usage,
    )
