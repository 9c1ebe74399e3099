"""Model specs to chat models: `offline`, OpenAI-compatible servers, LangChain's providers.

A spec is `PROVIDER:MODEL` (or `offline`). It resolves, first match wins:

1. a provider registered in this process (`offline`; tests register scripted models);
2. `openai:`, or any `NAME:` with `NAME_BASE_URL` set: `ChatOpenAI` on that URL with
   `NAME_API_KEY`, one client for OpenAI and every OpenAI-compatible server;
3. a provider LangChain's `init_chat_model` knows (`anthropic`, `google_genai`, `ollama`,
   ...): the chat model of its partner package, installed as an extra
   (`pip install "foreman-agents[anthropic]"`).

`check_specs` resolves specs without calling anyone, so a bad one is refused before a run.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel

from foreman.core.redact import redact

ProviderFactory = Callable[[str], BaseChatModel]

# The extras of foreman-agents that install a partner package (pyproject.toml).
EXTRAS = {"anthropic": "anthropic", "google_genai": "google-genai", "ollama": "ollama"}
# Providers whose own client reads NAME_BASE_URL (the Anthropic SDK reads
# ANTHROPIC_BASE_URL): for them it is the native API's address, not an OpenAI-compatible one.
OWN_BASE_URL = frozenset({"anthropic"})
EXAMPLE_URL = "http://127.0.0.1:8000/v1"


class ModelConfigError(ValueError):
    """A model spec that cannot be turned into a model (unknown provider, missing URL)."""


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


def is_in_process(spec: str) -> bool:
    """Whether the spec's provider is registered in this process (offline, scripted)."""
    return spec.partition(":")[0].strip().lower() in _PROVIDERS


def env_prefix(provider: str) -> str:
    """The prefix of a provider's variables: `my-llm` -> `MY_LLM` (`MY_LLM_BASE_URL`)."""
    return provider.upper().replace("-", "_")


def langchain_providers() -> dict[str, str]:
    """The providers `init_chat_model` knows, each with the module of its chat model.

    Read from the installed `langchain`, so a new release's providers work as they come.
    """
    from langchain.chat_models import base

    table = getattr(base, "_BUILTIN_PROVIDERS", None) or getattr(base, "_SUPPORTED_PROVIDERS", {})
    return {name: str(entry[0]) for name, entry in table.items()}


def known_providers() -> list[str]:
    """Every provider name a spec may start with without a `NAME_BASE_URL`."""
    return sorted({*_PROVIDERS, "openai", *langchain_providers()})


def _offline(name: str) -> BaseChatModel:
    from foreman.core.offline.model import OfflineChatModel

    return OfflineChatModel(model_name=name or "extractive")


def _openai_compatible(provider: str, model: str) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    prefix = env_prefix(provider)
    api_key = os.environ.get(f"{prefix}_API_KEY")
    if provider == "openai" and not api_key:
        raise ModelConfigError("model spec uses `openai:` but OPENAI_API_KEY is not set")
    return ChatOpenAI(
        model=model,
        base_url=os.environ.get(f"{prefix}_BASE_URL"),
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        # A stalled provider is given up after timeout x (retries + 1), plus the client's
        # short back-off: 2 minutes by default (README, Providers).
        timeout=openai.Timeout(http_timeout(), connect=min(10.0, http_timeout())),
        max_retries=http_retries(),
        stream_usage=True,
    )


def _client_options(provider: str) -> dict[str, Any]:
    """The same timeout and retries as the OpenAI-compatible client, where the model has them."""
    if provider == "ollama":  # ChatOllama passes these to its httpx client; it does not retry
        return {"client_kwargs": {"timeout": http_timeout()}}
    return {"timeout": http_timeout(), "max_retries": http_retries()}


def install_hint(provider: str) -> str:
    """How to install the partner package of a LangChain provider."""
    if provider in EXTRAS:
        return f'pip install "foreman-agents[{EXTRAS[provider]}]"'
    module = langchain_providers().get(provider, f"langchain_{provider}")
    return f"pip install {module.split('.')[0].replace('_', '-')}"


