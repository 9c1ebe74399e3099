"""Over-decomposition guard: steps one worker can do in one go become one subtask.

A plan may split one job into a chain of steps for the same worker ("draft the summary",
then "polish the summary"). Each step costs a model call, a validation and a checkpoint,
and the second sees only the first's output, not the sources it came from. When a subtask's
only consumer is the same tool-free worker and needs nothing else, the two are merged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foreman.core.schemas import Plan, Subtask


def merge_trivial_steps(plan: Plan, workers: Mapping[str, Any]) -> tuple[Plan, list[str]]:
    """The plan with single-consumer chains of one tool-free worker merged; and what merged.

    `workers` maps worker names to specs with `uses_tools`; a worker that uses tools (a
    search, a sandbox) is never merged, since each call of it does real work.
    """
    subtasks = list(plan.subtasks)
    notes: list[str] = []
    while pair := _mergeable(subtasks, workers):
        first, then = pair
        merged = Subtask(
            id=then.id,
            worker=then.worker,
            objective=f"{first.objective.rstrip()} Then: {then.objective}",
            context=then.context or first.context,
            inputs=first.inputs,
            expected_output=then.expected_output or first.expected_output,
            acceptance_criteria=[*first.acceptance_criteria, *then.acceptance_criteria],
            estimated_seconds=_total(first.estimated_seconds, then.estimated_seconds),
            feeds_answer=then.feeds_answer,
        )
        subtasks = [merged if s.id == then.id else s for s in subtasks if s.id != first.id]
        notes.append(
            f"{first.id} merged into {then.id}: the {then.worker} worker does both in one step"
        )
    if not notes:
        return plan, []
    return plan.model_copy(update={"subtasks": subtasks}), notes


def _mergeable(
    subtasks: list[Subtask], workers: Mapping[str, Any]
) -> tuple[Subtask, Subtask] | None:
    consumers: dict[str, list[Subtask]] = {s.id: [] for s in subtasks}
    for sub in subtasks:
        for dep in sub.inputs:
            if dep in consumers:
                consumers[dep].append(sub)
    for first in subtasks:
        users = consumers[first.id]
        if len(users) != 1 or first.replaces:
            continue
        then = users[0]
        spec = workers.get(first.worker)
        if (
            then.inputs == [first.id]
            and then.worker == first.worker
            and spec is not None
            and not getattr(spec, "uses_tools", True)
            and not then.replaces
        ):
            return first, then
    return None


def _total(a: float | None, b: float | None) -> float | None:
    return None if a is None and b is None else (a or 0.0) + (b or 0.0)
