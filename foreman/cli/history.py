"""`foreman threads|show|rerun|delete|expire`: list, inspect, fork and clean up past runs."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown

from foreman import threads as housekeeping
from foreman.cli.common import (
    EXIT_USAGE,
    DbOption,
    DurabilityOption,
    ModelOption,
    app,
    check_durability,
    checked,
    console,
    err,
    execute,
    fail,
    open_app,
    remove_run_folder,
    require_run,
    resumed_context,
    say,
    thread_settings,
)
from foreman.cli.running import stream_run
from foreman.locks import thread_lock
from foreman.questions import UsageError
from foreman.rerun import RerunError, find_base, fork_for_rerun
from graph import audit
from graph.redact import redact


async def _threads(db: str, limit: int) -> list[housekeeping.ThreadInfo]:
    async with open_app(db) as (app_graph, _store):
        return await housekeeping.list_threads(app_graph, app_graph.checkpointer, limit)


@app.command()
def threads(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """List runs with their status and last update, newest first."""
    from rich.table import Table

    rows = _run_or_exit(_threads(checked(db), limit))
    table = Table("thread", "updated", "status", "request")
    for column in table.columns[:3]:  # ids and statuses whole; the request gives way
        column.no_wrap = True
    table.columns[3].overflow = "ellipsis"
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.updated_at))
        table.add_row(row.thread_id, when, row.status, row.request[:70])
    console.print(table)


def _run_or_exit(coro: Any) -> Any:
    """Run a read-only command's coroutine; a usage error is a message and exit 2."""
    try:
        return asyncio.run(coro)
    except UsageError as exc:
        raise fail(redact(str(exc))) from exc


async def _delete(db: str, thread_ids: list[str]) -> None:
    async with open_app(db) as (app_graph, store):
        for tid in thread_ids:
            await require_run(app_graph, db, tid)
        for tid in thread_ids:
            async with thread_lock(db, tid):
                dropped = await housekeeping.delete_thread(app_graph.checkpointer, store, tid)
            files = ", its audit files" if remove_run_folder(tid) else ""
            say(f"deleted {tid} ({dropped} stored outputs no other thread used{files})")


@app.command()
def delete(
    thread: Annotated[list[str], typer.Argument(help="Thread id(s) to delete.")],
    db: DbOption = None,
) -> None:
    """Delete runs: their checkpoints, the stored outputs no other run uses, their audit files."""
    execute(_delete(checked(db, *thread), thread), thread[0])


