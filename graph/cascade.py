"""The model cascade: a worker's ladder of models, cheap to strong, climbed on failure.

An attempt starts on the cheapest rung whose acceptance rate for the worker's capability
meets the target in the run history, or that the history does not know well enough yet
(`cascade_min_attempts`): with no history, the cheapest. A validation failure moves the
next attempt one rung up, with the validator's findings as its feedback.

The target is `Context.cascade_target` times the best acceptance rate any rung of the
ladder has shown: some subtasks fail their checks whatever model does them (a first search
that finds one document where two are asked for), and those failures say nothing about
whether the cheap model is good enough; what counts is how far it falls behind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from foreman.core.context import Context
from foreman.orchestration.history import History


def ladder_of(ctx: Context, worker: str) -> list[str]:
    """The worker's models, cheap to strong (empty: no cascade, its one model)."""
    return list(ctx.model_ladders.get(worker) or [])


def starting_rung(ladder: list[str], history: History, capability: str, ctx: Context) -> int:
    """The rung an attempt starts on (see the module's docstring)."""
    known = [history.capability(capability, model) for model in ladder]
    rates = [s.acceptance for s in known if s.attempts >= ctx.cascade_min_attempts]
    bar = ctx.cascade_target * max(rates, default=1.0)
    for rung, model in enumerate(ladder):
        stats = history.capability(capability, model)
        if stats.attempts < ctx.cascade_min_attempts or stats.acceptance >= bar:
            return rung
    return max(0, len(ladder) - 1)


@dataclasses.dataclass
class Try:
    """One attempt to make: which worker, on which model (its ladder's rung, if any)."""

    worker: str
    ctx: Context
    rung: int | None = None
    hedged: bool = False
    label: Callable[[Context], str] | None = None
    """The worker's `model_label` (a declared worker's own model, a remote's address)."""

    @property
    def model(self) -> str:
        """What the attempt runs on, as the audit and the budget estimates name it."""
        if self.label is not None:
            return self.label(self.ctx)
        return self.ctx.model_for_worker(self.worker)


def on_rung(ctx: Context, worker: str, ladder: list[str], rung: int) -> Context:
    """`ctx` with the worker's model set to its ladder's `rung`."""
    return dataclasses.replace(ctx, worker_models={**ctx.worker_models, worker: ladder[rung]})
