"""Model specs: every way a spec resolves, and every way it is refused before a run starts.

`offline` and registered providers; `openai:` and `NAME:` + `NAME_BASE_URL` through
`ChatOpenAI`; the providers LangChain's `init_chat_model` knows, whose partner packages are
extras (not installed here: the message names the extra). One LangChain provider whose
package is installed, `azure_openai` (langchain-openai), runs the whole graph over HTTP
against the loopback server, so the `init_chat_model` path is exercised end to end.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import Any, cast

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_openai import AzureChatOpenAI, ChatOpenAI

from foreman import Context
from foreman.core.models import (
    ModelConfigError,
    load_chat_model,
    provider_error,
    provider_errors,
)
from foreman.core.offline.model import OfflineChatModel
from foreman.core.providers import EXTRAS, known_providers, langchain_providers
from tests.conftest import HEAT_PUMPS, scripted_context
from tests.support.engine_models import EngineResponder
from tests.support.openai_server import OpenAICompatServer
from tests.support.scripted_http import serve


@pytest.fixture(autouse=True)
def fresh_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No cached model built under another test's environment; no stray provider settings."""
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OLLAMA_BASE_URL",
        "OLLAMA_HOST",
        "ANTHROPIC_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    load_chat_model.cache_clear()
    yield
    load_chat_model.cache_clear()


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The partner packages of the extras are missing, as in the dev environment."""
    real = importlib.util.find_spec
    missing = {"langchain_anthropic", "langchain_google_genai", "langchain_ollama"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a)
    )


def refusal(spec: str) -> str:
    with pytest.raises(ModelConfigError) as info:
        load_chat_model(spec)
    return str(info.value)


def test_a_bare_model_name_says_which_provider_to_write() -> None:
    assert refusal("gpt-4.1") == (
        "model spec 'gpt-4.1' has no provider: write openai:gpt-4.1 "
        "(or NAME:gpt-4.1 with NAME_BASE_URL for an OpenAI-compatible server)"
    )
    assert "write anthropic:claude-sonnet-4-5 " in refusal("claude-sonnet-4-5")
    assert "write google_genai:gemini-2.5-flash " in refusal("gemini-2.5-flash")
    assert "write openai:llama3.1 (or NAME:llama3.1 with NAME_BASE_URL" in refusal("llama3.1")
    assert refusal("anthropic") == "model spec 'anthropic' needs a model name: anthropic:MODEL"
    assert "needs a model name" in refusal("local:")


def test_an_unknown_provider_lists_the_known_ones_and_the_base_url_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOWHERE_BASE_URL", raising=False)
    said = refusal("nowhere:big")
    assert "unknown provider 'nowhere'" in said
    assert "set NOWHERE_BASE_URL to its endpoint" in said
    for name in ("offline", "openai", "anthropic", "google_genai", "ollama", "groq"):
        assert name in said.partition("known providers: ")[2].split(", "), name


def test_langchain_providers_are_read_from_the_installed_langchain() -> None:
    # A private table of langchain's: if an upgrade renames it, this says so.
    table = langchain_providers()
    assert {"anthropic", "google_genai", "ollama", "openai", "mistralai"} <= set(table)
    assert table["anthropic"] == "langchain_anthropic"
    assert {"offline", *table} <= set(known_providers())


@pytest.mark.parametrize(
    ("spec", "package", "extra"),
    [
        ("anthropic:claude-sonnet-4-5", "langchain-anthropic", "anthropic"),
        ("google_genai:gemini-2.5-flash", "langchain-google-genai", "google-genai"),
        ("ollama:llama3.1", "langchain-ollama", "ollama"),
    ],
)
def test_a_missing_partner_package_names_the_extra(
    not_installed: None, spec: str, package: str, extra: str
) -> None:
    assert refusal(spec) == (
        f'model spec {spec!r} needs the {package} package: pip install "foreman-agents[{extra}]"'
    )


def test_the_extras_are_declared_in_pyproject() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = pyproject["project"]["optional-dependencies"]
    for provider, extra in EXTRAS.items():
        package = langchain_providers()[provider].replace("_", "-")
        assert any(req.startswith(package) for req in declared[extra]), extra


def test_a_provider_without_an_extra_names_its_package() -> None:
    if importlib.util.find_spec("langchain_groq") is not None:
        pytest.skip("langchain-groq is installed here")
    assert refusal("groq:llama-3.3-70b") == (
        "model spec 'groq:llama-3.3-70b' needs the langchain-groq package: "
        "pip install langchain-groq"
    )


def test_name_base_url_makes_any_name_openai_compatible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("MY_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("MY_LLM_API_KEY", "k")
    ollama = load_chat_model("ollama:llama3.1")  # the OpenAI-compatible form, as before
    assert isinstance(ollama, ChatOpenAI) and ollama.openai_api_base == "http://127.0.0.1:11434/v1"
    mine = load_chat_model("my-llm:big")
    assert isinstance(mine, ChatOpenAI) and mine.model_name == "big"
    assert mine.openai_api_base == "http://127.0.0.1:8000/v1"
    assert mine.max_retries == 1 and mine.stream_usage is True
    assert mine.openai_api_key is not None
    assert mine.openai_api_key.get_secret_value() == "k"


def test_anthropic_base_url_stays_with_the_native_client(
    not_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Anthropic SDK reads ANTHROPIC_BASE_URL itself: it is not an OpenAI-compatible URL.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")
    assert "pip install" in refusal("anthropic:claude-sonnet-4-5")


def test_openai_needs_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "OPENAI_API_KEY is not set" in refusal("openai:gpt-4.1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = load_chat_model("openai:gpt-4.1")
    assert isinstance(model, ChatOpenAI) and model.model_name == "gpt-4.1"


def test_offline_needs_no_model_name() -> None:
    assert isinstance(load_chat_model("offline"), OfflineChatModel)
    assert isinstance(load_chat_model("offline:extractive"), OfflineChatModel)


def test_a_langchain_provider_that_cannot_be_set_up_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    said = refusal("azure_openai:gpt-4.1")
    assert said.startswith("model spec 'azure_openai:gpt-4.1' cannot be set up: ")


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OpenAICompatServer, EngineResponder]]:
    """`azure_openai:` specs on the loopback server, through `init_chat_model`."""
    responder = EngineResponder()
    with serve(responder, monkeypatch) as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.base_url.removesuffix("/v1"))
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "test")
        monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
        yield server, responder


def test_a_langchain_provider_resolves_through_init_chat_model(
    azure: tuple[OpenAICompatServer, EngineResponder],
) -> None:
    model = load_chat_model("azure_openai:planner")
    assert isinstance(model, AzureChatOpenAI)
    assert model.request_timeout == 10.0 and model.max_retries == 0  # FOREMAN_HTTP_*


async def test_a_whole_run_on_a_langchain_provider(
    azure: tuple[OpenAICompatServer, EngineResponder], app: Any, thread: dict[str, Any]
) -> None:
    server, responder = azure
    roles = {
        "planner_model": "azure_openai:planner",
        "worker_model": "azure_openai:worker",
        "synthesizer_model": "azure_openai:synth",
    }
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=Context(**roles))
    assert out["status"] == "done", out.get("error")
    assert "Offline extractive mode" not in out["answer"]
    assert server.paths and all(
        p.startswith("/openai/deployments/") and "api-version=2024-10-21" in p for p in server.paths
    )
    # usage is what the provider reported: 10 in, 5 out per call (no local tokenizer)
    usage = app.get_state(thread).values["usage"]
    calls = {spec: u["calls"] for spec, u in usage.items()}
    assert set(calls) == set(roles.values())
    assert sum(calls.values()) == len(responder.calls)
    for u in usage.values():
        assert (u["input_tokens"], u["output_tokens"]) == (10 * u["calls"], 5 * u["calls"])


async def test_the_graph_refuses_a_bad_spec_before_any_model_call(
    models: Any, app: Any, thread: dict[str, Any]
) -> None:
    ctx = scripted_context(synthesizer_model="gpt-4.1")
    with pytest.raises(ModelConfigError, match="'gpt-4.1' has no provider: write openai:gpt-4.1"):
        await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    assert all(not m.calls for m in models.values())
    assert "plan" not in app.get_state(thread).values


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("planner=gpt-4.1", "has no provider: write openai:gpt-4.1"),
        ("writer=nowhere:big", "set NOWHERE_BASE_URL"),
        ("worker=ollama:llama3.1", 'pip install "foreman-agents[ollama]"'),
    ],
)
def test_the_cli_refuses_a_bad_spec_with_exit_2(
    cli: Any, not_installed: None, monkeypatch: pytest.MonkeyPatch, model: str, says: str
) -> None:
    monkeypatch.delenv("NOWHERE_BASE_URL", raising=False)
    result = cli("run", HEAT_PUMPS, "--model", model, "--quiet")
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())


def test_a_bad_spec_from_the_environment_is_refused_too(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREMAN_WORKER_MODEL", "claude-sonnet-4-5")
    result = cli("run", HEAT_PUMPS, "--quiet")
    assert result.exit_code == 2, result.output
    assert "write anthropic:claude-sonnet-4-5" in " ".join(result.output.split())


class _FakeAnthropicError(Exception):
    """Shaped like anthropic.APIStatusError: a message and an HTTP status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.message, self.status_code = message, status_code


