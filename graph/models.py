"""Chat models per role: the offline provider, OpenAI-compatible endpoints, usage and cost."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel

from graph.context import REPO_ROOT
from graph.state import Usage

ProviderFactory = Callable[[str], BaseChatModel]
M = TypeVar("M", bound=BaseModel)


class ModelConfigError(ValueError):
    """A model spec that cannot be turned into a model (unknown provider, missing URL)."""


class StructuredOutputError(ValueError):
    """The model answered, but not in the requested schema; `usage` is what the call cost."""

    def __init__(self, message: str, usage: Usage | None = None):
        super().__init__(message)
        self.usage = usage


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
    from graph.offline.model import OfflineChatModel

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
        timeout=float(os.environ.get("FOREMAN_HTTP_TIMEOUT", "60")),
        max_retries=int(os.environ.get("FOREMAN_HTTP_RETRIES", "2")),
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
    path = Path(os.environ.get("FOREMAN_PRICES", REPO_ROOT / "data" / "prices.json"))
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


async def ainvoke_structured(
    spec: str,
    schema: type[M],
    messages: Sequence[BaseMessage],
    *,
    method: str = "function_calling",
) -> tuple[M, Usage]:
    """Call the model for `spec` and parse its answer into `schema`.

    Raises:
        StructuredOutputError: the answer did not match the schema.
        ModelConfigError: the spec does not resolve to a model.
    """
    model = load_chat_model(spec)
    kwargs = {"method": method} if spec.split(":")[0] not in _PROVIDERS else {}
    runnable = model.with_structured_output(schema, include_raw=True, **kwargs)
    out = await runnable.ainvoke(list(messages))
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
