"""Lookup worker: account and order data from the shop's SQLite database, no model involved.

Whose account is read comes from outside the message: the run's verified `sender` (or the
support agent's answer to this worker's question), never an address written in the message.
Order numbers come from the classifier's output and the subtask's own text, and are looked
up only among that account's orders. Everything reaches SQLite as bound parameters of fixed
queries (`foreman.workers.support.database`), so nothing a customer writes is ever executed as SQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from foreman.core.context import Context
from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput
from foreman.workers.spec import WorkerSpec
from foreman.workers.support import database as support_db
from foreman.workers.support.sample import default_database

NAME = "lookup"


class LookupResult(WorkerStatus):
    """What the database says about the customer and the orders they mentioned."""

    as_of: str = Field(default="", description="The database's current date.")
    customer: dict[str, Any] | None = Field(default=None, description="The account, if found.")
    orders: list[dict[str, Any]] = Field(default_factory=list, description="Matching orders.")
    not_found: list[str] = Field(default_factory=list, description="Identifiers not found.")
    notes: list[str] = Field(default_factory=list, description="Withheld data and why.")
    searched: dict[str, list[str]] = Field(
        default_factory=dict, description="The identifiers looked up."
    )


def order_ids_for(inp: WorkerInput) -> list[str]:
    """Order numbers from the classifier's output, then any written in the objective."""
    orders: list[str] = []
    for dep in inp.dependencies.values():
        orders += [str(o) for o in (dep.output or {}).get("order_ids", [])]
    orders += support_db.extract_keys(inp.subtask.objective)["order_ids"]
    return list(dict.fromkeys(o.strip().upper() for o in orders))


def verified_sender(inp: WorkerInput) -> str | None:
    """Whose account may be read: the run's verified sender, else a person's answer.

    Never an address written in the customer's message: anyone can write one, quote a
    forwarded signature, or mention another customer. The person answering this worker's
    question is whoever runs Foreman (the support agent), not the customer.
    """
    if inp.sender and inp.sender.strip():
        return inp.sender.strip().lower()
    answered = support_db.extract_keys(inp.clarification or "")["emails"]
    return answered[0] if answered else None


def _lookup(db: str, sender: str, order_ids: list[str]) -> dict[str, Any]:
    conn = support_db.connect_readonly(default_database(db))
    try:
        return support_db.lookup(conn, sender=sender, order_ids=order_ids)
    finally:
        conn.close()


async def lookup(inp: WorkerInput, ctx: Context) -> dict[str, Any]:
    """Look up the sender's account and the orders the message names (or ask whose it is)."""
    order_ids = order_ids_for(inp)
    sender = verified_sender(inp)
    mentioned = support_db.extract_keys(inp.subtask.objective)["emails"]
    searched = {"emails": [sender] if sender else [], "order_ids": order_ids}
    if sender is None:
        # Policy: orders are discussed with their account holder only, and who that is must
        # come from outside the message.
        return LookupResult(
            status="needs_clarification",
            question="Which account is this message from? Give the email address the message "
            "was verified to come from (Foreman reads only that account; addresses written in "
            "the message are not trusted), or run with --sender.",
            searched=searched,
        ).model_dump()
    try:
        found = await asyncio.to_thread(_lookup, ctx.support_db, sender, order_ids)
    except FileNotFoundError as exc:
        return LookupResult(status="failed", error=str(exc)).model_dump()
    notes = [str(n) for n in found.get("notes", [])]
    if found.get("mismatch"):
        notes.append(str(found["mismatch"]))
    if others := [e for e in mentioned if e != sender]:
        notes.append(
            f"The message mentions other addresses ({', '.join(others)}); only the sender's "
            "account was read. Do not confirm or discuss any other account."
        )
    return LookupResult(
        as_of=str(found.get("as_of", "")),
        customer=found.get("customer"),
        orders=list(found.get("orders", [])),
        not_found=list(found.get("not_found", [])),
        notes=notes,
        searched=searched,
    ).model_dump()


def check_lookup(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Lookup rules: something was found for the identifiers given."""
    if output.get("customer") is None and not output.get("orders"):
        searched = output.get("searched", {})
        keys = ", ".join(searched.get("emails", []) + searched.get("order_ids", []))
        return [f"no account or order matches {keys or 'the identifiers'}"]
    return []


def render_lookup(output: dict[str, Any]) -> str:
    """The account and each order, as short bullet lists."""
    lines = [f"Database as of {output.get('as_of', '?')}."]
    if c := output.get("customer"):
        lines.append(
            f"- Customer: {c.get('name')} <{c.get('email')}>, {c.get('tier')} tier, "
            f"customer since {str(c.get('created_at', ''))[:10]}"
        )
    for o in output.get("orders", []):
        items = ", ".join(
            f"{i.get('qty', 1)}× {i.get('name', i.get('sku'))}" for i in o.get("items", [])
        )
        ship = o.get("shipment") or {}
        ago = o.get("days_since_delivery")
        lines.append(
            f"- Order {o.get('id')}: {o.get('status')}, placed {str(o.get('placed_at'))[:10]}, "
            f"total {o.get('total', o.get('total_cents'))}; items: {items}; promised by "
            f"{ship.get('promised_by') or '-'}, delivered {ship.get('delivered_at') or '-'}"
            + (f" ({ago} days ago)" if ago is not None else "")
        )
    if output.get("not_found"):
        lines.append(f"- Not found: {', '.join(output['not_found'])}")
    lines += [f"- Note: {n}" for n in output.get("notes", [])]
    return "\n".join(lines)


def spec() -> WorkerSpec:
    """The `lookup` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="lookup",
        capability="customer service",
        description="reads the customer's account and orders from the shop database "
        "(parameterized SQL, no model), using identifiers from its inputs or objective",
        tool=lookup,
        # live, per-person data: an order ships, an address changes; never reused
        cacheable=False,
        output_schema=LookupResult,
        check=check_lookup,
        render=render_lookup,
    )
