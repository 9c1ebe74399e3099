"""`foreman threads|show|rerun|delete|expire`: list, inspect, fork and clean up past runs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markdown import Markdown

from foreman import threads as housekeeping
from foreman.checkpointers import default_db
from foreman.cli.common import (
    EXIT_USAGE,
    DbOption,
    DurabilityOption,
    app,
    check_durability,
    console,
    err,
    execute,
    make_context,
    open_app,
    require_run,
    run_config,
    saved_context,
)
from foreman.cli.running import stream_run
from foreman.questions import UsageError
from foreman.rerun import RerunError, find_base, fork_for_rerun
from graph import audit


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

    rows = asyncio.run(_threads(db or default_db(), limit))
    table = Table("thread", "updated", "status", "request")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.updated_at))
        table.add_row(row.thread_id, when, row.status, row.request[:70])
    console.print(table)


async def _delete(db: str, thread_ids: list[str]) -> None:
    async with open_app(db) as (app_graph, store):
        for tid in thread_ids:
            await require_run(app_graph, db, tid)
        for tid in thread_ids:
            dropped = await housekeeping.delete_thread(app_graph.checkpointer, store, tid)
            console.print(f"deleted {tid} ({dropped} stored outputs no other thread used)")


@app.command()
def delete(
    thread: Annotated[list[str], typer.Argument(help="Thread id(s) to delete.")],
    db: DbOption = None,
) -> None:
    """Delete runs: their checkpoints and the stored outputs no other run uses."""
    execute(_delete(db or default_db(), thread), thread[0])


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
        return await housekeeping.expire_threads(saver, store, max_age_s)


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
    """Delete runs older than a TTL. With FOREMAN_THREAD_TTL set, `run` does this first."""
    age = older_than or os.environ.get("FOREMAN_THREAD_TTL", "")
    if not age:
        err.print("[red]error:[/] give --older-than AGE (e.g. 7d) or set FOREMAN_THREAD_TTL")
        raise typer.Exit(EXIT_USAGE)
    max_age = _seconds(age, "--older-than")
    gone = asyncio.run(_expire(db or default_db(), max_age, dry_run))
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(gone)} run(s) older than {age}: {' '.join(gone) or '-'}")


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
    gone = asyncio.run(_gc(db or default_db(), grace_s, dry_run))
    if dry_run:
        console.print(f"{len(gone)} deleted run(s) left stored outputs: {' '.join(gone) or '-'}")
        return
    dropped = sum(gone.values())
    console.print(f"dropped {dropped} stored output(s) of {len(gone)} deleted run(s)")


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
    try:
        values = asyncio.run(_values(db or default_db(), thread))
    except UsageError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    if format == "text":
        console.print(Markdown(audit.to_markdown(values, max_output_chars=1500)))
        return
    text = audit.to_json(values) + "\n" if format == "json" else audit.to_markdown(values)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


async def _rerun(
    db: str,
    thread: str,
    subtask: str,
    checkpoint: str | None,
    models: list[str],
    quiet: bool,
    durability: str,
) -> int:
    async with open_app(db) as (app_graph, store):
        await require_run(app_graph, db, thread)
        try:
            fork = await find_base(app_graph, thread, subtask, checkpoint)
        except RerunError as exc:
            raise UsageError(str(exc)) from exc
        saved = await saved_context(app_graph, dict(fork.base.config))
        ctx = make_context(dataclasses.asdict(saved), models)
        base_id = fork.base.config["configurable"]["checkpoint_id"]
        console.print(
            f"forking {thread} at checkpoint {base_id}; running again: {', '.join(fork.subtasks)}"
        )
        await fork_for_rerun(app_graph, fork, why=" ".join(models))
        config = run_config(thread, ctx)
        return await stream_run(
            app_graph, store, thread, None, ctx, config, quiet, False, durability
        )


@app.command()
def rerun(
    thread: Annotated[str, typer.Argument(help="Thread id of the run.")],
    subtask: Annotated[str, typer.Argument(help="Subtask id to run again.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="ROLE=PROVIDER:MODEL for the rerun, e.g. writer=openai:gpt-4.1 (repeatable).",
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(help="Fork this checkpoint (default: the latest before synthesis)."),
    ] = None,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    durability: DurabilityOption = "sync",
) -> None:
    """Time travel: fork a run and run one subtask again, then re-synthesize.

    The fork starts at a past checkpoint (default: the latest before synthesis). The subtask
    and those that used its output run again; siblings keep their results; the original
    branch stays in the thread's history.
    """
    check_durability(durability)
    execute(
        _rerun(db or default_db(), thread, subtask, checkpoint, model or [], quiet, durability),
        thread,
    )
