"""Quorums: groups of interchangeable subtasks that may finish on k of their n members.

A plan marks subtasks that are independent sources for the same need with one
`Subtask.group`, and may set `Plan.quorums[group] = k`. Once k members are accepted the
need is met: the other members are not waited for (the dataflow scheduler cancels them,
the waves scheduler stops dispatching them), their records say `cancelled`, and the group's
dependents run on the accepted members. A group without a quorum waits for all of them.

Everything here is a pure function of the plan and the records' statuses, so the
schedulers, the validator and the synthesizer reach the same decision.
"""

from __future__ import annotations

from collections.abc import Mapping

from foreman.core.schemas import Plan

# What counts towards a quorum: a result to build on. `skipped` is usable but holds nothing.
COUNTED = frozenset({"accepted", "supplied"})
CANCELLED = "cancelled"


def groups(plan: Plan) -> dict[str, list[str]]:
    """Group name -> its members' ids, in plan order."""
    members: dict[str, list[str]] = {}
    for sub in plan.subtasks:
        if sub.group is not None:
            members.setdefault(sub.group, []).append(sub.id)
    return members


def needed(plan: Plan, group: str) -> int:
    """How many members of `group` must be accepted (all, unless the plan sets a quorum)."""
    return plan.quorums.get(group, len(groups(plan).get(group, [])))


def met(plan: Plan, statuses: Mapping[str, str]) -> set[str]:
    """Groups with at least their quorum of members accepted, given statuses by subtask id."""
    return {
        group
        for group, members in groups(plan).items()
        if sum(statuses.get(m) in COUNTED for m in members) >= needed(plan, group)
    }


def spare(plan: Plan, statuses: Mapping[str, str]) -> set[str]:
    """Members of groups that met their quorum without them: not waited for, not gaps.

    Those still running or waiting are cancelled; one that failed before the quorum was
    reached is not a failure of the run either (its group's need is met).
    """
    done = met(plan, statuses)
    return {
        m
        for group, members in groups(plan).items()
        if group in done
        for m in members
        if statuses.get(m) not in COUNTED
    }


def reopened(plan: Plan, statuses: Mapping[str, str]) -> set[str]:
    """Cancelled subtasks to run after all: a revised plan left their group short of its quorum.

    A cancelled record is settled (never retried), but its fingerprint ignores the group, so
    a revision that raises a quorum or takes a member out of its group keeps the record;
    it runs again only then. A member a person asked to rerun (`foreman rerun`) counts as
    accepted here: the group waits for it rather than reopening the others.
    """
    done = met(plan, {i: "accepted" if st == "rerun" else st for i, st in statuses.items()})
    return {
        sub.id
        for sub in plan.subtasks
        if statuses.get(sub.id) == CANCELLED and (sub.group is None or sub.group not in done)
    }


def reason(plan: Plan, group: str) -> str:
    """The error a cancelled member's record carries."""
    size = len(groups(plan).get(group, []))
    return f"cancelled: quorum of {needed(plan, group)} of {size} reached (group {group})"


def problems(plan: Plan) -> list[str]:
    """What is wrong with a plan's groups and quorums (`check_plan` reports them).

    A quorum names a group the plan has and asks for 1 to all of its members; members of a
    group do not depend on one another (they are interchangeable, so independent); and a
    subtask that depends on a member of a group that may be cut short depends on all of its
    members, so it always has the accepted ones to run on.
    """
    found: list[str] = []
    members = groups(plan)
    k_of = {g: plan.quorums.get(g, len(ids)) for g, ids in members.items()}
    for group, k in plan.quorums.items():
        if group not in members:
            found.append(f"quorum for unknown group {group!r} (no subtask has this `group`)")
        elif not 1 <= k <= len(members[group]):
            found.append(
                f"group {group}: quorum {k} must be between 1 and its {len(members[group])} "
                f"subtask(s) ({', '.join(members[group])})"
            )
    group_of = {sid: g for g, ids in members.items() for sid in ids}
    for sub in plan.subtasks:
        own = [d for d in sub.inputs if sub.group is not None and group_of.get(d) == sub.group]
        if own:
            found.append(
                f"subtask {sub.id} depends on {', '.join(own)} of its own group {sub.group}: "
                "interchangeable subtasks must be independent"
            )
        inputs = set(sub.inputs)
        for group in sorted({group_of[d] for d in inputs if d in group_of} - {sub.group}):
            if k_of[group] >= len(members[group]):
                continue  # waits for all of them: nothing is cut short
            missing = [m for m in members[group] if m not in inputs]
            if missing:
                found.append(
                    f"subtask {sub.id} depends on part of group {group} (quorum "
                    f"{k_of[group]} of {len(members[group])}) but not on "
                    f"{', '.join(missing)}: depend on all of its members, or on none"
                )
    return found
