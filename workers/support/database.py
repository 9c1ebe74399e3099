"""The shop database behind the customer-service workers: safe, read-only lookups.

The `lookup` worker opens it with `connect_readonly` and calls `lookup`, which passes
customer-supplied text to SQLite only as bound `?` parameters, never as SQL text. The sample
database comes from `foreman.workers.support.sample.generate`.

Example:
    >>> from contextlib import closing
    >>> from foreman.workers.support.sample import generate
    >>> path = generate("/tmp/shop.sqlite")
    >>> with closing(connect_readonly(path)) as conn:
    ...     found = lookup(conn, sender="maria.garcia@example.com")
    >>> found["orders"][0]["id"], found["orders"][0]["days_since_delivery"]
    ('A10023', 12)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from foreman.core.text import extract_keys

__all__ = ["extract_keys"]  # re-exported: the workers read keys and rows from one place

Record = dict[str, Any]

TABLES = (
    "meta",
    "customers",
    "products",
    "orders",
    "order_items",
    "shipments",
    "refunds",
    "credits",
)


# `date(x) = x` admits only real YYYY-MM-DD dates, so every date compares correctly as text.
def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """Open the shop database read-only: SQLite itself refuses any write on this connection.

    Raises:
        FileNotFoundError: If the file does not exist, with how to create it.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(
            f"no support database at {file}; create it with "
            "`python scripts/make_support_db.py` (or `make data`)"
        )
    return sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)


def placeholders(n: int) -> str:
    """`?, ?, ...`: one bound-parameter marker per value."""
    return ", ".join("?" * n)


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Record]:
    # Column names from the cursor, so this works whatever row_factory the caller set.
    cur = conn.execute(sql, params)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def format_money(cents: int, currency: str = "USD") -> str:
    """Format cents for people: `format_money(64990)` is `'$649.90'`."""
    sign, cents = ("-" if cents < 0 else ""), abs(cents)
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    return f"{sign}${amount}" if currency == "USD" else f"{sign}{amount} {currency}"


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row count of every table."""
    # Table names come from the TABLES constant, never from input.
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def as_of(conn: sqlite3.Connection) -> date:
    """The date the sample data treats as today (`meta.as_of`)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", ("as_of",)).fetchone()
    if row is None:
        raise LookupError("meta has no as_of: is this a support database?")
    return date.fromisoformat(row[0])


def find_customer(
    conn: sqlite3.Connection, *, email: str | None = None, customer_id: int | None = None
) -> Record | None:
    """One customer by email (case-insensitive) or id, with their store credits; else None."""
    if (email is None) == (customer_id is None):
        raise ValueError("pass exactly one of email or customer_id")
    sql = "SELECT id, email, name, country, created_at, tier, marketing_opt_in FROM customers"
    if email is not None:
        found = _rows(conn, sql + " WHERE email = ?", (email.strip(),))
    else:
        found = _rows(conn, sql + " WHERE id = ?", (customer_id,))
    if not found:
        return None
    customer = found[0]
    customer["marketing_opt_in"] = bool(customer["marketing_opt_in"])
    customer["credits"] = _rows(
        conn,
        "SELECT kind, amount_cents, order_id, created_at, note FROM credits"
        " WHERE customer_id = ? ORDER BY created_at DESC, id",
        (customer["id"],),
    )
    for credit in customer["credits"]:
        credit["amount"] = format_money(credit["amount_cents"])
    return customer


