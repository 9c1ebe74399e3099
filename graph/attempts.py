"""One worker attempt: run the worker, check its output, and say what came of it.

`execution.py` loops over attempts (retries, the cascade's rungs, substitutes, a hedge);
this module runs one: the worker (a subgraph through the workers graph, a tool, or a
declared worker's runner) under its timeout and the run's budget guard, then the checks.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import ensure_config, merge_configs
from langchain_core.tracers.base import BaseTracer
from langsmith.utils import tracing_is_enabled

from foreman.core.context import Context
from foreman.core.models import (
    StructuredOutputError,
    load_chat_model,
    provider_error,
    provider_errors,
)
from foreman.core.schemas import Subtask
from foreman.core.state import ToolCallRecord, Usage, add_usage, empty_usage
from foreman.orchestration.audit import callback_handlers
from foreman.orchestration.budget import BudgetGuard, BudgetRefused
from foreman.orchestration.validation import check_output
from foreman.workers.base import WorkerInput
from foreman.workers.registry import WorkerSpec
from foreman.workers.router import AttemptState, WorkersGraph

# The workers graph's own state repeats its worker's, so it is saved only when an attempt
# fails or is cut off; the worker's subgraph is saved as `Context.worker_durability` says.
# ("sync" would also make LangGraph 1.2 wait, in a run without a checkpointer, for a save
# that never starts: AttributeError '_put_checkpoint_fut'.)
ATTEMPT_DURABILITY: Literal["exit"] = "exit"
# Said for the run's sake: in a run without a checkpointer it has no effect (and no harm).
warnings.filterwarnings("ignore", message="`durability` has no effect when no checkpointer")
SUBTASK_TAG = "foreman:subtask"


@dataclass
class Outcome:
    """What one attempt came to, before the verdict."""

    worker: str
    model: str
    output: dict[str, Any] | None
    error: str | None
    problems: list[str]
    by_model: dict[str, Usage]
    calls: list[ToolCallRecord] = field(default_factory=list)
    started: float = 0.0
    duration_s: float = 0.0
    refused: bool = False
    """A model call was refused before it was made (a budget): nothing more may start."""
    hedged: bool = False
    """The attempt was a hedge, started because the one before it was late."""


def attempt_config(
    sub: Subtask, worker: str, attempt: int, plan_version: int, model: str
) -> RunnableConfig:
    """How one attempt appears in a trace: `w3 · research · attempt 2`, tagged and described.

    Tags `foreman:subtask` and `worker:NAME`; metadata `subtask_id`, `worker`, `attempt`,
    `plan_version` and `model`, which the worker's own model calls inherit.
    """
    return {
        "run_name": f"{sub.id} · {worker} · attempt {attempt}",
        "tags": [SUBTASK_TAG, f"worker:{worker}"],
        "metadata": {
            "subtask_id": sub.id,
            "worker": worker,
            "attempt": attempt,
            "plan_version": plan_version,
            "model": model,
        },
    }


def tracer_listens() -> bool:
    """Whether a tracer records this run: LangSmith tracing on, or one among the callbacks."""
    if tracing_is_enabled():
        return True
    return any(isinstance(h, BaseTracer) for h in callback_handlers())


async def _run_worker(
    workers: WorkersGraph | None,
    spec: WorkerSpec,
    inp: WorkerInput,
    ctx: Context,
    trace: RunnableConfig,
    guarded: bool = False,
) -> tuple[dict[str, Any] | None, Usage, str, str | None, list[ToolCallRecord]]:
    """Invoke a worker; a timeout or a malformed answer is a failed attempt.

    The subgraph's run (a tool worker's call or a runner's, wrapped in one) is named and
    tagged by `trace`. Returns the output, usage, model, error and the tool calls made.

    Raises:
        ProviderError: the worker's model provider failed after its retries (the run stops,
            resumable, rather than spend retries and replans on a provider that is down).
    """
    timeout = spec.timeout_s or ctx.worker_timeout_s
    calls: list[ToolCallRecord] = []
    out: dict[str, Any]
    try:
        async with asyncio.timeout(timeout):
            if spec.runner is not None:
                runner = spec.runner

                async def call_runner(given: WorkerInput) -> dict[str, Any]:
                    return dict(await runner(given, ctx))

                out = (
                    await RunnableLambda(call_runner).ainvoke(inp, trace)
                    if guarded or tracer_listens()  # the guard rides on the run's callbacks
                    else await call_runner(inp)
                )
                calls = list(out.get("tool_calls") or [])
            elif spec.tool is not None:
                tool = spec.tool

                async def call_tool(given: WorkerInput) -> dict[str, Any]:
                    return {"output": await tool(given, ctx), "model": "-"}

                # the named run costs ~1 ms per call: made only when a tracer records it
                out = (
                    await RunnableLambda(call_tool).ainvoke(inp, trace)
                    if guarded or tracer_listens()
                    else await call_tool(inp)
                )
            else:
                assert workers is not None
                attempt: AttemptState = {"input": inp.model_dump(mode="json"), "worker": spec.name}
                out = await workers.ainvoke(
                    attempt, trace, context=ctx, durability=ATTEMPT_DURABILITY
                )
    except TimeoutError:
        return None, empty_usage(), "-", f"timed out after {timeout:g}s", calls
    except provider_errors() as exc:  # a worker calling a client directly
        spec_name = ctx.model_for_worker(spec.name)
        model = load_chat_model(spec_name)
        raise provider_error(f"{spec.name} worker", spec_name, model, exc) from exc
    except StructuredOutputError as exc:  # the call happened: count it
        spent = exc.usage or empty_usage()
        return None, spent, ctx.model_for_worker(spec.name), str(exc), calls
    usage = out.get("usage") or empty_usage()
    return out.get("output"), usage, out.get("model", "-"), None, calls


def over_cap(spec: WorkerSpec, usage: Usage) -> str | None:
    """Why an attempt spent past its worker's own cap, if it did."""
    tokens = usage["input_tokens"] + usage["output_tokens"]
    if spec.max_tokens and tokens > spec.max_tokens:
        return f"spent {tokens} tokens, past the {spec.name} worker's cap of {spec.max_tokens}"
    if spec.max_cost_usd and usage["cost_usd"] > spec.max_cost_usd:
        return (
            f"spent ${usage['cost_usd']:.4f}, past the {spec.name} worker's cap of "
            f"${spec.max_cost_usd:g}"
        )
    return None


