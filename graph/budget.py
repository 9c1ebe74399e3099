"""Budgets that refuse before spending: estimate a subtask's and each model call's cost first.

A dispatch round keeps one `Ledger` of what the run has spent and what calls in flight may
still spend (their reservations). Before a subtask starts, its first attempt's cost is
estimated (the history's mean for its worker and model, else the prompt's size times the
price); before each model call inside it, a `BudgetGuard` callback reserves the call's
upper bound (its prompt, plus the most output the worker has been seen to need, else
`Context.assumed_output_tokens`). A reservation that would take the run past
`max_cost_usd` / `max_total_tokens`, or the subtask past `max_subtask_cost_usd`, is refused:
the call is not made, and the subtask ends `over_budget` saying what was not done and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from foreman.core.context import Context
from foreman.core.models import cost_usd
from foreman.core.state import Usage
from foreman.core.text import estimate_tokens
from foreman.orchestration.history import History

# LangChain logs a handler's error before raising it; a refusal is reported where it lands
logging.getLogger("langchain_core.callbacks.manager").addFilter(
    lambda record: "BudgetRefused" not in record.getMessage()
)
MIN_SAMPLES = 3  # attempts before the history's figures replace the prompt-size estimate
# The ledgers of waves-mode rounds, by id: a `Send` carries the id (its payload is
# checkpointed, a ledger is not); after a restart a subtask has none and keeps its own cap.
LEDGERS: dict[str, Ledger] = {}
MOST_LEDGERS = 64


class BudgetRefused(RuntimeError):
    """A model call (or a subtask) was refused: its estimate would pass a budget."""


@dataclass
class Ledger:
    """What a run has spent and has reserved for calls in flight, against its budgets."""

    max_cost_usd: float = 0.0
    max_tokens: int = 0
    spent_usd: float = 0.0
    spent_tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0

    @classmethod
    def of(cls, ctx: Context, spent: Usage) -> Ledger:
        """A ledger for `ctx`'s budgets, starting from what the run has `spent`."""
        return cls(
            max_cost_usd=ctx.max_cost_usd,
            max_tokens=ctx.max_total_tokens,
            spent_usd=spent["cost_usd"],
            spent_tokens=spent["input_tokens"] + spent["output_tokens"],
        )

    def refusal(self, usd: float, tokens: int) -> str | None:
        """Why a reservation of `usd` and `tokens` would pass the run's budget, or None."""
        if self.max_cost_usd and self.spent_usd + self.reserved_usd + usd > self.max_cost_usd:
            left = max(0.0, self.max_cost_usd - self.spent_usd - self.reserved_usd)
            return f"${usd:.4f} estimated, ${left:.4f} left of the run's ${self.max_cost_usd:g}"
        if self.max_tokens and self.spent_tokens + self.reserved_tokens + tokens > self.max_tokens:
            left = max(0, self.max_tokens - self.spent_tokens - self.reserved_tokens)
            return f"{tokens} tokens estimated, {left} left of the run's {self.max_tokens}"
        return None

    def reserve(self, usd: float, tokens: int) -> None:
        """Hold `usd` and `tokens` for a call about to be made."""
        self.reserved_usd += usd
        self.reserved_tokens += tokens

    def settle(self, reserved: tuple[float, int], usd: float, tokens: int) -> None:
        """Replace a reservation by what the call spent."""
        self.reserved_usd -= reserved[0]
        self.reserved_tokens -= reserved[1]
        self.spent_usd += usd
        self.spent_tokens += tokens


def register(ledger: Ledger) -> str:
    """Keep a round's ledger where its `Send`s can find it; returns its id."""
    import uuid

    while len(LEDGERS) >= MOST_LEDGERS:
        del LEDGERS[next(iter(LEDGERS))]
    key = uuid.uuid4().hex
    LEDGERS[key] = ledger
    return key


def call_refusal(
    ctx: Context, spent: Usage, spec: str, messages: Sequence[BaseMessage]
) -> str | None:
    """Why a call of the orchestrator's own (planner, synthesizer) would pass the budget.

    None when it fits what the run has `spent`; the estimate is the prompt and
    `assumed_output_tokens` at `spec`'s price.
    """
    if not (ctx.max_cost_usd or ctx.max_total_tokens):
        return None
    tokens_in = sum(estimate_tokens(str(m.content)) for m in messages)
    tokens_out = ctx.assumed_output_tokens
    usd = cost_usd(spec, tokens_in, tokens_out)
    return Ledger.of(ctx, spent).refusal(usd, tokens_in + tokens_out)


