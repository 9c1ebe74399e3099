"""Cross-run result cache: an identical subtask reuses an accepted result of an earlier run.

Identical means the same cache key: the SHA-256 of the worker's name and `version`, the
model its attempt would run on, how results are judged (rules, or the judge and its model),
the subtask's objective, context, expected output and acceptance criteria, its inputs (each
dependency's worker, status, rendered text and output, in a fixed order), the run's
verified sender, and the values of the `Context` fields naming the data the worker reads
(`WorkerSpec.reads`: corpus, datasets, policy). Not the subtask's id, nor the plan version:
another plan asking for the same work with the same inputs reuses it.

Entries live in the run's store under `("foreman", "cache")`, in the same database as the
checkpoints and the run history, and are reused for `Context.cache_ttl_s`. `Context.cache`
is `use`, `refresh` (the bypass: run, and store the new result over the old) or `off`.

Only results the validator accepted are stored, and never for a worker that is not
`cacheable` (live, per-person data: the shop lookup), nor for a subtask a person took part
in (an answer to its question, a retry they asked for): that work depended on them. A
subtask `foreman rerun` marks runs again: its new result replaces the cached one. Members
of a quorum group neither read nor write it: identical members would share one result.

A hit is an accepted record with one attempt marked `cached`, naming where it came from
(`cached_from`), on the model that made it, costing nothing in this run; the audit trail
gets a `cache_hit` event and the run history counts it as a hit, not as an attempt. Deleting
a run deletes the entries it made (`forget_thread`): they hold its outputs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from langgraph.store.base import BaseStore, PutOp
from pydantic import BaseModel, Field, ValidationError

from foreman.core.context import Context
from foreman.core.schemas import Subtask
from foreman.core.state import (
    AttemptRecord,
    AuditEvent,
    CacheOrigin,
    SubtaskRecord,
    Usage,
    empty_usage,
    sum_usage,
)
from foreman.core.text import without_nul
from foreman.orchestration import history, outputs
from foreman.orchestration.audit import emit, event
from foreman.workers.base import DependencyResult
from foreman.workers.spec import WorkerSpec

NAMESPACE = ("foreman", "cache")
KEY_FORMAT = "foreman-cache/1"  # a new format is a new key: old entries are never misread
PAGE = 500


class CacheEntry(BaseModel):
    """One reusable result, as the store keeps it."""

    key: str = Field(description="The cache key it is stored under.")
    worker: str = Field(description="The worker that made it.")
    version: str = Field(description="That worker's version then.")
    model: str = Field(description="The model its accepted attempt ran on.")
    output: dict[str, Any] = Field(description="The accepted structured output.")
    text: str = Field(description="Its Markdown rendering, what dependents read.")
    usage: Usage = Field(description="What the subtask's attempts cost then (worker and judge).")
    duration_s: float = Field(description="How long its attempts took then.")
    created_at: float = Field(description="Unix time it was stored.")
    thread_id: str = Field(description="The run that made it.")
    subtask_id: str = Field(description="Its subtask in that run.")


def cache_key(
    spec: WorkerSpec,
    sub: Subtask,
    deps: Mapping[str, DependencyResult],
    ctx: Context,
    sender: str | None = None,
) -> str:
    """The key of a subtask's result: what its worker is given and what it runs on."""
    inputs = sorted(
        json.dumps([d.worker, d.status, d.text, d.output], sort_keys=True, default=str)
        for d in deps.values()
    )
    parts = {
        "format": KEY_FORMAT,
        "worker": spec.name,
        "version": spec.version,
        "model": spec.model_for(ctx),
        "judged_by": f"judge:{ctx.validator_model}" if ctx.judge else "rules",
        "objective": sub.objective,
        "context": sub.context,
        "expected_output": sub.expected_output,
        "acceptance_criteria": list(sub.acceptance_criteria),
        "inputs": inputs,
        "sender": sender or "",
        "reads": {name: str(getattr(ctx, name, "")) for name in spec.reads},
    }
    data = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def _eligible(job: Mapping[str, Any], spec: WorkerSpec, ctx: Context) -> bool:
    """Whether this subtask's result may come from, or go to, the cache at all."""
    if ctx.cache == "off" or ctx.cache_ttl_s <= 0 or not spec.cacheable:
        return False
    if (job.get("subtask") or {}).get("group"):  # a quorum's members are independent samples
        return False
    # a person's answer or retry shaped the work: it is theirs, not the subtask's
    return not (job.get("clarification") or job.get("answers") or job.get("retry"))


