"""Driving a run for `foreman run`, `resume` and `rerun`: live progress to its end or a question.

Imported when a command runs (it brings LangGraph and the graph), not for `foreman --help`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore
from langgraph.types import Command
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape

from foreman import housekeeping
from foreman.ages import parse_age
from foreman.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_ANSWERED,
    EXIT_OK,
    EXIT_WAITING,
    console,
    err,
    open_app,
    remove_run_folder,
    resumed_context,
    run_config,
    run_folder,
    say,
    thread_settings,
)
from foreman.core.context import Context
from foreman.core.redact import redact
from foreman.core.text import clean_text
from foreman.display import Progress
from foreman.errors import UsageError
from foreman.locks import thread_lock
from foreman.orchestration import audit
from foreman.questions import (
    ask_in_terminal,
    pending_interrupts,
    print_interrupts,
    resume_value,
)


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
        max_age = parse_age(ttl)
    except ValueError as exc:
        raise UsageError(f"FOREMAN_THREAD_TTL: {exc}") from exc
    gone = await housekeeping.expire_threads(app_graph.checkpointer, store, max_age)
    for tid in gone:
        remove_run_folder(tid)
    if gone:
        say(f"expired {len(gone)} thread(s) older than {ttl} (FOREMAN_THREAD_TTL)")


async def start(
    db: str, thread: str, payload: dict[str, Any], ctx: Context, opts: dict[str, Any]
) -> int:
    """Start a new run on `thread` (refused if it has one), then drive it."""
    async with open_app(db) as (app_graph, store), thread_lock(db, thread):
        if (await app_graph.aget_state(run_config(thread))).values:
            raise UsageError(
                f"thread {thread} already has a run: continue it with `foreman resume "
                f"{thread}`, or pick another --thread"
            )
        await _expire_by_ttl(app_graph, store)
        config = run_config(thread, ctx)
        return await stream_run(app_graph, store, thread, payload, ctx, config=config, **opts)


async def resume_run(
    db: str,
    thread: str,
    answer: str | None,
    overrides: dict[str, Any],
    models: list[str],
    opts: dict[str, Any],
) -> int:
    """Go on with a thread: answer its question, or continue it after a stop."""
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
        + cache_savings(values)
    )
    say(f"Audit trail: {folder}/audit.md and audit.json (also: foreman show {thread})")
    if values.get("error"):
        err.print(f"[red]error:[/] {escape(str(values['error']))}", highlight=False)
    return exit_code(str(values.get("status")))


def cache_savings(values: dict[str, Any]) -> str:
    """` · N reused from the cache (saved $X)` when subtasks came from the cache, else ''."""
    hits = [
        a
        for record in (values.get("results") or {}).values()
        for a in record.get("attempts", [])
        if a.get("cached")
    ]
    if not hits:
        return ""
    saved = sum(
        float((a.get("cached_from") or {}).get("usage", {}).get("cost_usd", 0.0)) for a in hits
    )
    return f" · {len(hits)} reused from the cache (saved ${saved:.4f})"


def exit_code(status: str) -> int:
    """The exit code of a run that ended with `status`."""
    if status in ("done", "over_budget"):
        return EXIT_OK
    return EXIT_NOT_ANSWERED if status in ("partial", "unanswered") else EXIT_FAILED