async def one_attempt(
    workers: WorkersGraph | None,
    spec: WorkerSpec,
    inp: WorkerInput,
    ctx: Context,
    trace: RunnableConfig,
    guard: BudgetGuard | None = None,
) -> Outcome:
    """Run one attempt and check its output (status, schema, rules, judge, caps).

    A `guard` reserves each model call's cost before it is made, and may refuse it.

    Raises:
        ProviderError: the worker's model provider failed after its retries.
    """
    if guard is not None:
        # added to the run's own callbacks (streaming, tracing), which a config's
        # `callbacks` would otherwise replace
        ambient: RunnableConfig = {"callbacks": ensure_config().get("callbacks")}
        trace = {**trace, "callbacks": merge_configs(ambient, {"callbacks": [guard]})["callbacks"]}
    started, t0 = time.time(), time.perf_counter()
    try:
        output, usage, model, error, calls = await _run_worker(
            workers, spec, inp, ctx, trace, guarded=guard is not None
        )
    except BudgetRefused as exc:
        return Outcome(
            spec.name, ctx.model_for_worker(spec.name), None, str(exc), [str(exc)], {},
            started=started, duration_s=round(time.perf_counter() - t0, 4), refused=True,
        )  # fmt: skip
    by_model: dict[str, Usage] = {model: usage} if usage["calls"] else {}
    if guard is not None:  # what the guard did not see (a remote agent's own calls) counts too
        seen_in, seen_out = guard.spent_tokens
        unseen = usage["input_tokens"] + usage["output_tokens"] - seen_in - seen_out
        guard.ledger.settle((0.0, 0), max(0.0, usage["cost_usd"] - guard.spent_usd), max(0, unseen))
    if error is None and (spent := over_cap(spec, usage)):
        error = spent
    if error is not None:
        problems = [error]
    else:
        assert output is not None
        try:
            problems, judge_usage = await check_output(spec, output, inp, ctx)
        except StructuredOutputError as exc:  # a malformed verdict costs this attempt
            problems, judge_usage = [f"validator model error: {exc}"], {}
        for m, u in judge_usage.items():
            by_model[m] = add_usage(by_model.get(m, empty_usage()), u)
            if guard is not None:  # the judge's calls are the validator's, not guarded
                tokens = u["input_tokens"] + u["output_tokens"]
                guard.ledger.settle((0.0, 0), u["cost_usd"], tokens)
    return Outcome(
        spec.name,
        model,
        output,
        error,
        problems,
        by_model,
        calls,
        started,
        round(time.perf_counter() - t0, 4),
    )
