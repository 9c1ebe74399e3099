"""Runs one subtask: worker attempts, validation after each, retry, substitution."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import warnings
from typing import Any, Literal, NotRequired, TypedDict

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tracers.base import BaseTracer
from langsmith.utils import tracing_is_enabled

from foreman.core.context import Context
from foreman.core.models import (
    StructuredOutputError,
    load_chat_model,
    provider_error,
    provider_errors,
)
from foreman.core.redact import redact
from foreman.core.schemas import Subtask
from foreman.core.state import (
    AttemptRecord,
    SubtaskRecord,
    ToolCallRecord,
    Usage,
    add_usage,
    empty_usage,
    sum_usage,
)
from foreman.orchestration import history, outputs
from foreman.orchestration.audit import callback_handlers, emit
from foreman.orchestration.validation import check_output, decide
from foreman.workers.base import DependencyResult, WorkerInput
from foreman.workers.registry import WorkerRegistry, WorkerSpec, registry_for
from foreman.workers.router import AttemptState, WorkersGraph

# The workers graph's own state repeats its worker's, so it is saved only when an attempt
# fails or is cut off; the worker's subgraph is saved as `Context.worker_durability` says.
# ("sync" would also make LangGraph 1.2 wait, in a run without a checkpointer, for a save
# that never starts: AttributeError '_put_checkpoint_fut'.)
ATTEMPT_DURABILITY: Literal["exit"] = "exit"
# Said for the run's sake: in a run without a checkpointer it has no effect (and no harm).
warnings.filterwarnings("ignore", message="`durability` has no effect when no checkpointer")
SUBTASK_TAG = "foreman:subtask"


class Job(TypedDict):
    """The private input of one subtask dispatch (serialisable: it is a task argument)."""

    subtask: dict[str, Any]
    dependencies: dict[str, dict[str, Any]]
    clarification: str | None
    fingerprint: str
    plan_version: int
    answers: NotRequired[int]
    """How many answers the subtask's questions had when it was dispatched."""
    sender: NotRequired[str | None]
    """The run's verified requester (`State.sender`)."""
    retry: NotRequired[dict[str, str | None]]
    """A person's retry at an escalation: another `model`, a `note` for the worker."""


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
                    if tracer_listens()
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
                    if tracer_listens()
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


async def execute_subtask(
    job: Job, registry: WorkerRegistry, workers: WorkersGraph | None, ctx: Context
) -> SubtaskRecord:
    """Run a subtask to a verdict: accepted, failed, or waiting for a person's answer.

    Attempts of graph workers run through `workers` (`foreman.workers.router`), tools
    directly.
    """
    sub = Subtask.model_validate(job["subtask"])
    registry = await asyncio.to_thread(registry_for, registry, ctx)  # + the workers file's
    loaded = await outputs.load_all(job["dependencies"], fields=outputs.DEPENDENCY_FIELDS)
    deps = {k: DependencyResult.model_validate(v) for k, v in loaded.items()}
    worker = sub.worker
    tried = [worker]
    feedback: list[str] = []
    retry = job.get("retry") or {}
    if retry.get("model"):  # a person chose another model for this subtask at an escalation
        ctx = dataclasses.replace(ctx, worker_model=str(retry["model"]), worker_models={})
    if retry.get("note"):
        feedback = [f"A person asked for this retry: {retry['note']}"]
    attempts: list[AttemptRecord] = []
    on_worker = 0
    while True:
        on_worker += 1
        spec = registry[worker]
        inp = WorkerInput(
            subtask=sub,
            dependencies=deps,
            feedback=feedback,
            clarification=job["clarification"],
            sender=job.get("sender"),
            attempt=len(attempts) + 1,
        )
        model_spec = ctx.model_for_worker(worker)
        emit("attempt", subtask=sub.id, worker=worker, attempt=inp.attempt, model=model_spec)
        trace = attempt_config(sub, worker, inp.attempt, job["plan_version"], model_spec)
        started, t0 = time.time(), time.perf_counter()
        output, usage, model, error, calls = await _run_worker(workers, spec, inp, ctx, trace)
        by_model: dict[str, Usage] = {model: usage} if usage["calls"] else {}
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
        alternatives = [a for a in spec.alternatives if a not in tried]
        verdict = decide(output, problems, on_worker, bool(alternatives), ctx)
        attempt: AttemptRecord = {
            "n": len(attempts) + 1,
            "worker": worker,
            "model": model,
            "started_at": started,
            "duration_s": round(time.perf_counter() - t0, 4),
            "input": {
                "objective": sub.objective,
                "dependencies": sorted(deps),
                "feedback": list(feedback),
                "clarification": job["clarification"],
            },
            "status": (output or {}).get("status", "failed"),
            "output": output,
            "error": redact(error) if error else None,
            "verdict": verdict,
            "feedback": [redact(p) for p in problems],
            "usage": sum_usage(by_model.values()),
            "usage_by_model": by_model,
        }
        if calls:
            attempt["tool_calls"] = calls
        attempts.append(attempt)
        emit("verdict", subtask=sub.id, worker=worker, verdict=verdict, problems=problems)
        if verdict == "retry":
            feedback = problems
            continue
        if verdict == "substitute":
            worker = alternatives[0]
            tried.append(worker)
            on_worker = 0
            feedback = problems
            continue
        status = {
            "accept": "accepted",
            "clarify": "needs_clarification",
            "not_found": "not_found",
        }.get(verdict, "failed")
        error = None if verdict in ("accept", "clarify") else redact("; ".join(problems))
        if verdict == "not_found":
            error = redact(str((output or {}).get("error") or "nothing found on the objective"))
        if verdict == "accept" and spec.blocking_findings and output is not None:
            # A sound review that found problems: kept, but its dependents wait for fixes.
            if blocking := spec.blocking_findings(output):
                status = "changes_requested"
                error = "changes requested: " + "; ".join(blocking)
        record: SubtaskRecord = {
            "id": sub.id,
            "fingerprint": job["fingerprint"],
            "worker": worker,
            "status": status,  # type: ignore[typeddict-item]
            "text": spec.render(output) if verdict == "accept" and output else "",
            "output": output if verdict == "accept" else None,
            "question": (output or {}).get("question") if verdict == "clarify" else None,
            "clarification": job["clarification"],
            "error": error,
            "attempts": attempts,
            "usage": sum_usage(a["usage"] for a in attempts),
            "plan_version": job["plan_version"],
            "answers": job.get("answers", 0),
        }
        capabilities = {w: registry[w].capability for w in tried}
        await history.record_attempts(
            outputs.run_store(), record, capabilities, outputs.thread_id()
        )
        return await outputs.stow(record)
