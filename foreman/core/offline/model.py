"""`OfflineChatModel`: a LangChain chat model backed by Foreman's offline engines."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from foreman.core.offline import analysis, engines, support
from foreman.core.text import estimate_tokens

Engine = Callable[[str, str], dict[str, Any]]

ENGINES: dict[str, Engine] = {
    "Plan": engines.plan,
    "ResearchFindings": engines.research_findings,
    "Section": engines.section,
    "Answer": engines.answer,
    "Report": engines.report,
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


class OfflineChatModel(BaseChatModel):
    """Deterministic offline model: structured answers come from rule-based engines.

    Usage counts are word-and-punctuation estimates of the prompt and the answer, so
    budgets and audit figures behave as they would with a real provider (at zero cost).
    """

    model_name: str = "extractive"

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
        """Bind structured-output schemas; the first one selects the engine."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

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
        if tools:
            name = tools[0]["function"]["name"]
            engine = ENGINES.get(name)
            if engine is None:
                raise ValueError(f"the offline provider has no engine for {name!r}")
            args = engine(system, human)
            out_tokens = estimate_tokens(json.dumps(args))
            message = AIMessage(
                content="",
                tool_calls=[{"name": name, "args": args, "id": f"offline-{name.lower()}"}],
            )
        else:
            text = engines.answer(system, human)["text"]
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
