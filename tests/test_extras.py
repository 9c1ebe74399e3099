"""Foreman without its extras: the offline examples run, and each optional part says which
extra it needs (`tests/support/without_extras.py` makes their packages fail to import).

The web and docs extras are tested beside their features (`test_web_providers.py`,
`test_corpus_loaders.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foreman.core.extras import MODULES, MissingExtra, has_module, require

WITHOUT_EXTRAS = Path(__file__).parent / "support" / "without_extras.py"
PG = "postgresql://postgres@127.0.0.1:5432/test"
NEEDS_POSTGRES = "PostgreSQL needs the postgres extra: pip install 'foreman-agents[postgres]'"


def without(extras: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m ...` or `python -c ...` in `cwd` with `extras` missing."""
    env = {**os.environ, "FOREMAN_HOME": str(cwd / "home"), "COLUMNS": "200"}
    env["FOREMAN_DB"] = f"sqlite:{cwd / 'runs.sqlite'}"
    for role in ("PLANNER", "WORKER", "VALIDATOR", "SYNTHESIZER"):
        env.pop(f"FOREMAN_{role}_MODEL", None)
    env.pop("FOREMAN_WEB_SEARCH", None)
    return subprocess.run(
        [sys.executable, str(WITHOUT_EXTRAS), extras, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_dev_install_has_every_extra():
    """`make test` installs `.[dev]`, which includes them all: every feature is tested."""
    for extra, modules in MODULES.items():
        assert all(has_module(m) for m in modules), extra
        require("it", extra)


def test_missing_extra_names_the_extra_and_the_command():
    with pytest.raises(ImportError) as raised:
        require("it", "postgres", ["no_such_module_here"])
    assert isinstance(raised.value, MissingExtra) and raised.value.extra == "postgres"
    assert str(raised.value) == NEEDS_POSTGRES.replace("PostgreSQL", "it")


@pytest.mark.parametrize("example", ["report", "support"])
def test_the_offline_examples_need_no_extra(example: str, tmp_path: Path):
    done = without("all", "-m", "foreman", "run", "--example", example, "--no-ask", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "status done" in done.stdout
    assert without("all", "-m", "foreman", "threads", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    "command",
    [
        ["run", "Write a report on heat pumps", "--no-ask"],
        ["resume", "t1"],
        ["threads"],
        ["show", "t1"],
        ["delete", "t1"],
        ["expire", "--older-than", "30d"],
        ["gc"],
    ],
)
def test_postgresql_without_the_extra_is_bad_input(command: list[str], tmp_path: Path):
    done = without("postgres", "-m", "foreman", *command, "--db", PG, cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (2, f"error: {NEEDS_POSTGRES}")


def test_postgresql_without_the_extra_from_python(tmp_path: Path):
    code = (
        "import asyncio\n"
        "from foreman.checkpointers import open_persistence\n"
        "from foreman.locks import thread_lock\n"
        "from foreman.listing import open_reader\n"
        f"for opening in (open_persistence({PG!r}), thread_lock({PG!r}, 't1'),\n"
        f"                open_reader({PG!r})):\n"
        "    async def enter():\n"
        "        async with opening:\n"
        "            pass\n"
        "    try:\n"
        "        asyncio.run(enter())\n"
        "    except ImportError as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    done = without("postgres", "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"MissingExtra {NEEDS_POSTGRES}"] * 3


def test_the_data_example_without_the_extra_is_bad_input(tmp_path: Path):
    done = without("data", "-m", "foreman", "run", "--example", "data", "--no-ask", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "error: the data example needs the data extra: pip install 'foreman-agents[data]'"
    )


def test_the_data_worker_without_the_extra_fails_before_any_model_call(tmp_path: Path):
    code = (
        "import asyncio, json\n"
        "from foreman.core.context import Context\n"
        "from foreman.workers import data\n"
        "inp = {'subtask': {'id': 'd1', 'worker': 'data',\n"
        "       'objective': 'Average cop by region in heat_pump_trial.csv'}}\n"
        "out = asyncio.run(data.build().ainvoke({'input': inp}, context=Context()))\n"
        "print(json.dumps([out['output']['status'], out['output']['error'], out['model']]))\n"
    )
    done = without("data", "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status, error, model = json.loads(done.stdout)
    assert (status, model) == ("failed", "-")  # "-": no model was called
    assert error == (
        "the data worker (pandas and matplotlib in the sandbox) needs the data extra: "
        "pip install 'foreman-agents[data]'"
    )


DECLARED_WITHOUT_EXTRA = {
    "a2a": (
        '[workers.translator]\nkind = "a2a"\ncapability = "translation"\n'
        'description = "a remote agent"\nurl = "http://127.0.0.1:9"\n',
        2,
        "An A2A worker needs the a2a extra: pip install 'foreman-agents[a2a]'",
    ),
    "mcp": (
        '[mcp_servers.units]\ntransport = "stdio"\ncommand = "units-server"\n\n'
        '[workers.converter]\nkind = "mcp"\ncapability = "conversion"\n'
        'description = "converts units"\nservers = ["units"]\ntools = ["miles_to_km"]\n',
        6,
        "An MCP worker needs the mcp extra: pip install 'foreman-agents[mcp]'",
    ),
}


@pytest.mark.parametrize("extra", sorted(DECLARED_WITHOUT_EXTRA))
def test_a_declared_worker_without_its_extra_is_an_error_at_its_line(tmp_path: Path, extra: str):
    text, line, message = DECLARED_WITHOUT_EXTRA[extra]
    workers = tmp_path.resolve() / "workers.toml"
    workers.write_text(text, encoding="utf-8")
    code = (
        "from foreman.workers.declared.build import declared_workers\n"
        "try:\n"
        "    declared_workers('workers.toml', ())\n"
        "except ValueError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = without(extra, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"WorkersFileError {workers}:{line}: {message}"