async def reuse(
    job: Mapping[str, Any],
    spec: WorkerSpec,
    deps: Mapping[str, DependencyResult],
    ctx: Context,
) -> SubtaskRecord | None:
    """The accepted record of a cached result for this subtask, or None (a miss).

    Called before the first attempt. A hit is recorded in the run history as one.
    """
    store = outputs.run_store()
    if store is None or ctx.cache != "use" or job.get("rerun") or not _eligible(job, spec, ctx):
        return None
    t0 = time.perf_counter()
    sub = Subtask.model_validate(job["subtask"])
    key = cache_key(spec, sub, deps, ctx, job.get("sender"))
    entry = await _lookup(store, key, ctx.cache_ttl_s)
    if entry is None:
        return None
    origin: CacheOrigin = {
        "key": key,
        "thread_id": entry.thread_id,
        "subtask_id": entry.subtask_id,
        "created_at": entry.created_at,
        "usage": entry.usage,
        "duration_s": entry.duration_s,
    }
    attempt: AttemptRecord = {
        "n": 1,
        "worker": spec.name,
        "model": entry.model,
        "started_at": time.time(),
        "duration_s": round(time.perf_counter() - t0, 4),
        "input": {
            "objective": sub.objective,
            "dependencies": sorted(deps),
            "feedback": [],
            "clarification": None,
        },
        "status": str(entry.output.get("status", "done")),
        "output": entry.output,
        "error": None,
        "verdict": "accept",
        "feedback": [],
        "usage": empty_usage(),
        "usage_by_model": {},
        "cached": True,
        "cached_from": origin,
    }
    record: SubtaskRecord = {
        "id": sub.id,
        "fingerprint": job["fingerprint"],
        "worker": spec.name,
        "status": "accepted",
        "text": entry.text,
        "output": entry.output,
        "question": None,
        "clarification": None,
        "error": None,
        "attempts": [attempt],
        "usage": empty_usage(),
        "plan_version": job["plan_version"],
        "answers": job.get("answers", 0),
    }
    emit(
        "cache_hit",
        subtask=sub.id,
        worker=spec.name,
        model=entry.model,
        origin=f"{entry.thread_id}/{entry.subtask_id}",
        saved_usd=entry.usage["cost_usd"],
    )
    thread = outputs.thread_id()
    await history.record_attempts(store, record, {spec.name: spec.capability}, thread)
    return record


async def _lookup(store: BaseStore, key: str, ttl_s: float) -> CacheEntry | None:
    """The live entry under `key`; an expired or unreadable one is deleted, and a miss."""
    item = await store.aget(NAMESPACE, key)
    if item is None:
        return None
    try:
        entry = CacheEntry.model_validate(item.value)
    except ValidationError:
        entry = None  # written by another version of Foreman: replaced on the next store
    if entry is not None and time.time() - entry.created_at <= ttl_s:
        return entry
    await store.adelete(NAMESPACE, key)
    return None


async def remember(
    job: Mapping[str, Any],
    spec: WorkerSpec,
    deps: Mapping[str, DependencyResult],
    ctx: Context,
    output: dict[str, Any] | None,
    attempts: list[AttemptRecord],
) -> None:
    """Store an accepted output of `spec` for later runs (over an older one, same key).

    Called when the validator accepts an attempt; `attempts` are the subtask's so far, the
    accepted one last, and `ctx` the one it ran with (its model is the key's).
    """
    store = outputs.run_store()
    if store is None or output is None or not _eligible(job, spec, ctx):
        return
    if spec.blocking_findings and spec.blocking_findings(output):
        return  # a review asking for changes: its subtask is not done
    last = attempts[-1]
    if last["worker"] != spec.name or last.get("cached"):
        return
    sub = Subtask.model_validate(job["subtask"])
    key = cache_key(spec, sub, deps, ctx, job.get("sender"))
    entry = CacheEntry(
        key=key,
        worker=spec.name,
        version=spec.version,
        model=last["model"],
        output=without_nul(output),  # the store is JSON: PostgreSQL refuses NUL
        text=without_nul(spec.render(output)),
        usage=sum_usage(a["usage"] for a in attempts),
        duration_s=round(sum(a["duration_s"] for a in attempts), 4),
        created_at=time.time(),
        thread_id=outputs.thread_id(),
        subtask_id=sub.id,
    )
    await store.aput(NAMESPACE, key, entry.model_dump(mode="json"), index=False)


def audit_events(rec: SubtaskRecord) -> list[AuditEvent]:
    """The audit trail's `cache_hit` entry of a record reused from the cache (else none)."""
    found = []
    for att in rec["attempts"]:
        origin = att.get("cached_from")
        if att.get("cached") and origin is not None:
            found.append(
                event(
                    "cache_hit",
                    rec["id"],
                    worker=att["worker"],
                    model=att["model"],
                    from_thread=origin["thread_id"],
                    from_subtask=origin["subtask_id"],
                    key=origin["key"][:16],
                    saved_usd=round(origin["usage"]["cost_usd"], 6),
                    saved_tokens=origin["usage"]["input_tokens"] + origin["usage"]["output_tokens"],
                )
            )
    return found


async def forget_thread(store: BaseStore, thread_id: str) -> int:
    """Delete the entries a run made (they hold its outputs); return how many."""
    keys: list[str] = []
    while page := await store.asearch(
        NAMESPACE, filter={"thread_id": thread_id}, limit=PAGE, offset=len(keys)
    ):
        keys += [item.key for item in page]
    if keys:
        await store.abatch([PutOp(NAMESPACE, key, None) for key in keys])
    return len(keys)
