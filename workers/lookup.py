"""Lookup worker: account and order data from the shop's SQLite database, no model involved.

Identifiers come from the classifier's structured output and from a pattern match over the
subtask's own text; they reach SQLite only as bound parameters of fixed queries
(`workers.support_db`), so nothing a customer writes is ever executed as SQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from graph.context import Context
from graph.schemas import WorkerStatus
from workers import support_db
from workers.base import WorkerInput

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


def keys_for(inp: WorkerInput) -> dict[str, list[str]]:
    """Identifiers from the classifier's output, then any written in the objective."""
    emails: list[str] = []
    orders: list[str] = []
    for dep in inp.dependencies.values():
        out = dep.output or {}
        emails += [str(e) for e in out.get("emails", [])]
        orders += [str(o) for o in out.get("order_ids", [])]
    found = support_db.extract_keys(f"{inp.subtask.objective}\n{inp.clarification or ''}")
    emails += found.get("emails", [])
    orders += found.get("order_ids", [])
    return {
        "emails": list(dict.fromkeys(e.strip().lower() for e in emails)),
        "order_ids": list(dict.fromkeys(o.strip().upper() for o in orders)),
    }


def _lookup(db: str, keys: dict[str, list[str]]) -> dict[str, Any]:
    conn = support_db.connect_readonly(db)
    try:
        return support_db.lookup(conn, emails=keys["emails"], order_ids=keys["order_ids"])
    finally:
        conn.close()


async def lookup(inp: WorkerInput, ctx: Context) -> dict[str, Any]:
    """Look the customer and orders up; ask for an identifier when there is none."""
    keys = keys_for(inp)
    if not keys["emails"]:
        # Policy: orders are discussed with their account holder only, so an order number
        # alone is not enough to read anything.
        return LookupResult(
            status="needs_clarification",
            question="What is the email address of the customer's account? Orders are looked "
            "up only together with the account they belong to.",
            searched=keys,
        ).model_dump()
    try:
        found = await asyncio.to_thread(_lookup, ctx.support_db, keys)
    except FileNotFoundError as exc:
        return LookupResult(status="failed", error=str(exc)).model_dump()
    notes = [str(n) for n in found.get("notes", [])]
    if found.get("mismatch"):
        notes.append(str(found["mismatch"]))
    return LookupResult(
        as_of=str(found.get("as_of", "")),
        customer=found.get("customer"),
        orders=list(found.get("orders", [])),
        not_found=list(found.get("not_found", [])),
        notes=notes,
        searched=keys,
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
