"""The reference task graphs ship with the repository: `make bench` needs no `../shared`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.simulation import DAGS, load_dags

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "bench" / "dags.json"  # the maintainers' workspace only


def test_the_reference_dags_are_read_from_the_repository() -> None:
    assert DAGS.is_relative_to(REPO)
    assert DAGS.is_file(), f"{DAGS} is missing: copy it from ../shared/bench/dags.json"
    dags = load_dags()
    assert set(dags) == {"dag9", "two_chains", "report12", "fanout50"}
    for dag in dags.values():  # every dependency names a task of the same graph
        assert all(set(task["deps"]) <= set(dag) for task in dag.values())


@pytest.mark.skipif(not SHARED.is_file(), reason="no ../shared beside this clone")
def test_the_in_repo_copy_matches_the_shared_reference() -> None:
    assert DAGS.read_bytes() == SHARED.read_bytes(), "refresh bench/dags.json from ../shared"


async def test_the_adaptive_benchmark_runs_both_modes_on_one_workload(tmp_path: Path) -> None:
    """A small `bench.adaptive` run: its figures are computed from the runs it made."""
    from bench import adaptive

    result = await adaptive.measure(6, seed=3, tight=3, scale=0.2)
    base, adapt = result["baseline"], result["adaptive"]
    assert base["requests"] == adapt["requests"] == 6
    assert set(base["attempts_by_model"]) == {"sim:strong"}  # the baseline: one model
    assert set(adapt["attempts_by_model"]) & {"sim:nano", "sim:mini"}  # the cascade's rungs
    assert result["cost_ratio"] == round(
        adapt["cost_per_accepted_usd"] / base["cost_per_accepted_usd"], 4
    )
    assert result["acceptance_delta"] == round(adapt["acceptance"] - base["acceptance"], 4)
    tight = result["tight_budget"]
    assert (
        result["budget_overruns"] == adapt["budget_overruns"] + tight["adaptive"]["budget_overruns"]
    )
    assert tight["baseline"]["requests"] == tight["adaptive"]["requests"] == 3
