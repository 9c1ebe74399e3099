"""`OfflineChatModel`: a LangChain chat model backed by Foreman's offline engines."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from foreman.core.offline import analysis, engines, support
from foreman.core.offline.agent import agent_turn
from foreman.core.offline.generic import fill_schema
from foreman.core.text import estimate_tokens

Engine = Callable[[str, str], dict[str, Any]]

ENGINES: dict[str, Engine] = {
    "Plan": engines.plan,
    "ResearchFindings": engines.research_findings,
    "Section": engines.section,
    "Answer": engines.answer,
    "Verdict": engines.verdict,
    "CodeSubmission": engines.code_submission,
    "ReviewReport": engines.review_report,
    "AnalysisScript": analysis.analysis_script,
    "Classification": support.classification,
    "PolicyDecision": support.policy_decision,
    "CustomerReply": support.customer_reply,
}


def _text(message: BaseMessage) -> str:
    return message.text if hasattr(message, "text") else str(message.content)


def text_answer(system: str, human: str) -> str:
    """The answer to a plain text call (no schema), from the engine its prompt is for.

    The synthesizer's request carries `<results>`: its answer is the report assembled from
    them. Anything else gets an extractive answer from its inputs.
    """
    if "<results>" in human:
        return str(engines.report(system, human)["markdown"])
    return str(engines.answer(system, human)["text"])


def stream_pieces(text: str) -> list[str]:
    """Word-sized pieces, each with the spaces after it, that join back to `text`."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


class OfflineChatModel(BaseChatModel):
    """Deterministic offline model: structured answers come from rule-based engines.

    Usage counts are word-and-punctuation estimates of the prompt and the answer, so
    budgets and audit figures behave as they would with a real provider (at zero cost).
    """

    model_name: str = "extractive"
    disable_streaming: bool | Literal["tool_calling"] = "tool_calling"
    """Structured calls answer in one message; text calls stream when streaming is asked."""

    @property
    def _llm_type(self) -> str:
        return "foreman-offline"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: a structured-output schema, or an agent's tools.

        With a `tool_choice` (how `with_structured_output` binds), the first tool is the
        schema whose name selects the engine; without, they are the tools of a tool-calling
        agent, answered by `offline.agent`.
        """
        return self.bind(
            tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        system = "\n".join(_text(m) for m in messages if m.type == "system")
        human = "\n".join(_text(m) for m in messages if m.type != "system")
        tools = kwargs.get("tools") or []
        prompt_tokens = estimate_tokens(system + human)
        # `bind_tools` always passes `tool_choice`: None binds an agent's tools, a choice a
        # structured-output schema (`with_structured_output`); tools given without the key
        # (scripted tests calling `_generate`) are a schema too.
        if tools and "tool_choice" in kwargs and kwargs["tool_choice"] is None:
            message = agent_turn(messages, human, tools)
            out_tokens = estimate_tokens(message.text + json.dumps(message.tool_calls))
        elif tools:
            name = tools[0]["function"]["name"]
            engine = ENGINES.get(name)
            if engine is not None:
                args = engine(system, human)
            else:  # a schema of the user's (a declared worker's `output_schema`)
                args = fill_schema(tools[0]["function"].get("parameters") or {}, system, human)
            out_tokens = estimate_tokens(json.dumps(args))
            message = AIMessage(
                content="",
                tool_calls=[{"name": name, "args": args, "id": f"offline-{name.lower()}"}],
            )
        else:
            text = text_answer(system, human)
            out_tokens = estimate_tokens(text)
            message = AIMessage(content=text)
        message.usage_metadata = {
            "input_tokens": prompt_tokens,
            "output_tokens": out_tokens,
            "total_tokens": prompt_tokens + out_tokens,
        }
        message.response_metadata = {"model_name": f"offline:{self.model_name}"}
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Pure computation on text already in memory: no thread hop needed.
        return self._generate(messages, stop, None, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The answer of `_generate` in word-sized text chunks, usage on the last."""
        yield from _chunks(self._generate(messages, stop, None, **kwargs))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """The answer of `_agenerate` in word-sized text chunks, usage on the last."""
        for chunk in _chunks(await self._agenerate(messages, stop, None, **kwargs)):
            yield chunk


def _chunks(result: ChatResult) -> Iterator[ChatGenerationChunk]:
    """A whole answer as the chunks a streaming provider would send.

    Subclasses that script `_generate` (tests, benchmarks) stream through this as well. A
    tool call (only when a caller streams a structured call itself) comes as one chunk.
    """
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    if message.tool_calls:
        calls = [
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
            for i, c in enumerate(message.tool_calls)
        ]
        pieces = [""]
    else:
        calls, pieces = [], stream_pieces(message.text) or [""]
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=piece,
                tool_call_chunks=calls if last else [],  # type: ignore[arg-type]
                usage_metadata=message.usage_metadata if last else None,
                response_metadata=message.response_metadata if last else {},
            )
        )