def _seconds(age: str, option: str) -> float:
    """An age option in seconds; a bad one is a usage error."""
    try:
        return housekeeping.parse_age(age)
    except ValueError as exc:
        err.print(f"[red]error:[/] {option}: {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


async def _expire(db: str, max_age_s: float, dry_run: bool) -> list[str]:
    async with open_app(db) as (app_graph, store):
        saver = app_graph.checkpointer
        if dry_run:
            return await housekeeping.old_threads(saver, max_age_s)
        gone = await housekeeping.expire_threads(saver, store, max_age_s)
        for tid in gone:
            remove_run_folder(tid)
        return gone


@app.command()
def expire(
    older_than: Annotated[
        str | None,
        typer.Option(
            help="Age like 30m, 12h, 7d, 2w (default: $FOREMAN_THREAD_TTL). Runs whose last "
            "checkpoint is older are deleted."
        ),
    ] = None,
    db: DbOption = None,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be deleted.")] = False,
) -> None:
    """Delete runs older than a TTL, with their audit files.

    With FOREMAN_THREAD_TTL set, `run` does this first.
    """
    age = older_than or os.environ.get("FOREMAN_THREAD_TTL", "")
    if not age:
        err.print("[red]error:[/] give --older-than AGE (e.g. 7d) or set FOREMAN_THREAD_TTL")
        raise typer.Exit(EXIT_USAGE)
    max_age = _seconds(age, "--older-than")
    gone = _run_or_exit(_expire(checked(db), max_age, dry_run))
    verb = "would delete" if dry_run else "deleted"
    say(f"{verb} {len(gone)} run(s) older than {age}: {' '.join(gone) or '-'}")


async def _gc(db: str, grace_s: float, dry_run: bool) -> dict[str, int]:
    async with open_app(db) as (app_graph, store):
        saver = app_graph.checkpointer
        return await housekeeping.collect_garbage(saver, store, grace_s, dry_run)


@app.command()
def gc(
    grace: Annotated[
        str,
        typer.Option(
            help="Spare runs that stored an output this recently (a run with --durability "
            "exit has no checkpoint until it ends)."
        ),
    ] = "1d",
    db: DbOption = None,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be dropped.")] = False,
) -> None:
    """Drop stored outputs left by runs whose checkpoints another saver deleted.

    `foreman delete`, `expire`, and a LangGraph server on Foreman's savers clean up as they
    delete; a server with its own savers (Aegra) deletes checkpoints only.
    """
    grace_s = _seconds(grace, "--grace")
    gone = _run_or_exit(_gc(checked(db), grace_s, dry_run))
    if dry_run:
        say(f"{len(gone)} deleted run(s) left stored outputs: {' '.join(gone) or '-'}")
        return
    dropped = sum(gone.values())
    say(f"dropped {dropped} stored output(s) of {len(gone)} deleted run(s)")


async def _values(db: str, thread: str) -> dict[str, Any]:
    async with open_app(db) as (app_graph, store):
        values = await housekeeping.full_values(app_graph, store, thread)
        if not values["checkpoints"]:
            raise UsageError(f"no run with thread id {thread!r} in {db}")
        return values


@app.command()
def show(
    thread: Annotated[str, typer.Argument(help="Thread id of the run.")],
    db: DbOption = None,
    format: Annotated[
        str, typer.Option(help="text (rendered, long outputs shortened), md or json (whole).")
    ] = "text",
    out: Annotated[Path | None, typer.Option(help="Write the md/json export to this file.")] = None,
) -> None:
    """Show a run's full history, or export it as Markdown or JSON.

    Plan versions, every attempt (input, output, verdict, model, tokens, cost, time), usage,
    events, the answer with the sources of its statements, and the checkpoints.
    """
    if format not in ("text", "md", "json"):
        err.print("[red]error:[/] --format must be text, md or json")
        raise typer.Exit(EXIT_USAGE)
    values = _run_or_exit(_values(checked(db, thread), thread))
    if format == "text":
        console.print(Markdown(audit.to_markdown(values, max_output_chars=1500)))
        return
    text = audit.to_json(values) + "\n" if format == "json" else audit.to_markdown(values)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        say(f"wrote {out}")


async def _rerun(
    db: str,
    thread: str,
    subtask: str,
    checkpoint: str | None,
    models: list[str],
    opts: dict[str, Any],
) -> int:
    async with open_app(db) as (app_graph, store), thread_lock(db, thread):
        await require_run(app_graph, db, thread)
        try:
            fork = await find_base(app_graph, thread, subtask, checkpoint)
        except RerunError as exc:
            raise UsageError(str(exc)) from exc
        ctx, changed = resumed_context(thread_settings(fork.base), {}, models)
        base_id = fork.base.config["configurable"]["checkpoint_id"]
        say(f"forking {thread} at checkpoint {base_id}; running again: {', '.join(fork.subtasks)}")
        if changed:
            say("with changed settings: " + "; ".join(changed))
        await fork_for_rerun(app_graph, fork, why=" ".join(models))
        return await stream_run(app_graph, store, thread, None, ctx, **opts)


@app.command()
def rerun(
    thread: Annotated[str, typer.Argument(help="Thread id of the run.")],
    subtask: Annotated[str, typer.Argument(help="Subtask id to run again.")],
    model: ModelOption = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="Fork this checkpoint (default: the latest before synthesis; for a run that "
            "never got there, its latest checkpoint)."
        ),
    ] = None,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    durability: DurabilityOption = "sync",
) -> None:
    """Time travel: fork a run and run one subtask again, then re-synthesize.

    The fork starts at a past checkpoint (default: the latest before synthesis, or the
    latest of a paused run). The subtask and those that used its output run again, with the
    run's own settings unless `--model` changes them; siblings keep their results; the
    original branch stays in the thread's history.
    """
    db = checked(db, thread)
    check_durability(durability)
    opts = {"quiet": quiet, "interactive": False, "durability": durability}
    execute(_rerun(db, thread, subtask, checkpoint, model or [], opts), thread)
