"""Graph state: typed records and the reducers that merge parallel writes."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

# pydantic builds the JSON schema Studio renders as the input form only from
# typing_extensions.TypedDict on Python < 3.12.
from typing_extensions import TypedDict

RunStatus = Literal[
    "planned",  # a plan is made (or revised) and waits to run
    "running",  # subtasks are being dispatched and checked
    "rerun",  # `foreman rerun` forked the thread and reruns from a subtask
    "done",  # answered
    "partial",  # answered, with parts that could not be done (listed in the answer)
    "unanswered",  # nothing that answers the request could be found, or it was declined
    "failed",  # stopped: the request could not be planned, or a provider kept failing
    "aborted",  # a person aborted it at an escalation
    "over_budget",  # the token or cost budget ran out; the answer uses what was done
]
"""A run's status, as `OutputState.status` and `foreman threads` give it."""
FINAL_STATUSES: frozenset[str] = frozenset(
    {"done", "partial", "unanswered", "failed", "aborted", "over_budget"}
)
NextStep = Literal["dispatch", "plan", "clarify", "escalate", "synthesize", "review_plan"]
"""Where the run goes after a dispatch round or a person's answer (`next_step`)."""

RecordStatus = Literal[
    "accepted",
    "supplied",
    "skipped",
    "failed",
    "needs_clarification",
    "over_budget",
    "changes_requested",
    "rerun",
    "not_found",
    "cancelled",
]
# Statuses whose output dependents may consume.
USABLE = frozenset({"accepted", "supplied", "skipped"})
# Statuses that end a subtask for this plan version; anything else is re-dispatched.
# `changes_requested`: a review that ran and asks for fixes; its dependents wait for the
# fix round the planner adds.
# `not_found`: the sources have nothing on the subtask; an honest negative, not a failure to
# retry or replan. Its dependents do not run, and the answer says what was not found.
# `cancelled`: a member of a group of interchangeable subtasks, stopped (or never started)
# once the group's quorum was accepted; not needed, so neither retried nor a gap. Dependents
# of the group run on the accepted members (graph/quorum.py).
SETTLED = USABLE | {"over_budget", "changes_requested", "not_found", "cancelled"}
# `rerun`: set on a fork of the thread to run a subtask again (`foreman rerun`).


class Usage(TypedDict):
    """Token and cost totals."""

    input_tokens: int
    output_tokens: int
    cost_usd: float
    calls: int


class ToolCallRecord(TypedDict):
    """One tool call a tool-using worker made during an attempt."""

    tool: str
    """The tool's name (an MCP tool's name on its server)."""
    args: dict[str, Any]
    """The arguments the model gave."""
    status: Literal["ok", "error"]
    """Whether the tool returned a result or an error."""
    result: str
    """What the tool returned (or its error), cut to 500 characters."""


class CacheOrigin(TypedDict):
    """Where a result reused from the cross-run cache was first made."""

    key: str
    """The cache key (SHA-256 of worker, version, model, subtask spec and inputs)."""
    thread_id: str
    """The run that made it."""
    subtask_id: str
    """Its subtask there."""
    created_at: float
    """Unix time it was stored."""
    usage: Usage
    """What making it cost then: what this run saved."""
    duration_s: float
    """How long making it took then."""


class AttemptRecord(TypedDict):
    """One worker attempt on one subtask and the validator's verdict on it."""

    n: int
    """1-based attempt number within the subtask."""
    worker: str
    """Worker that ran this attempt (differs from the plan's after a substitution)."""
    model: str
    """Model spec the worker used (`-` for tool-only workers)."""
    started_at: float
    """Unix time the attempt started."""
    duration_s: float
    """Wall time of the attempt, validation included."""
    input: dict[str, Any]
    """What the worker received: objective, dependency ids, feedback, clarification."""
    status: str
    """The worker's own status: done / failed / needs_clarification / partial."""
    output: dict[str, Any] | None
    """The worker's structured output."""
    error: str | None
    """Provider error, timeout or worker error, if any."""
    verdict: Literal[
        "accept", "retry", "substitute", "give_up", "clarify", "not_found", "cancelled"
    ]
    """What the validator decided; `cancelled`: lost a hedged race, stopped unfinished."""
    feedback: list[str]
    """Validator findings passed back to the next attempt."""
    usage: Usage
    """Tokens and cost of this attempt (worker and judge)."""
    usage_by_model: dict[str, Usage]
    """The same, split by model spec."""
    tool_calls: NotRequired[list[ToolCallRecord]]
    """The tool calls of a tool-using worker (agent, MCP), in order."""
    hedged: NotRequired[bool]
    """A hedge: started because the attempt before it ran late (`Context.hedge_percentile`)."""
    cached: NotRequired[bool]
    """True when no worker ran: the result was reused from an earlier run (`cached_from`)."""
    cached_from: NotRequired[CacheOrigin]
    """The cache entry a reused result came from."""


