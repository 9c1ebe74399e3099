"""What the `foreman` commands share: the Typer app, options, exit codes, and opening a run.

LangGraph, the models and the workers are imported inside the functions that use them: a
command's options are all `foreman --help` needs, and importing the rest takes seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from foreman.core.context import Context, context_from, settings_of
from foreman.core.extras import MissingExtra, require_postgres
from foreman.core.redact import redact
from foreman.errors import UsageError
from foreman.locks import ThreadBusy

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING, EXIT_BUSY, EXIT_NOT_ANSWERED = 0, 1, 2, 3, 4, 5
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
    "Exit codes: 0 done, 1 failed or aborted (or a provider failed: resumable), 2 bad input "
    "(nothing is changed), 3 paused waiting for an answer, 4 the thread is being run by "
    "another process, 5 finished without a full answer (partly or not answered: the answer "
    "says what could not be found or done).\n\n"
    "Providers: a request to a model gives up after FOREMAN_HTTP_TIMEOUT seconds (default "
    "60) and is retried FOREMAN_HTTP_RETRIES times (default 1); then the run stops, "
    "resumable, with what failed.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay one line each, greppable
_debug = {"on": bool(os.environ.get("FOREMAN_DEBUG"))}


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Print tracebacks of errors (also FOREMAN_DEBUG=1).")
    ] = False,
) -> None:
    """Foreman's options that apply to every command."""
    _debug["on"] = _debug["on"] or debug


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
WorkersFileOption = Annotated[
    Path | None,
    typer.Option(
        "--workers-file",
        help="TOML file declaring more workers: prompts, tool-using agents, MCP tools, remote "
        "LangGraph or A2A agents (default: $FOREMAN_WORKERS_FILE; README, Workers). A file "
        "that cannot be used is refused, naming the line, before anything runs.",
    ),
]
ModelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="ROLE=PROVIDER:MODEL; roles: planner, worker, validator (the judge, with "
        "--judge), synthesizer, or a worker name (research, code, review, data, policy, ... "
        "or one the workers file declares). Repeatable.",
    ),
]
SETTINGS_KEY = "foreman_settings"
THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def say(text: str) -> None:
    """Print one status line, never wrapped (people grep for it; tests match it)."""
    console.print(text, soft_wrap=True, highlight=False)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print an error and return the `Exit` to raise (`[...]` in it is text, not markup)."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def check_durability(durability: str) -> None:
    """Refuse an unknown `--durability` before anything is opened."""
    if durability not in DURABILITY:
        raise fail(f"--durability must be one of {', '.join(DURABILITY)}")


def check_db(db: str) -> str:
    """Refuse a `--db` that is neither `sqlite:PATH` nor a PostgreSQL URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return db
    if db.startswith("sqlite:") and db.removeprefix("sqlite:").strip():
        return db
    raise UsageError(
        f"--db {redact(db)!r} is not a database: use sqlite:PATH (e.g. "
        "sqlite:.foreman/foreman.sqlite) or a postgresql:// URL"
    )


def check_thread(thread: str) -> str:
    """Refuse a thread id that could name a path outside the runs folder."""
    if not THREAD_ID.fullmatch(thread) or ".." in thread:
        raise UsageError(
            f"thread id {thread!r} is not allowed: use up to 128 letters, digits, '_', '-' "
            "or '.', starting with a letter or digit (no '..')"
        )
    return thread


def checked(db: str | None, *threads: str) -> str:
    """The database to use (`--db`, else the default), with it and the thread ids checked.

    Raises the `Exit` of a usage error (code 2) before anything is opened, a PostgreSQL URL
    without the postgres extra included.
    """
    from foreman.databases import default_db, is_postgres

    try:
        for thread in threads:
            check_thread(thread)
        checked_db = check_db(db or default_db())
        if is_postgres(checked_db):
            require_postgres()
        return checked_db
    except (UsageError, MissingExtra) as exc:
        raise fail(str(exc)) from exc


def home() -> Path:
    """Where run folders (audit trails) are written: $FOREMAN_HOME or .foreman."""
    return Path(os.environ.get("FOREMAN_HOME", ".foreman"))


def run_folder(thread: str) -> Path:
    """The folder of one run's audit trail, always inside `home()/runs`."""
    runs = (home() / "runs").resolve()
    folder = (runs / check_thread(thread)).resolve()
    if folder.parent != runs:  # belt and braces: the id pattern already forbids this
        raise UsageError(f"thread id {thread!r} would write outside {runs}")
    return folder


