"""`foreman workers`: the workers a run may use, and where each was declared."""

from __future__ import annotations

from rich.markup import escape

from foreman.cli.common import WorkersFileOption, app, console, fail, registry_of
from foreman.core.context import Context
from foreman.errors import UsageError


@app.command()
def workers(workers_file: WorkersFileOption = None) -> None:
    """List the workers the planner may use, and where each was declared.

    Built-in ones, those packages add (entry points, $FOREMAN_WORKERS) and those a workers
    file declares, with each one's capability, what it runs on, and its origin (file:line).
    """
    ctx = Context()
    if workers_file is not None:
        ctx.workers_file = str(workers_file)
    try:
        registry = registry_of(ctx.workers_file)
    except UsageError as exc:
        raise fail(str(exc)) from exc
    for spec in registry.values():
        if spec.graph is None and spec.runner is None:
            runs_on = "no model (a tool)"
        elif spec.runner is not None:
            runs_on = runner_model(spec.name, ctx)
        else:
            runs_on = ctx.model_for_worker(spec.name)
        console.print(  # a path in the origin is not wrapped: it can be copied
            f"[bold]{escape(spec.name)}[/] · {escape(spec.capability)} · {escape(runs_on)} · "
            f"[dim]{escape(spec.origin)}[/]",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"  {escape(spec.description)}", highlight=False)


def runner_model(name: str, ctx: Context) -> str:
    """What a declared worker runs on: its kind, and its model (its file's, or `--model`)."""
    from foreman.workers.declared.build import model_of
    from foreman.workers.declared.config import load

    decl = load(ctx.workers_file).file.workers.get(name) if ctx.workers_file else None
    if decl is None:
        return ctx.model_for_worker(name)
    where = {"remote_graph": "remote graph", "a2a": "A2A agent"}.get(decl.kind)
    if where:  # the work runs over there; a model here only shapes a structured answer
        return f"{where} at {getattr(decl, 'url', '')}"
    return f"{decl.kind} on {model_of(name, decl, ctx)}"
