"""What the `foreman` commands share: the Typer app, options, exit codes, and opening a run."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from langgraph.errors import GraphRecursionError
from langgraph.store.base import BaseStore
from rich.console import Console

from foreman.checkpointers import open_persistence
from foreman.questions import UsageError
from graph.context import Context
from graph.models import ModelConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3
ROLES = {
    "planner": "planner_model",
    "worker": "worker_model",
    "validator": "validator_model",
    "synthesizer": "synthesizer_model",
}

app = typer.Typer(
    help="Foreman: an orchestrator plans a request, specialised workers do the subtasks in "
    "parallel, a validator checks every result, and one answer is synthesized. Runs offline "
    "by default (deterministic extractive mode); see README for LLM providers.\n\n"
    "Exit codes: 0 done, 1 failed or aborted, 2 bad input, 3 paused waiting for an answer.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Checkpoint store: sqlite:PATH (default sqlite:.foreman/foreman.sqlite, or "
        "$FOREMAN_DB) or a postgresql:// URL.",
    ),
]


DurabilityOption = Annotated[
    str,
    typer.Option(
        "--durability",
        help="When checkpoints are written: sync (before the next step starts; nothing "
        "finished is lost in a crash), async (while the next step runs), exit (only when "
        "the run ends or pauses). See README, Durability.",
    ),
]
DURABILITY = ("sync", "async", "exit")


def check_durability(durability: str) -> None:
    """Refuse an unknown `--durability` before anything is opened."""
    if durability not in DURABILITY:
        err.print(f"[red]error:[/] --durability must be one of {', '.join(DURABILITY)}")
        raise typer.Exit(EXIT_USAGE)


def home() -> Path:
    """Where run folders (audit trails) are written: $FOREMAN_HOME or .foreman."""
    return Path(os.environ.get("FOREMAN_HOME", ".foreman"))


def run_config(thread: str, ctx: Context | None = None) -> dict[str, Any]:
    """The config of a run on `thread`; a new run also saves its Context in the metadata."""
    config: dict[str, Any] = {"configurable": {"thread_id": thread}, "recursion_limit": 200}
    if ctx is not None:
        config["metadata"] = {"foreman_context": dataclasses.asdict(ctx)}
    return config


def make_context(overrides: dict[str, Any], models: list[str]) -> Context:
    """A Context from option values and `--model ROLE=PROVIDER:MODEL` items."""
    for item in models:
        role, sep, spec = item.partition("=")
        if not sep or not spec:
            raise UsageError(f"--model expects ROLE=PROVIDER:MODEL, got {item!r}")
        if role in ROLES:
            overrides[ROLES[role]] = spec
        else:  # a worker name: per-worker override
            overrides.setdefault("worker_models", {})[role] = spec
    return Context(**{k: v for k, v in overrides.items() if v is not None})


async def saved_context(app_graph: Any, config: dict[str, Any]) -> Context:
    """The Context a thread was started with (kept in its checkpoint metadata)."""
    async for snap in app_graph.aget_state_history(config, limit=50):
        saved = (snap.metadata or {}).get("foreman_context")
        if saved:
            return Context(**saved)
    return Context()


@asynccontextmanager
async def open_app(db: str) -> AsyncIterator[tuple[Any, BaseStore]]:
    """The graph compiled with the checkpointer and store of `db`."""
    from graph import build_graph

    async with open_persistence(db) as (saver, store):
        yield build_graph().compile(checkpointer=saver, store=store, name="foreman"), store


def execute(coro: Any, thread: str) -> None:
    """Run a command's coroutine; turn errors into a message and an exit code."""
    try:
        code = asyncio.run(coro)
    except UsageError as exc:
        err.print(f"[red]error:[/] {exc}")
        code = EXIT_USAGE
    except ModelConfigError as exc:
        err.print(f"[red]configuration error:[/] {exc}")
        code = EXIT_USAGE
    except KeyboardInterrupt:
        err.print(f"\n[yellow]Interrupted.[/] Progress is checkpointed: foreman resume {thread}")
        code = 130
    except GraphRecursionError as exc:
        err.print(f"[red]error:[/] the run did not converge ({exc}); foreman show {thread}")
        code = EXIT_FAILED
    except (OSError, ValueError, RuntimeError) as exc:
        err.print(f"[red]error:[/] {type(exc).__name__}: {exc}")
        err.print(f"The thread keeps its last checkpoint: foreman resume {thread}")
        code = EXIT_FAILED
    raise typer.Exit(code)


async def require_run(app_graph: Any, db: str, thread: str) -> None:
    """Refuse, as bad input, a thread id the database has no run for."""
    if not (await app_graph.aget_state(run_config(thread))).values:
        raise UsageError(f"no run with thread id {thread!r} in {db}")