def remove_run_folder(thread: str) -> bool:
    """Delete a run's audit files (they hold the request, outputs and answer); True if any."""
    import shutil

    folder = run_folder(thread)
    if not folder.is_dir():
        return False
    shutil.rmtree(folder)
    return True


def run_config(thread: str, ctx: Context | None = None) -> dict[str, Any]:
    """The config of a run on `thread`.

    A new run's settings also go into its checkpoints' metadata as one JSON string (savers
    keep strings, not dicts): until the planner has recorded them in state, a crash would
    otherwise leave a resume nothing to go on with.
    """
    config: dict[str, Any] = {"configurable": {"thread_id": thread}, "recursion_limit": 200}
    if ctx is not None:
        config["metadata"] = {SETTINGS_KEY: json.dumps(settings_of(ctx))}
    return config


def thread_settings(snapshot: Any) -> dict[str, Any] | None:
    """The settings a thread runs with: from its state, else from its checkpoint's metadata."""
    if snapshot.values.get("settings"):
        return dict(snapshot.values["settings"])
    saved = (snapshot.metadata or {}).get(SETTINGS_KEY)
    return json.loads(saved) if isinstance(saved, str) else None


def registry_of(workers_file: str) -> Any:
    """The workers a run may use: the built-in ones and those `workers_file` declares.

    Raises:
        UsageError: the workers file cannot be used; the message names the line.
    """
    from foreman.workers.declared.config import WorkersFileError
    from foreman.workers.registry import default_registry, registry_for

    try:
        return registry_for(default_registry(), Context(workers_file=workers_file))
    except WorkersFileError as exc:
        raise UsageError(f"workers file: {exc}") from exc


def model_overrides(models: list[str], workers_file: str = "") -> dict[str, Any]:
    """Context fields set by `--model ROLE=PROVIDER:MODEL` items."""
    overrides: dict[str, Any] = {}
    workers = registry_of(workers_file) if models else {}
    for item in models:
        role, sep, spec = item.partition("=")
        role, spec = role.strip(), spec.strip()
        if not sep or not spec:
            raise UsageError(f"--model expects ROLE=PROVIDER:MODEL, got {item!r}")
        if role in ROLES:
            overrides[ROLES[role]] = spec
        elif role in workers:  # a worker name: per-worker override
            overrides.setdefault("worker_models", {})[role] = spec
        else:
            raise UsageError(
                f"--model {item!r}: {role!r} is neither a role ({', '.join(ROLES)}) nor a "
                f"worker ({', '.join(workers)})"
            )
    return overrides


def check_models(ctx: Context) -> None:
    """Resolve every model spec now, so a bad one is refused before a thread exists.

    Raises:
        ModelConfigError: a spec that does not resolve; builds clients, sends nothing.
    """
    from foreman.core.models import check_specs

    check_specs(ctx.model_specs())


def check_web_search(ctx: Context) -> None:
    """Build the web search provider now: a bad spec or a missing extra is bad input.

    Raises:
        UsageError: the spec is wrong, its key is missing, or the web extra is not installed.
    """
    if ctx.web_search.strip():
        from foreman.workers.tools.web_search import get_web_search

        try:
            get_web_search(ctx.web_search)
        except (ValueError, MissingExtra) as exc:
            raise UsageError(str(exc)) from exc


def make_context(overrides: dict[str, Any], models: list[str]) -> Context:
    """A Context from option values and `--model ROLE=PROVIDER:MODEL` items."""
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        ctx = Context(**values)
    except ValueError as exc:  # a FOREMAN_* setting outside its choices
        raise UsageError(f"configuration error: {exc}") from exc
    registry_of(ctx.workers_file)  # a workers file that cannot be used stops the run here
    if models:
        ctx = dataclasses.replace(ctx, **model_overrides(models, ctx.workers_file))
    check_models(ctx)
    check_web_search(ctx)
    return ctx


def resumed_context(
    settings: dict[str, Any] | None, overrides: dict[str, Any], models: list[str]
) -> tuple[Context, list[str]]:
    """The Context a thread was run with, changed only where options say so.

    Returns the Context and one line per setting changed, for the person to see.
    """
    before = context_from(settings)
    changes = {k: v for k, v in overrides.items() if v is not None}
    workers_file = str(changes.get("workers_file") or before.workers_file)
    for key, value in model_overrides(models, workers_file).items():
        if key == "worker_models":
            value = {**before.worker_models, **value}
        changes[key] = value
    ctx = context_from(settings, **changes)
    registry_of(ctx.workers_file)  # edited since, and broken: say so before going on
    check_models(ctx)
    check_web_search(ctx)
    said = [
        f"{key}: {getattr(before, key)!r} -> {getattr(ctx, key)!r}"
        for key in changes
        if getattr(before, key) != getattr(ctx, key)
    ]
    return ctx, said


