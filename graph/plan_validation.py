"""Checks a plan before anything runs, and derives what the scheduler needs from it."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable
from graphlib import CycleError, TopologicalSorter

from pydantic import ValidationError

from foreman.core.schemas import Plan, Subtask
from foreman.orchestration import quorum


class PlanError(ValueError):
    """A plan that cannot run; the message lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def parse_plan(raw: object) -> Plan:
    """Parse a plan from a dict or model, turning schema errors into a `PlanError`."""
    if isinstance(raw, Plan):
        return raw
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'plan'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise PlanError(problems) from exc


def check_plan(plan: Plan, workers: Collection[str], max_subtasks: int) -> None:
    """Raise `PlanError` unless the plan is runnable.

    A direct answer or a decline needs its `answer` and no subtasks. A plan: rejects empty
    plans, plans over `max_subtasks` (checked first, on its own: nothing else about an
    oversized plan is worth the time), duplicate ids, unknown workers, dependencies on ids
    that do not exist, self-dependencies, cycles, and groups and quorums that cannot work
    (`quorum.problems`). Linear in the plan's size.
    """
    problems: list[str] = []
    subtasks = plan.subtasks
    if plan.approach != "plan":
        if not plan.answer.strip():
            problems.append(f"approach {plan.approach} needs the `answer` text")
        if subtasks:
            problems.append(f"approach {plan.approach} takes no subtasks; use approach plan")
        if problems:
            raise PlanError(problems)
        return
    if not subtasks:
        raise PlanError(["the plan has no subtasks (or answer directly: approach direct)"])
    if len(subtasks) > max_subtasks:
        raise PlanError([f"the plan has {len(subtasks)} subtasks; the limit is {max_subtasks}"])
    counts = Counter(s.id for s in subtasks)
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        problems.append(f"duplicate subtask ids: {', '.join(duplicates)}")
    known = set(counts)
    available = ", ".join(sorted(workers))
    for sub in subtasks:
        if sub.worker not in workers:
            problems.append(
                f"subtask {sub.id}: unknown worker {sub.worker!r} (available: {available})"
            )
        for dep in sub.inputs:
            if dep == sub.id:
                problems.append(f"subtask {sub.id} depends on itself")
            elif dep not in known:
                problems.append(f"subtask {sub.id} depends on unknown subtask {dep!r}")
    problems += quorum.problems(plan)
    if not problems:
        try:
            tuple(TopologicalSorter({s.id: s.inputs for s in subtasks}).static_order())
        except CycleError as exc:
            cycle = " -> ".join(str(n) for n in exc.args[1])
            problems.append(f"dependency cycle: {cycle}")
    if problems:
        raise PlanError(problems)


def fingerprints(plan: Plan) -> dict[str, str]:
    """Hash each subtask together with everything upstream of it.

    A subtask whose fingerprint is unchanged across plan versions keeps its accepted
    result; changing a subtask (but for its `group`) changes the fingerprint of everything
    downstream.
    """
    by_id = {s.id: s for s in plan.subtasks}
    order = TopologicalSorter({s.id: s.inputs for s in plan.subtasks}).static_order()
    prints: dict[str, str] = {}
    for sid in order:
        sub = by_id[sid]
        # The group is not the work: a fingerprint without it keeps results (and every
        # fingerprint saved before groups existed) when a revision regroups subtasks;
        # `quorum.reopened` reruns a cancelled one its group then needs.
        body = sub.model_dump(mode="json", exclude={"group"})
        body["inputs"] = [[dep, prints[dep]] for dep in sub.inputs]
        prints[sid] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return prints


def critical_path(latency: dict[str, float], deps: dict[str, Iterable[str]]) -> float:
    """Length of the longest latency-weighted dependency chain."""
    finish: dict[str, float] = {}
    for node in TopologicalSorter({k: list(v) for k, v in deps.items()}).static_order():
        finish[node] = latency.get(node, 0.0) + max(
            (finish[d] for d in deps.get(node, ())), default=0.0
        )
    return max(finish.values(), default=0.0)


def start_order(plan: Plan) -> list[str]:
    """Subtask ids, those heading the longest remaining chain first (ties: plan order).

    A subtask's rank is its estimated duration (1 when unknown) plus the largest rank among
    its dependents, the classic critical-path-first list-scheduling priority.
    """
    dependents: dict[str, list[str]] = {s.id: [] for s in plan.subtasks}
    for sub in plan.subtasks:
        for dep in sub.inputs:
            dependents[dep].append(sub.id)
    cost = {
        s.id: 1.0 if s.estimated_seconds is None else s.estimated_seconds for s in plan.subtasks
    }
    rank: dict[str, float] = {}
    order = TopologicalSorter({s.id: s.inputs for s in plan.subtasks}).static_order()
    for sid in reversed(list(order)):
        rank[sid] = cost[sid] + max((rank[d] for d in dependents[sid]), default=0.0)
    position = {s.id: i for i, s in enumerate(plan.subtasks)}
    return sorted(position, key=lambda sid: (-rank[sid], position[sid]))


def describe_subtask(sub: Subtask) -> str:
    """One line describing a subtask for logs and prompts."""
    deps = f" (needs {', '.join(sub.inputs)})" if sub.inputs else ""
    return f"{sub.id} [{sub.worker}]{deps}: {sub.objective}"