def output_bound(history: History, worker: str, model: str, ctx: Context) -> int:
    """The most output tokens a call of this worker on this model is expected to need."""
    seen = history.worker(worker, model).output_tokens
    if len(seen) >= MIN_SAMPLES:
        return max(seen)
    return ctx.assumed_output_tokens


def estimate(
    history: History, worker: str, model: str, prompt: str, ctx: Context
) -> tuple[float, int]:
    """(USD, tokens) an attempt is expected to cost: the history's mean, else by prompt."""
    stats = history.worker(worker, model)
    if stats.attempts >= MIN_SAMPLES:
        tokens = sum(stats.output_tokens) // max(1, len(stats.output_tokens))
        return stats.mean_cost, tokens + estimate_tokens(prompt)
    tokens_in = estimate_tokens(prompt)
    tokens_out = output_bound(history, worker, model, ctx)
    return cost_usd(model, tokens_in, tokens_out), tokens_in + tokens_out


class BudgetGuard(AsyncCallbackHandler):
    """Reserves each model call's upper bound before it is made; refuses it past a budget.

    Attached to one attempt's calls; `raise_error` makes the refusal stop the call. The
    subtask's own cap counts what its earlier attempts spent (`subtask_spent_usd`).
    """

    raise_error = True
    run_inline = True  # the reservation is made before the call, not scheduled beside it

    def __init__(
        self,
        ledger: Ledger,
        history: History,
        worker: str,
        ctx: Context,
        subtask_spent_usd: float = 0.0,
    ) -> None:
        super().__init__()
        self.ledger, self.history, self.worker, self.ctx = ledger, history, worker, ctx
        self.subtask_spent_usd = subtask_spent_usd
        self.spent_usd = 0.0
        self.spent_tokens = (0, 0)  # (input, output) of the calls that finished
        self._open: dict[UUID, tuple[str, tuple[float, int]]] = {}

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Reserve the call's upper bound, or refuse it."""
        model = str((metadata or {}).get("model") or self.ctx.model_for_worker(self.worker))
        tokens_in = sum(estimate_tokens(str(m.content)) for batch in messages for m in batch)
        tokens_out = output_bound(self.history, self.worker, model, self.ctx)
        usd = cost_usd(model, tokens_in, tokens_out)
        reason = self.ledger.refusal(usd, tokens_in + tokens_out)
        cap = self.ctx.max_subtask_cost_usd
        if reason is None and cap and self.subtask_spent_usd + self.spent_usd + usd > cap:
            reason = f"${usd:.4f} estimated, past the subtask's cap of ${cap:g}"
        if reason is not None:
            raise BudgetRefused(f"a {model} call was refused before it was made: {reason}")
        self.ledger.reserve(usd, tokens_in + tokens_out)
        self._open[run_id] = (model, (usd, tokens_in + tokens_out))

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Settle the reservation with what the provider says the call used."""
        model, reserved = self._open.pop(run_id, ("", (0.0, 0)))
        if not model:
            return
        tokens_in = tokens_out = 0
        for batch in response.generations:
            for gen in batch:
                meta = getattr(getattr(gen, "message", None), "usage_metadata", None) or {}
                tokens_in += int(meta.get("input_tokens", 0))
                tokens_out += int(meta.get("output_tokens", 0))
        usd = cost_usd(model, tokens_in, tokens_out)
        self.ledger.settle(reserved, usd, tokens_in + tokens_out)
        self.spent_usd += usd
        self.spent_tokens = (self.spent_tokens[0] + tokens_in, self.spent_tokens[1] + tokens_out)

    def release_open(self) -> None:
        """Release what calls cut off (a cancelled attempt) still hold."""
        for _, reserved in self._open.values():
            self.ledger.settle(reserved, 0.0, 0)
        self._open.clear()

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A failed call spent nothing we can count: release its reservation."""
        _, reserved = self._open.pop(run_id, ("", (0.0, 0)))
        self.ledger.settle(reserved, 0.0, 0)