class APIConnectionError(Exception):
    """Named like the anthropic SDK's connection error."""


def test_partner_sdk_errors_are_provider_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = types.ModuleType("anthropic")
    sdk.APIError = _FakeAnthropicError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "anthropic", sdk)
    assert _FakeAnthropicError in provider_errors()
    model = cast(BaseChatModel, types.SimpleNamespace(anthropic_api_url="http://127.0.0.1:9"))
    spec = "anthropic:claude-sonnet-4-5"
    refused = provider_error("planner", spec, model, _FakeAnthropicError("invalid x-api-key", 401))
    assert str(refused) == (
        "planner model anthropic:claude-sonnet-4-5 at http://127.0.0.1:9: the API key was "
        "refused (HTTP 401: invalid x-api-key); check ANTHROPIC_API_KEY"
    )
    unknown = provider_error("planner", spec, model, _FakeAnthropicError("model: nope", 404))
    assert "does not know model 'claude-sonnet-4-5'" in str(unknown)
    down = provider_error("planner", spec, model, APIConnectionError("Connection error."))
    assert "could not connect" in str(down) and "ANTHROPIC_BASE_URL" in str(down)
    ollama = cast(BaseChatModel, types.SimpleNamespace(base_url=None))
    gone = provider_error("writer worker", "ollama:llama3.1", ollama, APIConnectionError("x"))
    assert "at http://127.0.0.1:11434" in str(gone) and "check OLLAMA_HOST" in str(gone)
