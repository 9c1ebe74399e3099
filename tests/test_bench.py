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