class SubtaskRecord(TypedDict):
    """The outcome of one subtask under one plan version."""

    id: str
    """Subtask id."""
    fingerprint: str
    """Hash of the subtask spec and its dependencies' specs; a changed spec reruns."""
    worker: str
    """Worker whose output was kept."""
    status: RecordStatus
    """accepted / supplied / skipped / failed / needs_clarification / over_budget /
    cancelled (`RecordStatus`)."""
    text: str
    """Markdown rendering of the output, what dependents and the synthesizer read."""
    output: dict[str, Any] | None
    """Structured output of the accepted attempt."""
    question: str | None
    """A worker's question for a person."""
    clarification: str | None
    """The person's answer this record's attempts were given, if any."""
    answers: NotRequired[int]
    """How many answers to its questions this record's attempts had been given."""
    error: str | None
    """Why the subtask failed."""
    attempts: list[AttemptRecord]
    """Every attempt, in order."""
    usage: Usage
    """Total over the attempts."""
    plan_version: int
    """Plan version the record belongs to."""
    retry: NotRequired[dict[str, str | None]]
    """A person's request, at an escalation, to run the subtask again: `model` (or None for
    the run's own) and `note` for the worker."""
    refs: NotRequired[dict[str, str]]
    """Fields kept in the store instead of the checkpoint: path → content key (see
    `foreman.orchestration.outputs`); those fields hold an empty placeholder."""


class PlanRecord(TypedDict):
    """One version of the plan, as proposed, edited or revised."""

    version: int
    source: Literal["planner", "replan", "fix_round", "human_edit"]
    plan: dict[str, Any]
    at: float


class AuditEvent(TypedDict):
    """One entry of the audit trail."""

    at: float
    kind: str
    subtask: NotRequired[str]
    detail: dict[str, Any]


def empty_usage() -> Usage:
    """Return a zero usage record."""
    return {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "calls": 0}


def add_usage(left: Usage, right: Usage) -> Usage:
    """Sum two usage records."""
    return {
        "input_tokens": left["input_tokens"] + right["input_tokens"],
        "output_tokens": left["output_tokens"] + right["output_tokens"],
        "cost_usd": round(left["cost_usd"] + right["cost_usd"], 8),
        "calls": left["calls"] + right["calls"],
    }


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """Total of several usage records."""
    total = empty_usage()
    for usage in usages:
        total = add_usage(total, usage)
    return total


def merge_by_key(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: merge dicts keyed by id; the newer value for an id wins."""
    return {**(left or {}), **(right or {})}


def sum_usage_by_model(
    left: dict[str, Usage] | None, right: dict[str, Usage] | None
) -> dict[str, Usage]:
    """Reducer: add per-model usage totals."""
    merged = dict(left or {})
    for model, usage in (right or {}).items():
        merged[model] = add_usage(merged.get(model, empty_usage()), usage)
    return merged


class InputState(TypedDict, total=False):
    """What a caller sends: `{"request": "..."}`, or a chat's `{"messages": [...]}`."""

    request: str
    """The user's request, in plain language."""
    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation, as chat clients send it: the last human message is the request.
    The plan and the answer are added as AI messages."""
    sender: str
    """The verified email of the person the request is from (e.g. the account a support
    ticket came from, as your system authenticated it). Customer data is read for this
    identity only, never for an address written in the request."""


class OutputState(TypedDict, total=False):
    """What a caller gets back."""

    answer: str
    """The synthesized answer (Markdown)."""
    status: RunStatus
    """done / partial (some parts could not be answered) / unanswered / failed / aborted /
    over_budget."""
    error: str | None
    """A person-readable error when the run could not finish."""
    trace: list[dict[str, Any]]
    """Where each statement of the answer came from: subtasks and cited passages."""
    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation, with the answer as its last AI message."""


class State(InputState, total=False):
    """Full graph state."""

    settings: dict[str, Any]
    """The `Context` the run goes on with, as a dict; recorded by the planner, and again by
    dispatch when a resume changes it (with an audit entry), so a resume can keep it."""
    plan: dict[str, Any] | None
    """The current plan (a `Plan` dump)."""
    plan_version: int
    """Version number of `plan`, starting at 1."""
    plan_history: Annotated[list[PlanRecord], operator.add]
    """Every plan version."""
    plan_feedback: str
    """Feedback for the next planner call (rejection by a person, or failed subtasks)."""
    allowed_workers: list[str]
    """Kinds of worker a revision may use without a person's approval: those of the first
    plan and of every plan a person approved or wrote (and their alternatives)."""
    approval_needed: str | None
    """Why the current plan waits for a person's approval although `review_plan` is off (a
    revision that brings in a new kind of worker)."""
    review_error: str | None
    """Why the last answer to the plan review was not understood, shown with the next ask."""
    replans: int
    """Plan revisions made after failures."""
    fix_rounds: int
    """Fix-and-review rounds added after reviews that requested changes."""
    results: Annotated[dict[str, SubtaskRecord], merge_by_key]
    """Subtask outcomes keyed by subtask id (the synthesis reducer)."""
    clarifications: Annotated[dict[str, str], merge_by_key]
    """People's answers to worker questions, keyed by subtask id."""
    answers: Annotated[dict[str, int], merge_by_key]
    """How many answers each subtask's questions have had (the same words twice are two)."""
    usage: Annotated[dict[str, Usage], sum_usage_by_model]
    """Tokens and cost per model spec."""
    audit: Annotated[list[AuditEvent], operator.add]
    """The audit trail."""
    next_step: NextStep
    """What the validator (or a person's answer) decided the run does next."""
    aborted: Annotated[list[str], operator.add]
    """Reasons given by people who aborted the run at an escalation."""
    status: RunStatus
    """Where the run is: planned / running, or how it ended (`RunStatus`)."""
    error: str | None
    """Why the run stopped, when it did not finish."""
    answer: str
    """The final answer."""
    trace: list[dict[str, Any]]
    """Where each statement of the answer came from (`graph/trace.py`: `StatementTrace`); replaced
    by each synthesis."""
