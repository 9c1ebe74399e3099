"""`foreman threads|show|rerun|delete|expire`: list, inspect, fork and clean up past runs."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.markdown import Markdown

from foreman.ages import parse_age
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
    opened_database,
    say,
)
from foreman.core.redact import redact
from foreman.errors import UsageError


def _records() -> ModuleType:
    """The commands' work (`foreman.cli.records`), imported when a command runs."""
    from foreman.cli import records

    return records


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


async def _threads(db: str, limit: int) -> list[Any]:
    # The checkpointer alone: no graph, models or workers to import (foreman/listing.py).
    from foreman.listing import list_threads, open_reader

    async with opened_database(db, open_reader(db)) as saver:
        return await list_threads(saver, limit)


def _run_or_exit(coro: Any) -> Any:
    """Run a read-only command's coroutine; a usage error is a message and exit 2."""
    try:
        return asyncio.run(coro)
    except UsageError as exc:
        raise fail(redact(str(exc))) from exc


@app.command()
def delete(
    thread: Annotated[list[str], typer.Argument(help="Thread id(s) to delete.")],
    db: DbOption = None,
) -> None:
    """Delete runs: their checkpoints, the stored outputs no other run uses, their audit files."""
    db = checked(db, *thread)  # refused before the records module (and LangGraph) loads
    execute(_records().delete(db, thread), thread[0])


def _seconds(age: str, option: str) -> float:
    """An age option in seconds; a bad one is a usage error."""
    try:
        return parse_age(age)
    except ValueError as exc:
        err.print(f"[red]error:[/] {option}: {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


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
    db = checked(db)
    gone = _run_or_exit(_records().expire(db, max_age, dry_run))
    verb = "would delete" if dry_run else "deleted"
    say(f"{verb} {len(gone)} run(s) older than {age}: {' '.join(gone) or '-'}")


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
    db = checked(db)
    gone = _run_or_exit(_records().gc(db, grace_s, dry_run))
    if dry_run:
        say(f"{len(gone)} deleted run(s) left stored outputs: {' '.join(gone) or '-'}")
        return
    dropped = sum(gone.values())
    say(f"dropped {dropped} stored output(s) of {len(gone)} deleted run(s)")


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
    from foreman.orchestration import audit

    db = checked(db, thread)
    values = _run_or_exit(_records().values(db, thread))
    if format == "text":
        console.print(Markdown(audit.to_markdown(values, max_output_chars=1500)))
        return
    text = audit.to_json(values) + "\n" if format == "json" else audit.to_markdown(values)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        say(f"wrote {out}")


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
    execute(_records().rerun(db, thread, subtask, checkpoint, model or [], opts), thread)
