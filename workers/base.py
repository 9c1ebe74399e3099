"""What every worker receives and returns: the private input of one subtask and its result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from foreman.core.context import Context
from foreman.core.models import ainvoke_structured
from foreman.core.prompts import render, untrusted
from foreman.core.schemas import Subtask
from foreman.core.state import Usage

M = TypeVar("M", bound=BaseModel)


class DependencyResult(BaseModel):
    """The accepted output of a subtask this one depends on."""

    id: str
    worker: str
    status: str = Field(description="accepted, supplied (by a person) or skipped")
    text: str = Field(description="Markdown rendering of the output")
    output: dict[str, Any] | None = None


class WorkerInput(BaseModel):
    """Everything a worker sees: its subtask and its dependencies' outputs, nothing else."""

    subtask: Subtask
    dependencies: dict[str, DependencyResult] = Field(default_factory=dict)
    feedback: list[str] = Field(default_factory=list, description="Validator findings so far")
    clarification: str | None = Field(default=None, description="A person's answer")
    sender: str | None = Field(
        default=None,
        description="The verified email of the requester, given by the caller apart from the "
        "request; the only identity whose customer data may be read",
    )
    attempt: int = 1


class WorkerState(TypedDict, total=False):
    """State of a worker subgraph: the private input in, the structured output out."""

    input: dict[str, Any]
    """A `WorkerInput` dump."""
    output: dict[str, Any]
    """The worker's structured output, including `status`, `error` and `question`."""
    text: str
    """Markdown rendering of the output, for dependents and the synthesizer."""
    usage: Usage
    """Tokens and cost of the model calls this attempt made."""
    model: str
    """Model spec used, or `-` for a tool-only worker."""


def request_prompt(inp: WorkerInput, passages: str = "") -> str:
    """Render the human message a worker model receives."""
    sub = inp.subtask
    deps = "\n".join(
        f'<input id="{d.id}" worker="{d.worker}" status="{d.status}">\n'
        f"{untrusted(d.text)}\n</input>"
        for d in inp.dependencies.values()
    )
    return render(
        "worker_request",
        objective=untrusted(sub.objective),
        context=untrusted(sub.context),
        expected_output=untrusted(sub.expected_output),
        criteria="; ".join(untrusted(c) for c in sub.acceptance_criteria),
        feedback="\n".join(f"- {untrusted(f)}" for f in inp.feedback),
        clarification=untrusted(inp.clarification or ""),
        inputs=deps,
        passages=passages,
    )


def citations_in(outputs: list[dict[str, Any] | None]) -> set[str]:
    """Every passage id cited in a list of worker outputs (findings or claims)."""
    found: set[str] = set()
    for out in outputs:
        for item in (out or {}).get("findings", []) + (out or {}).get("claims", []):
            found.update(item.get("citations", []))
    return found


async def ask_worker_model(
    worker: str, schema: type[M], prompt: str, human: str, ctx: Context
) -> tuple[M, Usage, str]:
    """One structured call with the worker's own model and system prompt.

    Returns the parsed answer, its usage and the model spec used.
    """
    spec = ctx.model_for_worker(worker)
    parsed, usage = await ainvoke_structured(
        spec,
        schema,
        [SystemMessage(render(prompt)), HumanMessage(human)],
        method=ctx.structured_output_method,
        role=f"{worker} worker",
    )
    return parsed, usage, spec


def one_call_worker(
    name: str,
    schema: type[BaseModel],
    *,
    node: str,
    prompt: str | None = None,
    human: Callable[[WorkerInput], str] = request_prompt,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile a worker that is one structured call of its model.

    The system prompt is `prompts/<prompt or name>.md`; `human` renders the request (the
    subtask and its inputs by default); the node is named `node` in the subgraph.
    """

    async def call(state: WorkerState, runtime: Runtime[Context]) -> dict[str, Any]:
        inp = WorkerInput.model_validate(state["input"])
        result, usage, spec = await ask_worker_model(
            name, schema, prompt or name, human(inp), runtime.context
        )
        return {"output": result.model_dump(), "usage": usage, "model": spec}

    call.__doc__ = f"Ask the {name} worker's model for a {schema.__name__}."
    builder = StateGraph(WorkerState, context_schema=Context)
    builder.add_node(node, call)
    builder.add_edge(START, node)
    builder.add_edge(node, END)
    return builder.compile(name=name, checkpointer=False)
