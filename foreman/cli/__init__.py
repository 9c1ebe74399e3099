"""The `foreman` command: run, resume, list, inspect and fork orchestrated runs.

Commands live in `running` (run, resume), `history` (threads, show, rerun, delete,
expire), `workers` and `stats`; importing them registers them on the one Typer `app` from
`common`.
"""

from __future__ import annotations

import gc
import sys

from foreman.cli import history, running, stats, workers  # noqa: F401  (registers commands)
from foreman.cli.common import app, console
from foreman.examples import EXAMPLES

__all__ = ["app", "main"]


@app.command()
def examples() -> None:
    """List the named examples, one per pattern, and whether offline mode runs them."""
    for name, ex in EXAMPLES.items():
        mode = "offline" if ex.offline else "needs a model"
        if ex.extra:
            mode += f", the {ex.extra} extra"
        console.print(f"[bold]{name}[/] ({mode}): {ex.pattern}\n  {ex.request}\n")


@app.command("graph")
def draw_graph() -> None:
    """Print the graph as a Mermaid diagram (drawn from the compiled graph)."""
    from foreman import graph as compiled

    sys.stdout.write(compiled.get_graph().draw_mermaid())


def main() -> None:
    """Entry point of the `foreman` script."""
    try:
        app()
    finally:
        # What a command loaded (LangGraph, the models, the run's state) lives until the
        # process ends, and the interpreter's exit would still trace it all for cycles: 2-3 s
        # after a run on a busy two-core machine, most of the time a Ctrl-C took to stop.
        # Frozen, it goes with the process: atexit handlers and `weakref.finalize` still
        # run; `__del__` of objects left in cycles does not (Python never promised it at exit).
        gc.freeze()
