import pytest

from foreman.core.schemas import Plan
from foreman.orchestration.plan_validation import (
    PlanError,
    check_plan,
    critical_path,
    fingerprints,
    parse_plan,
    start_order,
)

WORKERS = {"research", "writer", "llm"}


def plan(*subtasks: dict) -> Plan:
    return Plan.model_validate({"goal": "g", "subtasks": list(subtasks)})


def sub(id: str, worker: str = "llm", inputs: list[str] | None = None) -> dict:
    return {"id": id, "worker": worker, "objective": f"do {id}", "inputs": inputs or []}


def problems(p: Plan, max_subtasks: int = 12) -> str:
    with pytest.raises(PlanError) as exc:
        check_plan(p, WORKERS, max_subtasks)
    return str(exc.value)


def test_valid_plan_passes():
    check_plan(plan(sub("a"), sub("b", inputs=["a"])), WORKERS, 12)


def test_empty_plan_rejected():
    assert "no subtasks" in problems(plan())


def test_too_many_subtasks_rejected():
    assert "limit is 2" in problems(plan(sub("a"), sub("b"), sub("c")), max_subtasks=2)


def test_duplicate_ids_rejected():
    assert "duplicate subtask ids: a" in problems(plan(sub("a"), sub("a")))


def test_unknown_worker_rejected_with_the_available_ones():
    msg = problems(plan(sub("a", worker="astrologer")))
    assert "unknown worker 'astrologer'" in msg and "llm, research, writer" in msg


def test_dangling_dependency_rejected():
    assert "depends on unknown subtask 'zz'" in problems(plan(sub("a", inputs=["zz"])))


def test_self_dependency_rejected():
    assert "depends on itself" in problems(plan(sub("a", inputs=["a"])))


def test_cycle_rejected_and_named():
    msg = problems(plan(sub("a", inputs=["c"]), sub("b", inputs=["a"]), sub("c", inputs=["b"])))
    assert "dependency cycle" in msg and all(x in msg for x in "abc")


def test_schema_errors_are_readable():
    with pytest.raises(PlanError) as exc:
        parse_plan({"goal": "g", "subtasks": [{"id": "1 bad", "worker": "llm", "objective": ""}]})
    text = str(exc.value)
    assert "subtasks.0.id" in text and "subtasks.0.objective" in text


def test_fingerprint_changes_flow_downstream_only():
    p1 = plan(sub("a"), sub("b"), sub("c", inputs=["a"]))
    changed = p1.model_copy(deep=True)
    changed.subtasks[0].objective = "do a differently"
    f1, f2 = fingerprints(p1), fingerprints(changed)
    assert f1["b"] == f2["b"]
    assert f1["a"] != f2["a"] and f1["c"] != f2["c"]


def test_critical_path():
    deps = {"x1": [], "x2": ["x1"], "y1": [], "y2": ["y1"], "z": ["x2", "y2"]}
    lat = {"x1": 4, "x2": 0.5, "y1": 0.5, "y2": 4, "z": 0.5}
    assert critical_path(lat, deps) == 5.0


def test_start_order_is_critical_path_first():
    p = Plan.model_validate({"goal": "g", "subtasks": [
        {"id": "short", "worker": "llm", "objective": "x", "estimated_seconds": 1},
        {"id": "long", "worker": "llm", "objective": "x", "estimated_seconds": 3},
        {"id": "a", "worker": "llm", "objective": "x", "estimated_seconds": 1},
        {"id": "b", "worker": "llm", "objective": "x", "inputs": ["a"], "estimated_seconds": 2.5},
    ]})  # fmt: skip
    # a heads a 3.5 s chain, long is 3 s, b follows a, short last
    assert start_order(p) == ["a", "long", "b", "short"]
    unknown = plan(sub("x"), sub("y"), sub("z", inputs=["y"]))
    assert start_order(unknown) == ["y", "x", "z"]  # no estimates: longer chain first


def test_an_oversized_plan_is_refused_for_its_size_alone():
    # 10,000 subtasks, every id twice, unknown workers, dangling inputs: only the size counts
    huge = plan(*[sub(f"s{i // 2}", "astrologer", [f"t{i}"]) for i in range(10_000)])
    found = problems(huge, max_subtasks=12)
    assert found == "the plan has 10000 subtasks; the limit is 12"


def test_a_large_valid_plan_is_checked_in_full():
    chain = plan(*[sub(f"s{i}", inputs=[f"s{i - 1}"] if i else []) for i in range(5_000)])
    check_plan(chain, WORKERS, 5_000)
    dup = plan(*[sub(f"s{i % 4_999}") for i in range(5_000)])
    assert problems(dup, max_subtasks=5_000) == "duplicate subtask ids: s0"