@asynccontextmanager
async def open_app(db: str) -> AsyncIterator[tuple[Any, BaseStore]]:
    """The graph compiled with the checkpointer and store of `db`.

    Raises:
        UsageError: the database cannot be opened (unreachable server, unwritable path).
    """
    from foreman import build_graph
    from foreman.checkpointers import open_persistence

    async with opened_database(db, open_persistence(check_db(db))) as (saver, store):
        yield build_graph().compile(checkpointer=saver, store=store, name="foreman"), store


@asynccontextmanager
async def opened_database(db: str, opening: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter `opening` (a saver or store on `db`); failing to open it is a `UsageError`.

    Raises:
        UsageError: the database cannot be opened (unreachable server, unwritable path).
    """
    import sqlite3

    async with AsyncExitStack() as stack:
        try:
            opened = await stack.enter_async_context(opening)
        except Exception as exc:
            if not isinstance(exc, (OSError, sqlite3.Error, *_psycopg_errors())):
                raise
            raise UsageError(f"cannot open the database {redact(db)}: {_one_line(exc)}") from exc
        yield opened


def _psycopg_errors() -> tuple[type[BaseException], ...]:
    """The error psycopg raises, if a PostgreSQL database brought it in (postgres extra)."""
    psycopg = sys.modules.get("psycopg")
    return (psycopg.Error,) if psycopg is not None else ()


def _one_line(exc: BaseException) -> str:
    return redact(" ".join(str(exc).split()) or type(exc).__name__)


def execute(coro: Any, thread: str) -> None:
    """Run a command's coroutine; turn errors into one line and an exit code.

    Tracebacks only with `--debug`: a person needs what failed and what to do.
    """
    from langgraph.errors import GraphRecursionError

    from foreman.core.models import ModelConfigError, ProviderError, StructuredOutputError

    resume = f"foreman resume {thread}"
    try:
        code = asyncio.run(coro)
    except typer.Exit:
        raise
    except (UsageError, MissingExtra) as exc:
        err.print(f"[red]error:[/] {escape(redact(str(exc)))}", highlight=False)
        code = EXIT_USAGE
    except ModelConfigError as exc:
        err.print(f"[red]configuration error:[/] {escape(redact(str(exc)))}", highlight=False)
        code = EXIT_USAGE
    except ThreadBusy as exc:
        err.print(f"[red]busy:[/] {exc}", highlight=False)
        code = EXIT_BUSY
    except KeyboardInterrupt:
        err.print(f"\n[yellow]Interrupted.[/] Progress is checkpointed: {resume}")
        code = 130
    except ProviderError as exc:
        _debug_trace(exc)
        err.print(f"[red]provider failed:[/] {escape(str(exc))}", highlight=False)
        err.print(f"Nothing finished is lost; when it is fixed: {resume}", highlight=False)
        code = EXIT_FAILED
    except StructuredOutputError as exc:
        _debug_trace(exc)
        err.print(f"[red]model answer unusable:[/] {escape(str(exc))}", highlight=False)
        err.print(f"Resume, perhaps with another model (--model ROLE=...): {resume}")
        code = EXIT_FAILED
    except GraphRecursionError as exc:
        err.print(f"[red]error:[/] the run did not converge ({exc}); foreman show {thread}")
        code = EXIT_FAILED
    except Exception as exc:  # anything else: one line, the thread stays resumable
        _debug_trace(exc)
        err.print(f"[red]error:[/] {type(exc).__name__}: {escape(_one_line(exc))}", highlight=False)
        hint = "" if _debug["on"] else " (--debug shows the traceback)"
        err.print(f"The thread keeps its last checkpoint: {resume}{hint}", highlight=False)
        code = EXIT_FAILED
    raise typer.Exit(code)


def _debug_trace(exc: BaseException) -> None:
    if _debug["on"]:
        err.print(redact("".join(traceback.format_exception(exc))), highlight=False, markup=False)


async def require_run(app_graph: Any, db: str, thread: str) -> None:
    """Refuse, as bad input, a thread id the database has no run for."""
    if not (await app_graph.aget_state(run_config(thread))).values:
        raise UsageError(f"no run with thread id {thread!r} in {redact(db)}")