def _langchain_model(provider: str, model: str, spec: str) -> BaseChatModel:
    """The partner package's chat model, through `init_chat_model`."""
    from langchain.chat_models import init_chat_model

    module = langchain_providers()[provider]
    package = module.split(".")[0]
    # Checked first: for `ollama`, init_chat_model would fall back to langchain-community's
    # deprecated ChatOllama, which Foreman does not support.
    if importlib.util.find_spec(package) is None:
        raise ModelConfigError(
            f"model spec {spec!r} needs the {package.replace('_', '-')} package: "
            f"{install_hint(provider)}"
        )
    try:
        return init_chat_model(model, model_provider=provider, **_client_options(provider))
    except ImportError as exc:  # a dependency of the partner package is missing
        raise ModelConfigError(f"model spec {spec!r}: {exc}; {install_hint(provider)}") from exc
    except Exception as exc:
        # Building a client sends nothing: whatever it raises (pydantic's ValidationError,
        # an SDK's "missing credentials") is about its settings, said in one line.
        detail = " ".join(str(exc).split())[:300]
        raise ModelConfigError(f"model spec {spec!r} cannot be set up: {redact(detail)}") from exc


def _guess_provider(name: str) -> str:
    """The provider for a bare model name, as LangChain guesses it (`claude-...`), else openai."""
    from langchain.chat_models import base

    guess = getattr(base, "_attempt_infer_model_provider", None)
    found = guess(name) if guess is not None else None
    if found == "google_vertexai":  # `gemini-...`: the Gemini API is the one with an extra
        found = "google_genai"
    return str(found) if found in langchain_providers() else "openai"


def _no_provider(spec: str) -> ModelConfigError:
    name = spec.strip()
    return ModelConfigError(
        f"model spec {name!r} has no provider: write {_guess_provider(name)}:{name} "
        f"(or NAME:{name} with NAME_BASE_URL for an OpenAI-compatible server)"
    )


def _unknown_provider(provider: str, spec: str) -> ModelConfigError:
    prefix = env_prefix(provider)
    return ModelConfigError(
        f"unknown provider {provider!r} in model spec {spec!r}: for an OpenAI-compatible "
        f"server set {prefix}_BASE_URL to its endpoint (e.g. {EXAMPLE_URL}); "
        f"known providers: {', '.join(known_providers())}"
    )


@lru_cache(maxsize=64)
def load_chat_model(spec: str) -> BaseChatModel:
    """Resolve a `PROVIDER:MODEL` spec (or just `offline`) to a chat model, cached.

    Builds the client only: nothing is sent to the provider.

    Raises:
        ModelConfigError: the spec names no provider, an unknown one, or one whose package
            is not installed or whose settings are missing.
    """
    provider, sep, model = spec.partition(":")
    provider, model = provider.strip().lower(), model.strip()
    if not provider:
        raise ModelConfigError(f"empty model spec {spec!r}")
    if provider in _PROVIDERS:
        return _PROVIDERS[provider](model)
    if not sep and provider not in known_providers():
        raise _no_provider(spec)
    if not model:
        raise ModelConfigError(f"model spec {spec!r} needs a model name: {provider}:MODEL")
    has_url = bool(os.environ.get(f"{env_prefix(provider)}_BASE_URL"))
    if provider == "openai" or (has_url and provider not in OWN_BASE_URL):
        return _openai_compatible(provider, model)
    if provider in langchain_providers():
        return _langchain_model(provider, model, spec)
    raise _unknown_provider(provider, spec)


def check_specs(specs: Iterable[str]) -> None:
    """Resolve every spec now, so a bad one is refused before a run starts.

    Raises:
        ModelConfigError: the first spec that does not resolve, with what to write instead.
    """
    for spec in dict.fromkeys(specs):
        load_chat_model(spec)
