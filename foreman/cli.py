"""The `foreman` command: run, resume, list and inspect orchestrated runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from langgraph.errors import GraphRecursionError
from langgraph.store.base import BaseStore
from langgraph.types import Command
from rich.console import Console
from rich.markdown import Markdown

from foreman import threads as housekeeping
from foreman.checkpointers import default_db, open_persistence
from foreman.display import Progress
from foreman.examples import EXAMPLES
from foreman.questions import (
    UsageError,
    ask_in_terminal,
    pending_interrupts,
    print_interrupts,
    resume_value,
)
from foreman.rerun import RerunError, find_base, fork_for_rerun
from graph import audit
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


def _check_durability(durability: str) -> None:
    """Refuse an unknown `--durability` before anything is opened."""
    if durability not in DURABILITY:
        err.print(f"[red]error:[/] --durability must be one of {', '.join(DURABILITY)}")
        raise typer.Exit(EXIT_USAGE)


def _home() -> Path:
    return Path(os.environ.get("FOREMAN_HOME", ".foreman"))


def _config(thread: str, ctx: Context | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}, "recursion_limit": 200}
    if ctx is not None:
        config["metadata"] = {"foreman_context": dataclasses.asdict(ctx)}
    return config


def _context(overrides: dict[str, Any], models: list[str]) -> Context:
    for item in models:
        role, sep, spec = item.partition("=")
        if not sep or not spec:
            raise UsageError(f"--model expects ROLE=PROVIDER:MODEL, got {item!r}")
        if role in ROLES:
            overrides[ROLES[role]] = spec
        else:  # a worker name: per-worker override
            overrides.setdefault("worker_models", {})[role] = spec
    return Context(**{k: v for k, v in overrides.items() if v is not None})


async def _saved_context(app_graph: Any, config: dict[str, Any]) -> Context:
    """The Context a thread was started with (kept in its checkpoint metadata)."""
    async for snap in app_graph.aget_state_history(config, limit=50):
        saved = (snap.metadata or {}).get("foreman_context")
        if saved:
            return Context(**saved)
    return Context()


async def _write_audit(app_graph: Any, store: BaseStore, thread: str) -> Path:
    values = await housekeeping.full_values(app_graph, store, thread)
    folder = _home() / "runs" / thread
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audit.json").write_text(audit.to_json(values), encoding="utf-8")
    (folder / "audit.md").write_text(audit.to_markdown(values), encoding="utf-8")
    if values.get("answer"):
        (folder / "answer.md").write_text(values["answer"], encoding="utf-8")
    return folder


@asynccontextmanager
async def _open_app(db: str) -> AsyncIterator[tuple[Any, BaseStore]]:
    """The graph compiled with the checkpointer and store of `db`."""
    from graph import build_graph

    async with open_persistence(db) as (saver, store):
        yield build_graph().compile(checkpointer=saver, store=store, name="foreman"), store


async def _expire_by_ttl(app_graph: Any, store: BaseStore) -> None:
    """Delete threads older than $FOREMAN_THREAD_TTL (e.g. 30d), when it is set."""
    ttl = os.environ.get("FOREMAN_THREAD_TTL", "").strip()
    if not ttl:
        return
    try:
        max_age = housekeeping.parse_age(ttl)
    except ValueError as exc:
        raise UsageError(f"FOREMAN_THREAD_TTL: {exc}") from exc
    gone = await housekeeping.expire_threads(app_graph.checkpointer, store, max_age)
    if gone:
        console.print(f"expired {len(gone)} thread(s) older than {ttl} (FOREMAN_THREAD_TTL)")


async def _drive(
    db: str,
    thread: str,
    payload: Any,
    ctx: Context | None,
    quiet: bool,
    interactive: bool = False,
    durability: str = "sync",
) -> int:
    async with _open_app(db) as (app_graph, store):
        config = _config(thread)
        if ctx is None:
            snapshot = await app_graph.aget_state(config)
            if not snapshot.values and not snapshot.next:
                raise UsageError(f"no run with thread id {thread!r} in {db}")
            pending = pending_interrupts(snapshot)
            if payload is None and pending:
                print_interrupts(console, thread, pending)
                answers = (
                    {i.id: ask_in_terminal(i.value, console.input) for i in pending}
                    if interactive
                    else {}
                )
                if not answers or any(a is None for a in answers.values()):
                    return EXIT_WAITING
                payload = json.dumps(answers[pending[0].id] if len(pending) == 1 else answers)
            # `next` omits tasks whose writes were saved before a crash; `tasks` has them.
            if not snapshot.next and not snapshot.tasks and not pending:
                console.print(
                    f"Run {thread} has already finished ({snapshot.values.get('status')})."
                )
                return EXIT_OK
            if payload is not None:
                if not pending:
                    raise UsageError(f"run {thread} is not waiting for an answer")
                payload = Command(resume=resume_value(pending, payload))
            ctx = await _saved_context(app_graph, config)
        else:
            await _expire_by_ttl(app_graph, store)
            config = _config(thread, ctx)
        return await _stream(
            app_graph, store, thread, payload, ctx, config, quiet, interactive, durability
        )


async def _stream(
    app_graph: Any,
    store: BaseStore,
    thread: str,
    payload: Any,
    ctx: Context,
    config: dict[str, Any],
    quiet: bool,
    interactive: bool,
    durability: str,
) -> int:
    """Run the graph with live progress until it ends or waits for an answer."""
    while True:
        progress = Progress(console if not quiet else Console(quiet=True))
        with progress:
            async for _ns, mode, chunk in app_graph.astream(
                payload,
                config,
                context=ctx,
                stream_mode=["custom", "updates"],
                subgraphs=True,
                durability=durability,
            ):
                if mode == "custom" and isinstance(chunk, dict):
                    progress.handle(chunk)
        snapshot = await app_graph.aget_state(_config(thread))
        values = snapshot.values
        folder = await _write_audit(app_graph, store, thread)
        pending = pending_interrupts(snapshot)
        if not pending:
            break
        print_interrupts(console, thread, pending)
        if not interactive:
            console.print(f"Audit trail so far: {folder}/audit.md")
            return EXIT_WAITING
        answers = {intr.id: ask_in_terminal(intr.value, console.input) for intr in pending}
        if any(a is None for a in answers.values()):
            console.print(f"Left paused. Audit trail so far: {folder}/audit.md")
            return EXIT_WAITING
        payload = Command(resume=answers)
    console.rule("[bold]Answer")
    console.print(Markdown(values.get("answer") or "(no answer)"))
    total = audit.total_usage(values)
    console.rule()
    console.print(
        f"status [bold]{values.get('status')}[/] · thread {thread} · "
        f"{total['input_tokens']}+{total['output_tokens']} tokens · ${total['cost_usd']:.4f}"
    )
    console.print(f"Audit trail: {folder}/audit.md and audit.json (also: foreman show {thread})")
    if values.get("error"):
        err.print(f"[red]error:[/] {values['error']}")
    return EXIT_OK if values.get("status") in ("done", "over_budget") else EXIT_FAILED


def _execute(coro: Any, thread: str) -> None:
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


@app.command()
def run(
    request: Annotated[
        str | None, typer.Argument(help="What you want done, in plain language.")
    ] = None,
    example: Annotated[
        str | None,
        typer.Option(help="Run a named example instead: see `foreman examples`."),
    ] = None,
    thread: Annotated[str | None, typer.Option(help="Thread id (default: a new one).")] = None,
    review_plan: Annotated[
        bool,
        typer.Option(
            "--review-plan", help="Pause after planning to approve, edit or reject the plan."
        ),
    ] = False,
    db: DbOption = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="ROLE=PROVIDER:MODEL; roles: planner, worker, validator, synthesizer, "
            "or a worker name (research, code, review, data, policy, ...). Repeatable.",
        ),
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="Folder of .md/.txt documents for the research worker.")
    ] = None,
    judge: Annotated[
        bool, typer.Option(help="Also check results with the validator model.")
    ] = False,
    max_parallel: Annotated[int | None, typer.Option(help="Subtasks running at once.")] = None,
    max_subtasks: Annotated[int | None, typer.Option(help="Largest plan accepted.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token budget (0: none).")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Cost budget in USD (0: none).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    ask: Annotated[
        bool,
        typer.Option(
            help="Ask pending questions in the terminal (default: when stdin is a terminal)."
        ),
    ] = sys.stdin.isatty(),
    durability: DurabilityOption = "sync",
) -> None:
    """Plan and run a request; shows live progress, then the answer and its audit trail."""
    if example is not None:
        if example not in EXAMPLES:
            err.print(f"[red]error:[/] no example {example!r}; try: {', '.join(EXAMPLES)}")
            raise typer.Exit(EXIT_USAGE)
        request = request or EXAMPLES[example].request
        console.print(f"example [bold]{example}[/]: {EXAMPLES[example].pattern}")
    if not request:
        err.print("[red]error:[/] give a request, or --example NAME (see `foreman examples`)")
        raise typer.Exit(EXIT_USAGE)
    thread = thread or uuid.uuid4().hex[:12]
    try:
        ctx = _context(
            {
                "review_plan": review_plan,
                "judge": judge,
                "max_parallel": max_parallel,
                "max_subtasks": max_subtasks,
                "max_total_tokens": max_tokens,
                "max_cost_usd": max_cost,
                "corpus_dir": str(corpus.resolve()) if corpus else None,
            },
            model or [],
        )
    except UsageError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    _check_durability(durability)
    if corpus is not None and not corpus.is_dir():
        err.print(f"[red]error:[/] corpus folder not found: {corpus}")
        raise typer.Exit(EXIT_USAGE)
    console.print(
        f"thread [bold]{thread}[/] · planner {ctx.planner_model} · workers "
        f"{ctx.worker_model} · db {db or default_db()}"
    )
    _execute(
        _drive(db or default_db(), thread, {"request": request}, ctx, quiet, ask, durability),
        thread,
    )


@app.command()
def resume(
    thread: Annotated[str, typer.Argument(help="Thread id of the run.")],
    answer: Annotated[
        str | None,
        typer.Option(
            help="JSON answer to the pending question(s); without it a crashed or stopped run "
            "continues, or the pending questions are shown."
        ),
    ] = None,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    ask: Annotated[
        bool,
        typer.Option(
            help="Ask further questions in the terminal (default: when stdin is a terminal)."
        ),
    ] = sys.stdin.isatty(),
    durability: DurabilityOption = "sync",
) -> None:
    """Continue a paused, interrupted or crashed run from its last checkpoint."""
    _check_durability(durability)
    _execute(_drive(db or default_db(), thread, answer, None, quiet, ask, durability), thread)


async def _threads(db: str, limit: int) -> list[housekeeping.ThreadInfo]:
    async with _open_app(db) as (app_graph, _store):
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


async def _require_run(app_graph: Any, db: str, thread: str) -> None:
    """Refuse, as bad input, a thread id the database has no run for."""
    if not (await app_graph.aget_state(_config(thread))).values:
        raise UsageError(f"no run with thread id {thread!r} in {db}")


async def _delete(db: str, thread_ids: list[str]) -> None:
    async with _open_app(db) as (app_graph, store):
        for tid in thread_ids:
            await _require_run(app_graph, db, tid)
        for tid in thread_ids:
            dropped = await housekeeping.delete_thread(app_graph.checkpointer, store, tid)
            console.print(f"deleted {tid} ({dropped} stored outputs no other thread used)")


@app.command()
def delete(
    thread: Annotated[list[str], typer.Argument(help="Thread id(s) to delete.")],
    db: DbOption = None,
) -> None:
    """Delete runs: their checkpoints and the stored outputs no other run uses."""
    _execute(_delete(db or default_db(), thread), thread[0])


async def _expire(db: str, max_age_s: float, dry_run: bool) -> list[str]:
    async with _open_app(db) as (app_graph, store):
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
    try:
        max_age = housekeeping.parse_age(age)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    gone = asyncio.run(_expire(db or default_db(), max_age, dry_run))
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(gone)} run(s) older than {age}: {' '.join(gone) or '-'}")


async def _values(db: str, thread: str) -> dict[str, Any]:
    async with _open_app(db) as (app_graph, store):
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
    async with _open_app(db) as (app_graph, store):
        await _require_run(app_graph, db, thread)
        try:
            fork = await find_base(app_graph, thread, subtask, checkpoint)
        except RerunError as exc:
            raise UsageError(str(exc)) from exc
        saved = await _saved_context(app_graph, dict(fork.base.config))
        ctx = _context(dataclasses.asdict(saved), models)
        base_id = fork.base.config["configurable"]["checkpoint_id"]
        console.print(
            f"forking {thread} at checkpoint {base_id}; running again: {', '.join(fork.subtasks)}"
        )
        await fork_for_rerun(app_graph, fork, why=" ".join(models))
        config = _config(thread, ctx)
        return await _stream(app_graph, store, thread, None, ctx, config, quiet, False, durability)


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
    _check_durability(durability)
    _execute(
        _rerun(db or default_db(), thread, subtask, checkpoint, model or [], quiet, durability),
        thread,
    )


@app.command()
def examples() -> None:
    """List the named examples, one per pattern, and whether offline mode runs them."""
    for name, ex in EXAMPLES.items():
        mode = "offline" if ex.offline else "needs a model"
        console.print(f"[bold]{name}[/] ({mode}): {ex.pattern}\n  {ex.request}\n")


@app.command("graph")
def draw_graph() -> None:
    """Print the graph as a Mermaid diagram (drawn from the compiled graph)."""
    from graph import graph as compiled

    sys.stdout.write(compiled.get_graph().draw_mermaid())


def main() -> None:
    """Entry point of the `foreman` script."""
    app()
