"""The `foreman` command: run, resume, list and inspect orchestrated runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from langgraph.errors import GraphRecursionError
from langgraph.types import Command
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markdown import Markdown

from foreman.checkpointers import default_db, open_checkpointer, thread_ids
from foreman.display import Progress
from foreman.examples import EXAMPLES
from graph import audit
from graph.context import Context
from graph.models import ModelConfigError
from graph.review import CLARIFICATION, ESCALATION, PLAN_REVIEW, explain

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3
ROLES = {
    "planner": "planner_model",
    "worker": "worker_model",
    "validator": "validator_model",
    "synthesizer": "synthesizer_model",
}
PAYLOADS: dict[str, TypeAdapter[Any]] = {
    "plan_review": PLAN_REVIEW,
    "clarification": CLARIFICATION,
    "escalation": ESCALATION,
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


class UsageError(Exception):
    """Bad input from the user: printed, exit code 2."""


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


def _write_audit(thread: str, values: dict[str, Any]) -> Path:
    folder = _home() / "runs" / thread
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audit.json").write_text(audit.to_json(values), encoding="utf-8")  # type: ignore[arg-type]
    (folder / "audit.md").write_text(audit.to_markdown(values), encoding="utf-8")  # type: ignore[arg-type]
    if values.get("answer"):
        (folder / "answer.md").write_text(values["answer"], encoding="utf-8")
    return folder


def _interrupts(snapshot: Any) -> list[Any]:
    return list(getattr(snapshot, "interrupts", ()) or ())


def _print_interrupts(thread: str, pending: list[Any]) -> None:
    console.rule("[bold cyan]Waiting for you")
    for intr in pending:
        value = intr.value
        kind = value.get("kind")
        if value.get("error"):
            console.print(f"[red]Previous answer rejected:[/] {value['error']}")
        if kind == "plan_review":
            console.print(f"[bold]Plan v{value.get('version')} to review[/] (interrupt {intr.id}):")
            for sub in value["plan"]["subtasks"]:
                deps = f" ← {', '.join(sub['inputs'])}" if sub["inputs"] else ""
                console.print(
                    f"  {sub['id']} [{sub['worker']}]{deps}: {sub['objective']}",
                    highlight=False,
                    markup=False,
                )
        elif kind == "clarification":
            console.print(f"[bold]{value['subtask']} asks:[/] {value['question']}")
        elif kind == "escalation":
            console.print(
                f"[bold]{value['subtask']} ({value['worker']}) failed:[/] {value['error']}"
            )
        console.print(f"  answer with: {value.get('expected')}", highlight=False, markup=False)
    key = "" if len(pending) == 1 else " (several: a JSON object keyed by subtask id)"
    console.print(f"\nResume: [bold]foreman resume {thread} --answer 'JSON'[/]{key}")


def _resume_value(pending: list[Any], answer: str) -> Any:
    """Parse and check `--answer` against the pending interrupts, before touching the thread."""
    try:
        data = json.loads(answer)
    except json.JSONDecodeError:
        data = answer  # a plain string answers a clarification

    def check(intr: Any, value: Any) -> Any:
        kind = intr.value.get("kind")
        try:
            PAYLOADS[kind].validate_python(value)
        except ValidationError as exc:
            raise UsageError(
                f"answer for {intr.value.get('subtask') or kind} is not valid: {explain(exc)}; "
                f"expected {intr.value.get('expected')}"
            ) from exc
        return value

    if len(pending) == 1:
        return check(pending[0], data)
    if not isinstance(data, dict):
        raise UsageError(
            "several questions are pending: answer with a JSON object keyed by "
            "subtask id (or interrupt id)"
        )
    values = {}
    for intr in pending:
        key = next((k for k in (intr.id, intr.value.get("subtask")) if k in data), None)
        if key is None:
            raise UsageError(f"no answer for {intr.value.get('subtask') or intr.id}")
        values[intr.id] = check(intr, data[key])
    return values


def ask_in_terminal(value: dict[str, Any], read: Callable[[str], str]) -> Any:
    """Ask a person for one interrupt's answer; None leaves the run paused."""
    kind = value.get("kind")
    if kind == "plan_review":
        choice = read("approve / reject / later (edit with foreman resume --answer) [approve]: ")
        choice = choice.strip().lower() or "approve"
        if choice == "approve":
            return {"action": "approve"}
        if choice == "reject":
            return {"action": "reject", "feedback": read("what should change? ").strip() or "?"}
        return None
    if kind == "clarification":
        answer = read(f"answer for {value.get('subtask')} (empty: later): ").strip()
        return {"answer": answer} if answer else None
    if kind == "escalation":
        choice = read(f"{value.get('subtask')}: skip / supply / abort / later [later]: ")
        choice = choice.strip().lower()
        if choice == "skip":
            return {"action": "skip"}
        if choice == "supply":
            return {"action": "supply", "result": read("result text: ").strip() or "(empty)"}
        if choice == "abort":
            return {"action": "abort", "reason": read("reason: ").strip()}
    return None