def find_orders(
    conn: sqlite3.Connection, *, customer_id: int | None = None, order_ids: Sequence[str] = ()
) -> list[Record]:
    """Orders of a customer and/or with given ids (both: the intersection), newest first.

    Each order carries its items (with product name and final-sale, perishable and
    personalised flags), its shipment or None, its refunds, and `days_since_delivery`
    relative to `as_of`. With neither argument, returns nothing rather than every order.
    """
    ids = _unique(o.strip().upper() for o in order_ids)
    where: list[str] = []
    params: list[Any] = []
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    if ids:
        where.append(f"id IN ({placeholders(len(ids))})")  # only placeholders; the ids are bound
        params.extend(ids)
    if not where:
        return []
    orders = _rows(
        conn,
        "SELECT id, customer_id, placed_at, status, shipping_address, shipping_cents,"
        " total_cents, currency, payment_method FROM orders"
        f" WHERE {' AND '.join(where)} ORDER BY placed_at DESC, id",
        params,
    )
    if not orders:
        return []
    today, keys = as_of(conn), [o["id"] for o in orders]
    marks = placeholders(len(keys))
    items = _group(
        _rows(
            conn,
            "SELECT i.order_id, i.sku, p.name, p.category, i.qty, i.unit_price_cents,"
            " p.final_sale, p.perishable, p.personalised FROM order_items AS i"
            f" JOIN products AS p ON p.sku = i.sku WHERE i.order_id IN ({marks})"
            " ORDER BY i.order_id, i.rowid",
            keys,
        )
    )
    ships = _group(
        _rows(
            conn,
            "SELECT order_id, carrier, tracking_no, shipped_at, promised_by, delivered_at"
            f" FROM shipments WHERE order_id IN ({marks})",
            keys,
        )
    )
    refunds = _group(
        _rows(
            conn,
            "SELECT order_id, id, amount_cents, status, created_at, reason FROM refunds"
            f" WHERE order_id IN ({marks}) ORDER BY created_at, id",
            keys,
        )
    )
    for order in orders:
        order["total"] = format_money(order["total_cents"], order["currency"])
        order["shipping"] = format_money(order["shipping_cents"], order["currency"])
        order["items"] = items.get(order["id"], [])
        for item in order["items"]:
            item["unit_price"] = format_money(item["unit_price_cents"], order["currency"])
            for flag in ("final_sale", "perishable", "personalised"):
                item[flag] = bool(item[flag])
        order["refunds"] = refunds.get(order["id"], [])
        for refund in order["refunds"]:
            refund["amount"] = format_money(refund["amount_cents"], order["currency"])
        ship = ships.get(order["id"], [None])[0]
        order["shipment"] = ship
        order["days_since_delivery"] = None
        if ship is not None:
            arrived = date.fromisoformat(ship["delivered_at"]) if ship["delivered_at"] else None
            # Late means delivered after the promise, or still travelling past it.
            ship["days_late"] = max(
                0, ((arrived or today) - date.fromisoformat(ship["promised_by"])).days
            )
            ship["late"] = ship["days_late"] > 0
            if arrived is not None:
                order["days_since_delivery"] = (today - arrived).days
    return orders


def _group(rows: list[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for row in rows:
        grouped.setdefault(row.pop("order_id"), []).append(row)
    return grouped


def lookup(
    conn: sqlite3.Connection, *, sender: str | None, order_ids: Sequence[str] = ()
) -> Record:
    """Everything the support agent may see for a message from `sender`.

    `sender` is the verified email of the message's author, given by the system the message
    came through, never read from the message: only that account is read. The orders asked
    about are returned when they are the sender's; any other account's are withheld (listed
    in `not_found` like unknown ids, and explained in `mismatch`) so the agent neither shows
    nor confirms them. With no order ids, all the sender's orders. With no sender, or one
    with no account, nothing of any account is read.

    Returns:
        A JSON-serialisable dict: `as_of` (ISO date), `customer` (or None), `orders`,
        `not_found` (normalised emails and order ids) and `mismatch` (a note, or None).
    """
    wanted_ids = _unique(o.strip().upper() for o in order_ids)
    email = (sender or "").strip().lower()
    customer = find_customer(conn, email=email) if email else None
    not_found: list[str] = [email] if email and customer is None else []
    orders: list[Record] = []
    withheld: list[str] = []  # someone's, but not the sender's: reported as not found
    if customer is not None:
        if wanted_ids:
            own = {
                o["id"]: o
                for o in find_orders(conn, customer_id=customer["id"], order_ids=wanted_ids)
            }
            for oid in wanted_ids:
                if oid in own:
                    orders.append(own[oid])
                else:
                    not_found.append(oid)
                    if _order_exists(conn, oid):
                        withheld.append(oid)
        else:
            orders = find_orders(conn, customer_id=customer["id"])
    else:
        not_found += wanted_ids
    mismatch = None
    if withheld and customer is not None:
        mismatch = (
            f"Withheld, as they belong to an account other than {customer['email']}: "
            f"{', '.join(withheld)}. Do not show, confirm or discuss them; ask the customer to "
            "write from the email address of that account."
        )
    return {
        "as_of": as_of(conn).isoformat(),
        "customer": customer,
        "orders": orders,
        "not_found": not_found,
        "mismatch": mismatch,
    }


def _order_exists(conn: sqlite3.Connection, order_id: str) -> bool:
    return conn.execute("SELECT 1 FROM orders WHERE id = ?", (order_id,)).fetchone() is not None
