"""Review worker: checks other workers' results against their criteria, finding by finding."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field

from foreman.core.context import Context
from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, one_call_worker
from foreman.workers.spec import WorkerSpec

NAME = "review"
BLOCKING = ("blocker", "major")


class ReviewFinding(BaseModel):
    """One problem found in one reviewed result."""

    subject: str = Field(description="Id of the input (subtask) the finding is about.")
    severity: Literal["blocker", "major", "minor"] = Field(
        description="blocker/major must be fixed before the work is used; minor may wait."
    )
    location: str = Field(default="", description="File, function or passage concerned.")
    issue: str = Field(description="What is wrong, concretely.")
    suggestion: str = Field(default="", description="How to fix it.")


class ReviewReport(WorkerStatus):
    """The review's verdict and its findings."""

    approved: bool = Field(default=False, description="True when nothing blocker or major remains.")
    findings: list[ReviewFinding] = Field(default_factory=list, description="Problems found.")
    summary: str = Field(default="", description="One or two sentences on the overall state.")


def blocking_findings(output: dict[str, Any]) -> list[str]:
    """Findings that must be fixed: the review did not approve the work."""
    if output.get("approved"):
        return []
    found = [
        f"{f.get('subject')}: {f.get('issue')}"
        for f in output.get("findings", [])
        if f.get("severity") in BLOCKING
    ]
    return found or [output.get("summary") or "the review did not approve the work"]


def check_review(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Review rules: findings name a reviewed input; the verdict agrees with the findings."""
    problems: list[str] = []
    if not inp.dependencies:
        problems.append("there was nothing to review (the subtask has no inputs)")
    findings = output.get("findings", [])
    for i, f in enumerate(findings, start=1):
        if inp.dependencies and f.get("subject") not in inp.dependencies:
            problems.append(
                f"finding {i} is about {f.get('subject')!r}, which is not one of the reviewed "
                f"inputs ({', '.join(inp.dependencies)})"
            )
    blocking = [f for f in findings if f.get("severity") in BLOCKING]
    if output.get("approved") and blocking:
        problems.append("the review approves the work but lists blocker or major findings")
    if not output.get("approved") and not blocking:
        problems.append("the review rejects the work without a blocker or major finding")
    return problems


def render_review(output: dict[str, Any]) -> str:
    """Verdict line, then one bullet per finding."""
    verdict = "approved" if output.get("approved") else "changes requested"
    lines = [f"**Review: {verdict}.** {output.get('summary', '')}".rstrip()]
    for f in output.get("findings", []):
        where = f" `{f['location']}`" if f.get("location") else ""
        fix = f" Fix: {f['suggestion']}" if f.get("suggestion") else ""
        lines.append(f"- [{f['severity']}] {f['subject']}{where}: {f['issue']}{fix}")
    return "\n".join(lines)


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the review worker subgraph."""
    return one_call_worker(NAME, ReviewReport, node="review")


def spec() -> WorkerSpec:
    """The `review` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="review",
        uses_tools=False,
        capability="review",
        description="reviews the results of its inputs (code or text) against the "
        "objective and criteria and returns findings; a review that requests changes "
        "makes the orchestrator add fix subtasks and a new review",
        graph=build(),
        output_schema=ReviewReport,
        check=check_review,
        render=render_review,
        blocking_findings=blocking_findings,
    )
