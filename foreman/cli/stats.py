"""`foreman stats`: acceptance, cost and latency per worker × model, across runs.

The rows are the run history the graph keeps in the database's store
(`foreman.core.history`). Reading them needs the store alone: like `foreman threads`, this
imports neither the graph, the models nor the workers, and answers in about a second.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated

import typer

from foreman.ages import parse_age
from foreman.cli.common import DbOption, app, checked, console, fail, opened_database, say
from foreman.core.redact import redact
from foreman.errors import UsageError

if TYPE_CHECKING:
    from foreman.core.history import AttemptRow, Stats


async def read_rows(db: str) -> list[AttemptRow]:
    """Every history row of `db` (up to `foreman.core.history.MOST_ROWS`)."""
    from foreman.core.history import load_rows
    from foreman.stores import open_store

    async with opened_database(db, open_store(db)) as store:
        return await load_rows(store)


def select(
    rows: list[AttemptRow], worker: str | None, since_s: float | None, now: float | None = None
) -> list[AttemptRow]:
    """The rows of one worker (all when None) that started in the last `since_s` seconds."""
    cutoff = (now if now is not None else time.time()) - since_s if since_s is not None else None
    return [
        row
        for row in rows
        if (worker is None or row["worker"] == worker)
        and (cutoff is None or row["started_at"] >= cutoff)
    ]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


HEADER = ("tries", "ok", "$/try", "$ all", "p50", "p95", "tokens", "hits")
LEGEND = (
    "tries: attempts judged · ok: share accepted · $: USD · p50/p95: attempt latency · "
    "tokens: mean in/out per try · hits: results reused from the cross-run cache"
)


def table_of(groups: dict[tuple[str, str], Stats], by: str) -> list[str]:
    """One aligned line per worker (or capability) × model, most attempts first.

    Plain lines, never wrapped or cut: a model name stays whole, and a line can be grepped.
    """
    lines = [(by, "model", *HEADER)]
    for (name, model), st in sorted(groups.items(), key=lambda kv: (-kv[1].attempts, kv[0])):
        tokens_in, tokens_out = st.mean_tokens
        lines.append(
            (
                name,
                model,
                str(st.attempts),
                f"{st.acceptance:.0%}" if st.attempts else "-",
                f"{st.mean_cost:.4f}",
                f"{st.total_cost:.4f}",
                _seconds(st.latency(0.5)),
                _seconds(st.latency(0.95)),
                f"{tokens_in:.0f}/{tokens_out:.0f}",
                str(st.cache_hits),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]


@app.command()
def stats(
    db: DbOption = None,
    worker: Annotated[str | None, typer.Option(help="Only this worker's attempts.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only attempts started within this age: 30m, 12h, 7d, 2w.")
    ] = None,
    by: Annotated[
        str, typer.Option(help="Group by worker (default) or capability, each × model.")
    ] = "worker",
) -> None:
    """Acceptance rate, cost and latency per worker × model, over every run in the database.

    Each attempt a validator judged is counted (retries and substitutions too); a result
    reused from the cross-run cache is counted as a cache hit, not as an attempt.
    """
    if by not in ("worker", "capability"):
        raise fail("--by must be worker or capability")
    try:
        since_s = parse_age(since) if since is not None else None
    except ValueError as exc:
        raise fail(f"--since: {exc}") from exc
    db = checked(db)
    try:
        rows = asyncio.run(read_rows(db))
    except UsageError as exc:
        raise fail(redact(str(exc))) from exc
    from foreman.core.history import History

    chosen = select(rows, worker, since_s)
    if not rows:
        say(
            f"no run history in {redact(db)} yet: every attempt a validator judges in a run "
            "on this database is recorded"
        )
        return
    if not chosen:
        say(f"no attempts match in {redact(db)} ({len(rows)} recorded in all)")
        return
    history = History(chosen)
    groups = history.by_worker if by == "worker" else history.by_capability
    for line in table_of(groups, by):
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    say(LEGEND)
    hits = sum(bool(r.get("cached")) for r in chosen)
    runs = len({r["thread_id"] for r in chosen})
    say(f"{len(chosen) - hits} attempt(s) and {hits} cache hit(s) from {runs} run(s)")
