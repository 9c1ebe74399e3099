"""Pydantic contracts between the orchestrator, the workers and the people who steer a run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

SubtaskId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$", description="Short unique id, e.g. `r1`."),
]


class Subtask(BaseModel):
    """One unit of work in a plan, dispatched to one worker."""

    id: SubtaskId
    worker: str = Field(description="Name of the worker from the registry that does this.")
    objective: str = Field(min_length=1, description="What the worker must do, self-contained.")
    context: str = Field(
        default="",
        description="Background the worker should know but its result need not address, "
        "e.g. the topic of the report a section belongs to.",
    )
    inputs: list[str] = Field(
        default_factory=list,
        description="Ids of subtasks whose accepted outputs this one needs (its dependencies).",
    )
    expected_output: str = Field(default="", description="What a good result looks like.")
    acceptance_criteria: list[str] = Field(
        default_factory=list, description="Checks the validator applies to the result."
    )
    estimated_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Rough expected duration, if you can tell; the subtasks on the longest "
        "chain are started first.",
    )
    feeds_answer: bool = Field(
        default=True,
        description="Whether the final answer uses this result directly; false for "
        "intermediate work that later subtasks build on.",
    )
    replaces: str | None = Field(
        default=None,
        description="Id of an earlier subtask whose result this one supersedes (a fix after "
        "a review); the superseded result is left out of the answer.",
    )
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="Name shared by interchangeable subtasks: independent sources for the same "
        "need (e.g. two searches for one fact), any of which can serve it. See `quorums`.",
    )


Approach = Literal["direct", "plan", "decline"]


class Plan(BaseModel):
    """The orchestrator's decision on a request: answer it, plan subtasks, or decline."""

    goal: str = Field(description="The request restated as one concrete goal.")
    approach: Approach = Field(
        default="plan",
        description="direct: a simple request you can answer completely yourself, now (put "
        "the whole answer in `answer`, no subtasks); plan: subtasks for the workers (one "
        "subtask when one worker can do it all); decline: the request cannot be answered with "
        "these workers and sources (say why in `answer`).",
    )
    rationale: str = Field(
        default="",
        description="Why this approach and this many subtasks: the parts of the request "
        "each subtask covers.",
    )
    answer: str = Field(
        default="", description="The answer (direct), or why it cannot be answered (decline)."
    )
    subtasks: list[Subtask] = Field(
        default_factory=list, description="Subtasks (approach plan); inputs reference ids."
    )
    left_out: list[str] = Field(
        default_factory=list,
        description="Parts of the request this plan does not cover (e.g. over the subtask "
        "limit), so the answer can say so.",
    )
    quorums: dict[str, int] = Field(
        default_factory=dict,
        description="Group name -> how many of its subtasks must be accepted (k of n); once k "
        "are, the others are cancelled and the answer says so. A group without an entry "
        "waits for all of its subtasks.",
    )


class Claim(BaseModel):
    """A statement with the passages that support it."""

    text: str = Field(description="The statement, one or two sentences.")
    citations: list[str] = Field(
        default_factory=list, description="Ids of the passages that support it, e.g. `doc#p2`."
    )


class WorkerStatus(BaseModel):
    """How a worker's attempt ended, common to every worker's output schema."""

    status: Literal["done", "failed", "needs_clarification", "partial", "not_found"] = Field(
        default="done",
        description="done; failed (give `error`); needs_clarification (give `question`); "
        "partial (an intermediate result); not_found (the sources have nothing that addresses "
        "the objective: say what was not found in `error`, invent nothing).",
    )
    error: str | None = Field(default=None, description="Why the attempt failed.")
    question: str | None = Field(default=None, description="Question for a person, if any.")


class Verdict(BaseModel):
    """A judge model's decision on one result against its acceptance criteria."""

    accept: bool = Field(description="True if the result meets every acceptance criterion.")
    feedback: str = Field(default="", description="What to fix, if not accepted.")


# --- resume payloads: what a person sends back to an interrupt -----------------------


class ApprovePlan(BaseModel):
    """Run the plan as proposed."""

    action: Literal["approve"]


class EditPlan(BaseModel):
    """Run this plan instead (validated like a planner's plan)."""

    action: Literal["edit"]
    plan: Plan


class RejectPlan(BaseModel):
    """Ask the planner for a new plan, with this feedback."""

    action: Literal["reject"]
    feedback: str = Field(min_length=1)


PlanReview = Annotated[ApprovePlan | EditPlan | RejectPlan, Field(discriminator="action")]


class ClarificationAnswer(BaseModel):
    """A person's answer to a worker's question."""

    answer: str = Field(min_length=1)


class SkipSubtask(BaseModel):
    """Go on without this subtask's result."""

    action: Literal["skip"]


class SupplyResult(BaseModel):
    """Use this text as the subtask's accepted result."""

    action: Literal["supply"]
    result: str = Field(min_length=1)


class RetrySubtask(BaseModel):
    """Run the subtask again (fresh attempts), on another model if given."""

    action: Literal["retry"]
    model: str | None = Field(
        default=None, description="PROVIDER:MODEL for the retry (default: the run's own)."
    )
    note: str = Field(default="", description="What the worker should do differently.")


class AbortRun(BaseModel):
    """Stop the run; the answer says why."""

    action: Literal["abort"]
    reason: str = ""


Escalation = Annotated[
    SkipSubtask | SupplyResult | RetrySubtask | AbortRun, Field(discriminator="action")
]
