"""The shop database behind the customer-service workers: safe, read-only lookups.

The `lookup` worker opens it with `connect_readonly` and calls `lookup`, which passes
customer-supplied text to SQLite only as bound `?` parameters, never as SQL text. The sample
database comes from `workers.support_sample.generate`.

Example:
    >>> from contextlib import closing
    >>> from workers.support_sample import generate
    >>> path = generate("/tmp/shop.sqlite")
    >>> with closing(connect_readonly(path)) as conn:
    ...     found = lookup(conn, emails=["maria.garcia@example.com"])
    >>> found["orders"][0]["id"], found["orders"][0]["days_since_delivery"]
    ('A10023', 12)
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

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
    conn: sqlite3.Connection, *, emails: Sequence[str] = (), order_ids: Sequence[str] = ()
) -> Record:
    """Everything the support agent may see about the customer a message is from.

    The customer is the account of the first email that matches one; with no email given,
    the owner of the first order id that matches. Orders belonging to any other account are
    withheld: listed in `not_found` like unknown keys, and explained in `mismatch` so the
    agent neither shows nor confirms another customer's order. With an email but no order
    ids, all the customer's orders are returned.

    Returns:
        A JSON-serialisable dict: `as_of` (ISO date), `customer` (or None), `orders`,
        `not_found` (normalised emails and order ids) and `mismatch` (a note, or None).
    """
    wanted_emails = _unique(e.strip().lower() for e in emails)
    wanted_ids = _unique(o.strip().upper() for o in order_ids)
    customer: Record | None = None
    not_found: list[str] = []
    withheld: list[str] = []  # found, but another account's: reported as not found
    for email in wanted_emails:
        found = find_customer(conn, email=email)
        if found is None:
            not_found.append(email)
        elif customer is None:
            customer = found
        elif found["id"] != customer["id"]:
            not_found.append(email)
            withheld.append(email)
    by_id = {o["id"]: o for o in find_orders(conn, order_ids=wanted_ids)}
    if not wanted_emails and by_id:
        first = next(by_id[i] for i in wanted_ids if i in by_id)
        customer = find_customer(conn, customer_id=first["customer_id"])
    orders: list[Record] = []
    for oid in wanted_ids:
        order = by_id.get(oid)
        if order is None:
            not_found.append(oid)
        elif customer is not None and order["customer_id"] == customer["id"]:
            orders.append(order)
        else:
            not_found.append(oid)
            withheld.append(oid)
    if customer is not None and not wanted_ids:
        orders = find_orders(conn, customer_id=customer["id"])
    mismatch = None
    if withheld:
        owner = customer["email"] if customer else "the email given"
        mismatch = (
            f"Withheld, as they belong to an account other than {owner}: {', '.join(withheld)}. "
            "Do not show, confirm or discuss them; ask the customer to write from the email "
            "address of that account."
        )
    return {
        "as_of": as_of(conn).isoformat(),
        "customer": customer,
        "orders": orders,
        "not_found": not_found,
        "mismatch": mismatch,
    }


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ORDER_ID = re.compile(r"\b[A-Z]\d{5}\b", re.IGNORECASE)


def extract_keys(text: str) -> dict[str, list[str]]:
    """Emails (lower-cased) and order ids (upper-cased) mentioned in free text, in order.

    Example:
        >>> extract_keys("Hi, order #a10023 for Maria.Garcia@example.com never came.")
        {'emails': ['maria.garcia@example.com'], 'order_ids': ['A10023']}
    """
    emails = _unique(m.lower() for m in _EMAIL.findall(text))
    rest = _EMAIL.sub(" ", text)  # so the digits inside an email never read as an order id
    return {"emails": emails, "order_ids": _unique(m.upper() for m in _ORDER_ID.findall(rest))}
