"""`foreman run` and `foreman resume`: drive a run with live progress to its end or a question."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from langgraph.store.base import BaseStore
from langgraph.types import Command
from rich.console import Console
from rich.markdown import Markdown

from foreman import threads as housekeeping
from foreman.checkpointers import default_db
from foreman.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WAITING,
    DbOption,
    DurabilityOption,
    app,
    check_durability,
    console,
    err,
    execute,
    home,
    make_context,
    open_app,
    run_config,
    saved_context,
)
from foreman.display import Progress
from foreman.examples import EXAMPLES
from foreman.questions import (
    UsageError,
    ask_in_terminal,
    pending_interrupts,
    print_interrupts,
    resume_value,
)
from graph import audit
from graph.context import Context


async def write_audit(app_graph: Any, store: BaseStore, thread: str) -> Path:
    """Write the run's audit.json, audit.md and answer.md under its run folder."""
    values = await housekeeping.full_values(app_graph, store, thread)
    folder = home() / "runs" / thread
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audit.json").write_text(audit.to_json(values), encoding="utf-8")
    (folder / "audit.md").write_text(audit.to_markdown(values), encoding="utf-8")
    if values.get("answer"):
        (folder / "answer.md").write_text(values["answer"], encoding="utf-8")
    return folder


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
    async with open_app(db) as (app_graph, store):
        config = run_config(thread)
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
            ctx = await saved_context(app_graph, config)
        else:
            await _expire_by_ttl(app_graph, store)
            config = run_config(thread, ctx)
        return await stream_run(
            app_graph, store, thread, payload, ctx, config, quiet, interactive, durability
        )


async def stream_run(
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
        snapshot = await app_graph.aget_state(run_config(thread))
        values = snapshot.values
        folder = await write_audit(app_graph, store, thread)
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
        ctx = make_context(
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
    check_durability(durability)
    if corpus is not None and not corpus.is_dir():
        err.print(f"[red]error:[/] corpus folder not found: {corpus}")
        raise typer.Exit(EXIT_USAGE)
    console.print(
        f"thread [bold]{thread}[/] · planner {ctx.planner_model} · workers "
        f"{ctx.worker_model} · db {db or default_db()}"
    )
    execute(
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
    check_durability(durability)
    execute(_drive(db or default_db(), thread, answer, None, quiet, ask, durability), thread)