async def _drive(
    db: str,
    thread: str,
    payload: Any,
    ctx: Context | None,
    quiet: bool,
    interactive: bool = False,
) -> int:
    from graph import build_graph

    async with open_checkpointer(db) as saver:
        app_graph = build_graph().compile(checkpointer=saver, name="foreman")
        config = _config(thread)
        if ctx is None:
            snapshot = await app_graph.aget_state(config)
            if not snapshot.values and not snapshot.next:
                raise UsageError(f"no run with thread id {thread!r} in {db}")
            pending = _interrupts(snapshot)
            if payload is None and pending:
                _print_interrupts(thread, pending)
                answers = (
                    {i.id: ask_in_terminal(i.value, console.input) for i in pending}
                    if interactive
                    else {}
                )
                if not answers or any(a is None for a in answers.values()):
                    return EXIT_WAITING
                payload = json.dumps(answers[pending[0].id] if len(pending) == 1 else answers)
            if not snapshot.next and not pending:
                console.print(
                    f"Run {thread} has already finished ({snapshot.values.get('status')})."
                )
                return EXIT_OK
            if payload is not None:
                if not pending:
                    raise UsageError(f"run {thread} is not waiting for an answer")
                payload = Command(resume=_resume_value(pending, payload))
            ctx = await _saved_context(app_graph, config)
        else:
            config = _config(thread, ctx)
        while True:
            progress = Progress(console if not quiet else Console(quiet=True))
            with progress:
                async for _ns, mode, chunk in app_graph.astream(
                    payload,
                    config,
                    context=ctx,
                    stream_mode=["custom", "updates"],
                    subgraphs=True,
                ):
                    if mode == "custom" and isinstance(chunk, dict):
                        progress.handle(chunk)
            snapshot = await app_graph.aget_state(_config(thread))
            values = snapshot.values
            folder = _write_audit(thread, values)
            pending = _interrupts(snapshot)
            if not pending:
                break
            _print_interrupts(thread, pending)
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
        console.print(
            f"Audit trail: {folder}/audit.md and audit.json (also: foreman show {thread})"
        )
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
    if corpus is not None and not corpus.is_dir():
        err.print(f"[red]error:[/] corpus folder not found: {corpus}")
        raise typer.Exit(EXIT_USAGE)
    console.print(
        f"thread [bold]{thread}[/] · planner {ctx.planner_model} · workers "
        f"{ctx.worker_model} · db {db or default_db()}"
    )
    _execute(_drive(db or default_db(), thread, {"request": request}, ctx, quiet, ask), thread)


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
) -> None:
    """Continue a paused, interrupted or crashed run from its last checkpoint."""
    _execute(_drive(db or default_db(), thread, answer, None, quiet, ask), thread)


async def _threads(db: str, limit: int) -> list[tuple[str, str, str]]:
    from graph import build_graph

    rows = []
    async with open_checkpointer(db) as saver:
        app_graph = build_graph().compile(checkpointer=saver)
        for tid in (await thread_ids(saver))[:limit]:
            snap = await app_graph.aget_state(_config(tid))
            status = snap.values.get("status", "?")
            if _interrupts(snap):
                status = "waiting: " + ", ".join(
                    i.value.get("kind", "?") for i in _interrupts(snap)
                )
            elif snap.next:
                status = f"stopped before {', '.join(snap.next)} (resumable)"
            rows.append((tid, status, snap.values.get("request", "")[:70]))
    return rows


@app.command()
def threads(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """List runs with their status, newest first."""
    from rich.table import Table

    rows = asyncio.run(_threads(db or default_db(), limit))
    table = Table("thread", "status", "request")
    for row in rows:
        table.add_row(*row)
    console.print(table)


async def _values(db: str, thread: str) -> dict[str, Any]:
    from graph import build_graph

    async with open_checkpointer(db) as saver:
        snap = await build_graph().compile(checkpointer=saver).aget_state(_config(thread))
        if not snap.values:
            raise UsageError(f"no run with thread id {thread!r} in {db}")
        return dict(snap.values)


@app.command()
def show(
    thread: Annotated[str, typer.Argument(help="Thread id of the run.")],
    db: DbOption = None,
    format: Annotated[str, typer.Option(help="text (rendered), md or json.")] = "text",
) -> None:
    """Print a run's plan versions, subtasks with every attempt and verdict, usage and cost."""
    try:
        values = asyncio.run(_values(db or default_db(), thread))
    except UsageError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    if format == "json":
        sys.stdout.write(audit.to_json(values) + "\n")  # type: ignore[arg-type]
    elif format == "md":
        sys.stdout.write(audit.to_markdown(values))  # type: ignore[arg-type]
    else:
        console.print(Markdown(audit.to_markdown(values)))  # type: ignore[arg-type]


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
