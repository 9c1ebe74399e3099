"""`foreman run` and `foreman resume`: drive a run with live progress to its end or a question."""

from __future__ import annotations

import os
import re
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
from foreman.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_ANSWERED,
    EXIT_OK,
    EXIT_WAITING,
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
    make_context,
    open_app,
    remove_run_folder,
    resumed_context,
    run_config,
    run_folder,
    say,
    thread_settings,
)
from foreman.display import Progress
from foreman.examples import EXAMPLES
from foreman.locks import thread_lock
from foreman.questions import (
    UsageError,
    ask_in_terminal,
    pending_interrupts,
    print_interrupts,
    resume_value,
)
from graph import audit
from graph.context import Context
from graph.models import ModelConfigError
from graph.redact import redact
from graph.text import clean_text

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

MaxParallel = Annotated[int | None, typer.Option(min=1, help="Subtasks running at once (≥ 1).")]
MaxTokens = Annotated[int | None, typer.Option(min=0, help="Token budget (0: none).")]
MaxCost = Annotated[float | None, typer.Option(min=0.0, help="Cost budget in USD (0: none).")]
Quiet = Annotated[bool, typer.Option(help="No progress display.")]


async def write_audit(
    app_graph: Any, store: BaseStore, thread: str, stopped: str | None = None
) -> Path:
    """Write the run's audit.json, audit.md and answer.md under its run folder.

    `stopped` says why the run stopped before its end (a provider failure), if it did.
    """
    values = await housekeeping.full_values(app_graph, store, thread)
    if stopped:
        values["stopped"] = stopped
    folder = run_folder(thread)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audit.json").write_text(redact(audit.to_json(values)), encoding="utf-8")
    (folder / "audit.md").write_text(redact(audit.to_markdown(values)), encoding="utf-8")
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
    for tid in gone:
        remove_run_folder(tid)
    if gone:
        say(f"expired {len(gone)} thread(s) older than {ttl} (FOREMAN_THREAD_TTL)")


async def _start(
    db: str, thread: str, payload: dict[str, Any], ctx: Context, opts: dict[str, Any]
) -> int:
    async with open_app(db) as (app_graph, store), thread_lock(db, thread):
        if (await app_graph.aget_state(run_config(thread))).values:
            raise UsageError(
                f"thread {thread} already has a run: continue it with `foreman resume "
                f"{thread}`, or pick another --thread"
            )
        await _expire_by_ttl(app_graph, store)
        config = run_config(thread, ctx)
        return await stream_run(app_graph, store, thread, payload, ctx, config=config, **opts)


async def _resume(
    db: str,
    thread: str,
    answer: str | None,
    overrides: dict[str, Any],
    models: list[str],
    opts: dict[str, Any],
) -> int:
    async with open_app(db) as (app_graph, store), thread_lock(db, thread):
        snapshot = await app_graph.aget_state(run_config(thread))
        if not snapshot.values and not snapshot.next:
            raise UsageError(f"no run with thread id {thread!r} in {redact(db)}")
        values = snapshot.values
        pending = pending_interrupts(snapshot)
        # `next` omits tasks whose writes were saved before a crash; `tasks` has them.
        if not snapshot.next and not snapshot.tasks and not pending:
            status = values.get("status")
            if status in ("done", "over_budget", "partial", "unanswered"):
                say(f"Run {thread} has already finished ({status}).")
                return exit_code(str(status))
            err.print(
                f"[red]Run {thread} ended {status}[/]: {values.get('error') or 'no reason kept'}."
                f" Nothing is left to resume; start it again with `foreman run`.",
                highlight=False,
            )
            return EXIT_FAILED
        ctx, changed = resumed_context(thread_settings(snapshot), overrides, models)
        if changed:
            say("resuming with changed settings: " + "; ".join(changed))
        payload: Any = None
        if answer is None and pending:
            print_interrupts(console, thread, pending)
            if not opts["interactive"]:
                return EXIT_WAITING
            answers = {i.id: ask_in_terminal(i.value, console.input) for i in pending}
            if any(a is None for a in answers.values()):
                return EXIT_WAITING
            payload = Command(resume=answers)
        elif answer is not None:
            if not pending:
                raise UsageError(f"run {thread} is not waiting for an answer")
            payload = Command(resume=resume_value(pending, clean_text(answer)))
        return await stream_run(app_graph, store, thread, payload, ctx, **opts)


