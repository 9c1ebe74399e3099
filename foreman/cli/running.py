"""`foreman run` and `foreman resume`: drive a run with live progress to its end or a question.

The work is in `foreman.cli.drive`, imported when a command runs.
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer

from foreman.cli.common import (
    DbOption,
    DurabilityOption,
    ModelOption,
    WorkersFileOption,
    app,
    check_durability,
    checked,
    console,
    err,
    execute,
    fail,
    make_context,
    say,
)
from foreman.core.context import Context
from foreman.core.extras import MissingExtra, require
from foreman.core.redact import redact
from foreman.core.text import clean_text
from foreman.errors import UsageError
from foreman.examples import EXAMPLES

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

MaxParallel = Annotated[int | None, typer.Option(min=1, help="Subtasks running at once (≥ 1).")]
MaxTokens = Annotated[int | None, typer.Option(min=0, help="Token budget (0: none).")]
MaxCost = Annotated[float | None, typer.Option(min=0.0, help="Cost budget in USD (0: none).")]
Quiet = Annotated[bool, typer.Option(help="No progress display.")]


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
    workers_file: WorkersFileOption = None,
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
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Neither reuse results of earlier runs nor keep this run's for later ones.",
        ),
    ] = False,
    refresh_cache: Annotated[
        bool,
        typer.Option(
            "--refresh-cache",
            help="Run every subtask even when an earlier run's result could be reused, and "
            "keep the new results for later runs (README, Run history and the cache).",
        ),
    ] = False,
) -> None:
    """Plan and run a request; shows live progress, then the answer and its audit trail.

    Settings given here stay with the run: `foreman resume` and `foreman rerun` go on with
    them unless told otherwise.
    """
    if example is not None:
        if example not in EXAMPLES:
            raise fail(f"no example {example!r}; try: {', '.join(EXAMPLES)}")
        if EXAMPLES[example].extra:
            try:
                require(f"the {example} example", EXAMPLES[example].extra)
            except MissingExtra as exc:
                raise fail(str(exc)) from exc
        request = request or EXAMPLES[example].request
        sender = sender or EXAMPLES[example].sender or None
        console.print(f"example [bold]{example}[/]: {EXAMPLES[example].pattern}")
    if not request or not clean_text(request).strip():
        raise fail("give a request, or --example NAME (see `foreman examples`)")
    if no_cache and refresh_cache:
        raise fail("give --no-cache or --refresh-cache, not both")
    thread = thread or uuid.uuid4().hex[:12]
    db = checked(db, thread)
    check_durability(durability)
    if corpus is not None and not corpus.is_dir():
        raise fail(f"corpus folder not found: {corpus}")
    if corpus is not None:
        from foreman.workers.tools.loaders import check_folder

        try:
            check_folder(corpus)
        except MissingExtra as exc:
            raise fail(str(exc)) from exc
    from foreman.core.models import ModelConfigError  # the models come in with the run

    try:
        ctx = make_context(
            {
                "review_plan": review_plan,
                "judge": judge,
                "max_parallel": max_parallel,
                "max_subtasks": max_subtasks,
                "max_total_tokens": max_tokens,
                "max_cost_usd": max_cost,
                "cache": "off" if no_cache else "refresh" if refresh_cache else None,
                "corpus_dir": str(corpus.resolve()) if corpus else None,
                # absolute: the run's settings keep it, and a resume may start elsewhere
                "workers_file": str(workers_file.resolve()) if workers_file else None,
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
    from foreman.cli.drive import start

    execute(start(db, thread, payload, ctx, opts), thread)


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
    from foreman.cli.drive import resume_run

    execute(resume_run(db, thread, answer, overrides, model or [], opts), thread)
