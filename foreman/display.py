"""Live terminal view of a run, fed by Foreman's custom stream events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

STYLES = {
    "pending": "dim",
    "running": "yellow",
    "accepted": "green",
    "supplied": "green",
    "skipped": "magenta",
    "failed": "red",
    "needs_clarification": "cyan",
    "over_budget": "magenta",
    "not_found": "magenta",
    "changes_requested": "yellow",
    "cancelled": "dim",  # a quorum's member not waited for: not a failure
}


@dataclass
class Row:
    """One subtask line of the view."""

    worker: str
    status: str = "pending"
    model: str = ""
    attempt: int = 0
    started: float | None = None
    seconds: float | None = None
    note: str = ""


@dataclass
class Progress:
    """Subtask table plus a phase line; renders live on a terminal, as lines otherwise."""

    console: Console
    rows: dict[str, Row] = field(default_factory=dict)
    phase: str = "starting"
    started: float = field(default_factory=time.perf_counter)
    live: Live | None = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self.live = Live(self.render(), console=self.console, refresh_per_second=8)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self.render())
            self.live.__exit__(None, None, None)

    def _log(self, text: str) -> None:
        if self.live is None:
            self.console.print(
                f"[{time.perf_counter() - self.started:6.2f}s] {text}", highlight=False
            )

    def handle(self, event: dict[str, Any]) -> None:
        """Apply one custom stream event."""
        kind = event.get("foreman")
        if kind == "phase":
            self.phase = str(event.get("name"))
            self._log(f"phase: {self.phase}")
        elif kind == "plan":
            self.phase = f"plan v{event['version']}"
            for sub in event["subtasks"]:
                self.rows.setdefault(sub["id"], Row(worker=sub["worker"]))
            deps = ", ".join(
                f"{s['id']}({s['worker']}{' ← ' + '+'.join(s['inputs']) if s['inputs'] else ''})"
                for s in event["subtasks"]
            )
            self._log(f"plan v{event['version']}: {deps}")
        elif kind == "attempt":
            row = self.rows.setdefault(event["subtask"], Row(worker=event["worker"]))
            row.worker, row.model, row.attempt = event["worker"], event["model"], event["attempt"]
            row.status, row.started = "running", row.started or time.perf_counter()
            self._log(f"{event['subtask']}: attempt {row.attempt} by {row.worker} ({row.model})")
        elif kind == "verdict":
            row = self.rows[event["subtask"]]
            row.note = "; ".join(event.get("problems") or [])[:80]
            self._log(
                f"{event['subtask']}: verdict {event['verdict']}"
                + (f" — {row.note}" if row.note else "")
            )
        elif kind == "cache_hit":
            row = self.rows.setdefault(event["subtask"], Row(worker=event["worker"]))
            row.model, row.note = event["model"], f"cached from {event['origin']}"
            self._log(f"{event['subtask']}: cache hit, reusing {event['origin']} ({row.model})")
        elif kind == "subtask":
            row = self.rows.setdefault(event["id"], Row(worker=event.get("worker", "?")))
            row.status = event["status"]
            if event["status"] == "running":
                row.started = row.started or time.perf_counter()
            elif "seconds" in event:
                row.seconds = event["seconds"]
                self._log(f"{event['id']}: {row.status} after {event.get('attempts')} attempt(s)")
        if self.live is not None:
            self.live.update(self.render())

    def render(self) -> Group:
        """The current view."""
        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("subtask", "worker", "model", "status", "try", "time", "note"):
            table.add_column(col)
        now = time.perf_counter()
        for sid, row in self.rows.items():
            elapsed = (
                row.seconds
                if row.seconds is not None
                else (now - row.started if row.started else None)
            )
            table.add_row(
                sid,
                row.worker,
                row.model,
                Text(row.status, style=STYLES.get(row.status, "")),
                str(row.attempt or ""),
                f"{elapsed:.1f}s" if elapsed is not None else "",
                row.note,
            )
        head = Text(f"Foreman · {self.phase} · {now - self.started:.1f}s", style="bold")
        return Group(head, table)