async def stream_run(
    app_graph: Any,
    store: BaseStore,
    thread: str,
    payload: Any,
    ctx: Context,
    *,
    quiet: bool,
    interactive: bool,
    durability: str,
    config: dict[str, Any] | None = None,
) -> int:
    """Run the graph with live progress until it ends or waits for an answer.

    Whatever stops it (a provider that fails, Ctrl-C), the audit trail so far is written
    before the error goes on to be reported.
    """
    config = config or run_config(thread)
    while True:
        progress = Progress(console if not quiet else Console(quiet=True))
        try:
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
        except BaseException as exc:
            why = redact(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
            folder = await write_audit(app_graph, store, thread, stopped=why)
            err.print(f"Audit trail so far: {folder}/audit.md", highlight=False)
            raise
        config = run_config(thread)  # after a fork, go on from the thread's head
        snapshot = await app_graph.aget_state(config)
        values = snapshot.values
        folder = await write_audit(app_graph, store, thread)
        pending = pending_interrupts(snapshot)
        if not pending:
            break
        print_interrupts(console, thread, pending)
        if not interactive:
            say(f"Audit trail so far: {folder}/audit.md")
            return EXIT_WAITING
        answers = {intr.id: ask_in_terminal(intr.value, console.input) for intr in pending}
        if any(a is None for a in answers.values()):
            say(f"Left paused. Audit trail so far: {folder}/audit.md")
            return EXIT_WAITING
        payload = Command(resume=answers)
    console.rule("[bold]Answer")
    console.print(Markdown(values.get("answer") or "(no answer)"))
    total = audit.total_usage(values)
    console.rule()
    say(
        f"status [bold]{values.get('status')}[/] · thread {thread} · "
        f"{total['input_tokens']}+{total['output_tokens']} tokens · ${total['cost_usd']:.4f}"
    )
    say(f"Audit trail: {folder}/audit.md and audit.json (also: foreman show {thread})")
    if values.get("error"):
        err.print(f"[red]error:[/] {values['error']}", highlight=False)
    return exit_code(str(values.get("status")))


def exit_code(status: str) -> int:
    """The exit code of a run that ended with `status`."""
    if status in ("done", "over_budget"):
        return EXIT_OK
    return EXIT_NOT_ANSWERED if status in ("partial", "unanswered") else EXIT_FAILED


def _note_unused_judge(ctx: Context, models: list[str]) -> None:
    if not ctx.judge and any(m.partition("=")[0].strip() == "validator" for m in models):
        err.print(
            "[yellow]note:[/] --model validator=... has no effect without --judge "
            "(the validator model is the judge)"
        )


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
    sender: Annotated[
        str | None,
        typer.Option(
            help="Verified email of the person the request is from (customer service): only "
            "that account's data is read, never an address written in the request."
        ),
    ] = None,
    review_plan: Annotated[
        bool,
        typer.Option(
            "--review-plan", help="Pause after planning to approve, edit or reject the plan."
        ),
    ] = False,
    db: DbOption = None,
    model: ModelOption = None,
    corpus: Annotated[
        Path | None, typer.Option(help="Folder of .md/.txt documents for the research worker.")
    ] = None,
    judge: Annotated[
        bool, typer.Option(help="Also check results with the validator model.")
    ] = False,
    max_parallel: MaxParallel = None,
    max_subtasks: Annotated[int | None, typer.Option(min=1, help="Largest plan accepted.")] = None,
    max_tokens: MaxTokens = None,
    max_cost: MaxCost = None,
    quiet: Quiet = False,
    ask: Annotated[
        bool,
        typer.Option(
            help="Ask pending questions in the terminal (default: when stdin is a terminal)."
        ),
    ] = sys.stdin.isatty(),
    durability: DurabilityOption = "sync",
) -> None:
    """Plan and run a request; shows live progress, then the answer and its audit trail.

    Settings given here stay with the run: `foreman resume` and `foreman rerun` go on with
    them unless told otherwise.
    """
    if example is not None:
        if example not in EXAMPLES:
            raise fail(f"no example {example!r}; try: {', '.join(EXAMPLES)}")
        request = request or EXAMPLES[example].request
        sender = sender or EXAMPLES[example].sender or None
        console.print(f"example [bold]{example}[/]: {EXAMPLES[example].pattern}")
    if not request or not clean_text(request).strip():
        raise fail("give a request, or --example NAME (see `foreman examples`)")
    thread = thread or uuid.uuid4().hex[:12]
    db = checked(db, thread)
    check_durability(durability)
    if corpus is not None and not corpus.is_dir():
        raise fail(f"corpus folder not found: {corpus}")
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
        raise fail(str(exc)) from exc
    except ModelConfigError as exc:
        raise fail(f"configuration error: {redact(str(exc))}") from exc
    if (
        example is not None
        and not EXAMPLES[example].offline
        and "offline"
        in (
            ctx.planner_model.split(":")[0],
            ctx.model_for_worker("code").split(":")[0],
        )
    ):
        raise fail(
            f"the {example} example needs a model: offline mode does not write code. Give "
            "one with --model planner=PROVIDER:MODEL --model worker=PROVIDER:MODEL (README, "
            "Providers); nothing was run"
        )
    _note_unused_judge(ctx, model or [])
    say(
        f"thread [bold]{thread}[/] · planner {ctx.planner_model} · workers "
        f"{ctx.worker_model} · db {redact(db)}"
    )
    payload = {"request": clean_text(request)}
    if sender:
        if not EMAIL.fullmatch(sender.strip()):
            raise fail(f"--sender must be an email address, got {sender!r}")
        payload["sender"] = sender.strip().lower()
    opts = {"quiet": quiet, "interactive": ask, "durability": durability}
    execute(_start(db, thread, payload, ctx, opts), thread)


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
    model: ModelOption = None,
    max_parallel: MaxParallel = None,
    max_tokens: MaxTokens = None,
    max_cost: MaxCost = None,
    quiet: Quiet = False,
    ask: Annotated[
        bool,
        typer.Option(
            help="Ask further questions in the terminal (default: when stdin is a terminal)."
        ),
    ] = sys.stdin.isatty(),
    durability: DurabilityOption = "sync",
) -> None:
    """Continue a paused, interrupted or crashed run from its last checkpoint.

    The run goes on with the settings it was started with (models, judge, budgets, corpus,
    max_parallel, review_plan). `--model` and the budget options change them from here on,
    and the change is printed and kept in the audit trail.
    """
    db = checked(db, thread)
    check_durability(durability)
    overrides = {
        "max_parallel": max_parallel,
        "max_total_tokens": max_tokens,
        "max_cost_usd": max_cost,
    }
    opts = {"quiet": quiet, "interactive": ask, "durability": durability}
    execute(_resume(db, thread, answer, overrides, model or [], opts), thread)
