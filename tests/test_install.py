"""Foreman installed from its wheel, not the checkout: package data, front door, no shadowing.

The wheel is built and installed (`--no-deps`, into a folder) without the network; the runs
use this environment's dependencies, but every Foreman file comes from the installed copy.
The working directory holds a user's own `graph.py` and `workers.py`, which must not be
imported: Foreman's packages are `foreman.*`.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
WITHOUT_EXTRAS = REPO / "tests" / "support" / "without_extras.py"
EXTRAS = {
    "postgres": {"langgraph-checkpoint-postgres", "psycopg"},
    "data": {"pandas", "matplotlib"},
    "web": {"langchain-tavily", "ddgs", "langchain-community", "aiohttp"},
    "docs": {"langchain-community", "pypdf", "beautifulsoup4", "markdownify"},
    "mcp": {"langchain-mcp-adapters", "mcp"},
    "a2a": {"a2a-sdk"},
}
SHADOWS = "raise SystemExit(\"the user's own {} was imported instead of Foreman's\")\n"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--no-index", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("foreman_agents-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
        + ["--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    for name in ("graph.py", "workers.py", "prompts.py"):
        (tmp_path / name).write_text(SHADOWS.format(name))
    return tmp_path


def run_installed(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),  # ahead of site-packages, where the editable install is
        "LANGSMITH_TRACING": "false",
        "FOREMAN_WORKER_MODEL": "offline",
        "FOREMAN_PLANNER_MODEL": "offline",
    }
    env.pop("FOREMAN_SUPPORT_DB", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_carries_prompts_data_and_the_sandbox_launcher(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    prompts = {Path(n).name for n in names if n.startswith("foreman/prompts/")}
    assert {"planner.md", "synthesizer.md", "judge.md", "research.md"} <= prompts
    assert sum(n.startswith("foreman/data/corpus/") for n in names) >= 10
    for needed in (
        "foreman/data/prices.json",
        "foreman/data/support/policy.md",
        "foreman/data/datasets/heat_pump_trial.csv",
        "foreman/orchestration/orchestrator.py",
        "foreman/workers/sandbox/launcher/__main__.py",
        "foreman/core/offline/model.py",
    ):
        assert needed in names, needed
    # Generated files stay out: an install makes its own sample database.
    assert not any(n.endswith(".sqlite") for n in names)
    assert not any(n.startswith(("graph/", "workers/", "prompts/")) for n in names)


def test_the_wheel_declares_what_the_demo_needs_and_the_extras(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.parser.Parser().parsestr(zf.read(name).decode())
    providers = {"anthropic", "google-genai", "ollama"}  # one per provider, not in all
    assert set(meta.get_all("Provides-Extra")) == {*EXTRAS, "all", "dev", *providers}
    by_extra: dict[str, dict[str, Requirement]] = {}
    for line in meta.get_all("Requires-Dist"):
        req = Requirement(line)
        extra = re.search(r'extra == "(\w+)"', str(req.marker or ""))
        by_extra.setdefault(extra.group(1) if extra else "", {})[req.name] = req
    runtime = set(by_extra.pop(""))
    assert {"langgraph", "langchain-core", "langchain-openai", "bm25s", "typer"} <= runtime
    assert not runtime & set().union(*EXTRAS.values())  # nothing optional at runtime
    assert {extra: set(by_extra[extra]) for extra in EXTRAS} == EXTRAS
    # all: the feature extras; dev: all of them, so `make test` tests every part
    assert set(by_extra["all"]) == {"foreman-agents"}
    assert by_extra["all"]["foreman-agents"].extras == set(EXTRAS)
    assert by_extra["dev"]["foreman-agents"].extras == {"all"}


def test_the_front_door_imports_from_the_installed_copy(installed: Path, user_folder: Path):
    code = (
        "import json, foreman\n"
        "from foreman import Context, build_graph, graph\n"
        "from foreman.core.prompts import PROMPTS_DIR\n"
        "import foreman.orchestration.planner as planner\n"
        "print(json.dumps({'graph': type(graph).__name__, 'name': graph.name,\n"
        "  'context': Context().planner_model, 'prompts': str(PROMPTS_DIR),\n"
        "  'planner': planner.__file__, 'nodes': sorted(build_graph().nodes)}))\n"
    )
    done = run_installed(installed, user_folder, "-c", code)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["graph"] == "CompiledStateGraph" and seen["name"] == "foreman"
    assert seen["context"] == "offline"
    assert seen["prompts"].startswith(str(installed))
    assert seen["planner"].startswith(str(installed))
    assert {"plan", "synthesize"} <= set(seen["nodes"])


@pytest.mark.parametrize("example", ["report", "support"])
def test_the_installed_command_runs_the_examples(installed: Path, user_folder: Path, example):
    """Without any extra: their packages are made unimportable (`without_extras.py`)."""
    done = run_installed(
        installed, user_folder, str(WITHOUT_EXTRAS), "all",
        "-m", "foreman", "run", "--example", example, "--no-ask",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "status done" in done.stdout
    if example == "support":
        # the installed copy made its own sample database and read the customer's order
        assert (installed / "foreman/data/support/shop.sqlite").is_file()
        assert "A10023" in done.stdout and "30-day return" in done.stdout
    else:
        # cited from the corpus the wheel carries
        assert "[how-heat-pumps-work#p" in done.stdout
        assert f"{installed}/foreman/data/corpus" in " ".join(done.stdout.split())


def test_the_installed_sandbox_launcher_runs(installed: Path, user_folder: Path):
    code = (
        "import asyncio\n"
        "from foreman.workers.sandbox import isolation_report, run_sandboxed\n"
        "mode = isolation_report()['mode']\n"
        "r = asyncio.run(run_sandboxed(['python', 'main.py'], {'main.py': 'print(6 * 7)'}))\n"
        "print(mode, '|', r.stdout.strip())\n"
    )
    done = run_installed(installed, user_folder, "-c", code)
    assert done.returncode == 0, done.stderr
    mode, out = done.stdout.strip().split(" | ")
    if not mode.startswith("full"):
        pytest.skip(f"sandbox {mode} here (docs/sandbox.md)")
    assert out == "42"
