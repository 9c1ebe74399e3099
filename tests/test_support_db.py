"""The customer-service shop database: deterministic sample data and safe, read-only lookups."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

from foreman.workers.support.database import (
    TABLES,
    connect_readonly,
    extract_keys,
    find_customer,
    find_orders,
    lookup,
    table_counts,
)
from foreman.workers.support.sample import DEMO_CASES, generate

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 11, 1)
PAYLOADS = ["x' OR '1'='1", "A10023' OR 1=1 --", "'; DROP TABLE orders; --"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("support") / "shop.sqlite")


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    with closing(connect_readonly(db)) as c:
        yield c


def dump(path: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(path)) as c:
        return {t: c.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}


def order(conn: sqlite3.Connection, case: str) -> dict:
    (found,) = find_orders(conn, order_ids=[DEMO_CASES[case]["order_id"]])
    return found


# --- generation --------------------------------------------------------------------------


def test_same_seed_same_rows_other_seed_other_rows(db, tmp_path):
    again = generate(tmp_path / "again.sqlite")
    assert dump(again) == dump(db)
    other = dump(generate(tmp_path / "other.sqlite", seed=8))
    assert other["orders"] != dump(db)["orders"]
    generate(again, seed=8)  # overwrites in place
    assert dump(again) == other


def test_realistic_volume_and_every_status(conn):
    counts = table_counts(conn)
    assert counts["customers"] == 120 and counts["products"] >= 25 and counts["orders"] > 150
    statuses = {s for (s,) in conn.execute("SELECT DISTINCT status FROM orders")}
    assert statuses == {"processing", "shipped", "delivered", "cancelled", "returned"}
    domains = {e.split("@")[1] for (e,) in conn.execute("SELECT email FROM customers")}
    assert domains <= {"example.com", "example.org", "example.net"}
    first, last = conn.execute("SELECT min(placed_at), max(placed_at) FROM orders").fetchone()
    assert (AS_OF - date.fromisoformat(first[:10])).days <= 120 and last[:10] <= AS_OF.isoformat()


def test_rows_are_consistent(conn):
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Totals add up: items plus shipping.
    bad_totals = conn.execute(
        "SELECT o.id FROM orders AS o JOIN order_items AS i ON i.order_id = o.id GROUP BY o.id"
        " HAVING o.total_cents <> sum(i.qty * i.unit_price_cents) + o.shipping_cents"
    ).fetchall()
    assert bad_totals == []
    # A shipment exists exactly for shipped orders, and a delivery date exactly for delivered.
    rows = conn.execute(
        "SELECT o.status, s.order_id IS NOT NULL, s.delivered_at IS NOT NULL"
        " FROM orders AS o LEFT JOIN shipments AS s ON s.order_id = o.id"
    ).fetchall()
    expected = {
        "processing": (0, 0),
        "cancelled": (0, 0),
        "shipped": (1, 0),
        "delivered": (1, 1),
        "returned": (1, 1),
    }
    assert all(expected[status] == (shipped, delivered) for status, shipped, delivered in rows)


def test_constraints_reject_bad_rows(db, tmp_path):
    copy = generate(tmp_path / "copy.sqlite")
    with closing(sqlite3.connect(copy)) as c:
        c.execute("PRAGMA foreign_keys = ON")
        bad = [
            "UPDATE orders SET status = 'lost' WHERE id = 'A10023'",
            "UPDATE customers SET email = 'someone@gmail.com' WHERE id = 1",
            "UPDATE customers SET email = 'DANIEL.KIM@example.com' WHERE id = 1",  # unique
            "UPDATE shipments SET delivered_at = '2026-01-01' WHERE order_id = 'A10023'",
            "INSERT INTO order_items VALUES ('A99999', 'KIT-KTL-17', 1, 6490)",  # no such order
            "INSERT INTO refunds (order_id, amount_cents, status, created_at, reason)"
            " VALUES ('A10023', -5, 'paid', '2026-10-30', 'x')",
        ]
        for sql in bad:
            with pytest.raises(sqlite3.IntegrityError):
                c.execute(sql)


def test_demo_cases_show_what_they_say(conn):
    assert {d["order_id"] for d in DEMO_CASES.values()} <= {
        o for (o,) in conn.execute("SELECT id FROM orders")
    }
    kettle = order(conn, "returnable")
    assert kettle["id"] == "A10023" and kettle["status"] == "delivered"
    assert kettle["days_since_delivery"] == 12 and not kettle["shipment"]["late"]
    assert "Kettle" in kettle["items"][0]["name"]
    assert order(conn, "outside_window")["days_since_delivery"] > 30
    late = order(conn, "late_delivery")
    assert late["shipment"]["late"] and late["shipment"]["days_late"] == 5
    assert late["shipping_cents"] > 0 and find_customer(conn, customer_id=3)["tier"] == "plus"
    processing = order(conn, "processing")
    assert processing["status"] == "processing" and processing["shipment"] is None
    transit = order(conn, "in_transit")
    assert transit["status"] == "shipped" and transit["shipment"]["delivered_at"] is None
    assert transit["shipment"]["promised_by"] > AS_OF.isoformat()
    final = order(conn, "final_sale")["items"]
    assert [i["final_sale"] for i in final].count(True) == 1 and len(final) == 2
    refunded = order(conn, "existing_refund")
    assert refunded["status"] == "returned"
    assert [(r["status"], r["amount"]) for r in refunded["refunds"]] == [("approved", "$89.00")]
    big = order(conn, "over_500")
    assert big["total_cents"] > 50_000 and big["total"] == "$649.00"
    assert order(conn, "personalised")["items"][0]["personalised"]
    priya = find_customer(conn, email=DEMO_CASES["goodwill_used"]["email"])
    assert [c["kind"] for c in priya["credits"]] == ["goodwill"]
    assert order(conn, "goodwill_used")["days_since_delivery"] <= 7


# --- read-only access --------------------------------------------------------------------


def test_readonly_connection_refuses_writes(conn):
    before = table_counts(conn)
    for sql in ("DELETE FROM orders", "DROP TABLE refunds", "UPDATE customers SET tier = 'plus'"):
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute(sql)
    assert table_counts(conn) == before


def test_missing_database_says_how_to_create_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"scripts/make_support_db\.py.*make data"):
        connect_readonly(tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()  # and opening did not create it


# --- lookups -----------------------------------------------------------------------------


def test_lookup_returns_the_senders_account_and_all_their_orders(conn):
    found = lookup(conn, sender="  Maria.Garcia@EXAMPLE.com ")
    assert found["as_of"] == "2026-11-01" and found["customer"]["name"] == "Maria Garcia"
    assert [o["id"] for o in found["orders"]] == ["A10023"]
    assert found["not_found"] == [] and found["mismatch"] is None
    json.dumps(found)  # JSON-serialisable as it is


def test_lookup_of_the_senders_order(conn):
    found = lookup(conn, sender="noah.wilson@example.org", order_ids=["A10078"])
    assert found["customer"]["id"] == 7 and found["orders"][0]["refunds"]
    assert found["not_found"] == [] and found["mismatch"] is None


def test_another_customers_order_is_withheld(conn):
    case = DEMO_CASES["mismatch"]
    found = lookup(conn, sender=case["email"], order_ids=[case["order_id"], "A10023"])
    assert [o["id"] for o in found["orders"]] == ["A10023"]
    assert found["not_found"] == ["A10031"] and "A10031" in found["mismatch"]
    assert "daniel" not in json.dumps(found).lower()  # nothing of the owner leaks
    # An email with no account cannot unlock an order either.
    stranger = lookup(conn, sender="stranger@example.com", order_ids=["A10023"])
    assert stranger["customer"] is None and stranger["orders"] == []
    assert stranger["not_found"] == ["stranger@example.com", "A10023"]


def test_without_a_sender_nothing_is_read(conn):
    # Before, an order id alone identified its owner, and the first matching email was
    # taken as the customer: anyone could read an account by naming it.
    found = lookup(conn, sender=None, order_ids=["a10042"])
    assert found["customer"] is None and found["orders"] == []
    assert found["not_found"] == ["A10042"]
    assert lookup(conn, sender=None) == {
        "as_of": "2026-11-01",
        "customer": None,
        "orders": [],
        "not_found": [],
        "mismatch": None,
    }


def test_unknown_keys_are_reported(conn):
    found = lookup(conn, sender="nobody@example.net", order_ids=["Z99999"])
    assert found["customer"] is None and found["orders"] == []
    assert found["not_found"] == ["nobody@example.net", "Z99999"]
    with pytest.raises(ValueError, match="exactly one"):
        find_customer(conn)


# --- SQL injection -----------------------------------------------------------------------

# Python 3.11+ hands the trace callback SQLite's *expanded* SQL, with each bound value
# re-inserted as a quoted literal. Replacing literals with `?` recovers the statement text
# the code prepared, which must be the same whatever the customer typed.
_LITERAL = re.compile(r"'(?:[^']|'')*'")


def traced(conn: sqlite3.Connection, call: Callable[[], object]) -> list[str]:
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return statements


def prepared(statements: list[str]) -> list[str]:
    return [_LITERAL.sub("?", s) for s in statements]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("key", ["emails", "order_ids"])
@pytest.mark.parametrize("mode", ["readonly", "writable"])
def test_injection_is_inert(db, payload, key, mode):
    opened = connect_readonly(db) if mode == "readonly" else sqlite3.connect(db)
    with closing(opened) as c:
        before = table_counts(c)
        benign = "nobody@example.com" if key == "emails" else "Z99999"
        # order ids are looked up among a real account's orders, so the injected OR could
        # only widen that account's own list
        sender = payload if key == "emails" else "maria.garcia@example.com"
        orders = [payload] if key == "order_ids" else []
        found = lookup(c, sender=sender, order_ids=orders)
        assert found["orders"] == [] and (key == "order_ids" or found["customer"] is None)
        assert len(found["not_found"]) == 1

        def ask(value: str) -> object:
            if key == "emails":
                return lookup(c, sender=value)
            return lookup(c, sender="maria.garcia@example.com", order_ids=[value])

        attack = traced(c, lambda: ask(payload))
        control = traced(c, lambda: ask(benign))
        # The payload reached SQLite, as one properly quoted value ...
        value = payload.strip().lower() if key == "emails" else payload.strip().upper()
        assert any("'" + value.replace("'", "''") + "'" in s for s in attack)
        # ... yet never became SQL: the prepared text is identical to a harmless lookup's.
        assert prepared(attack) == prepared(control)
        for statement in prepared(attack):
            assert payload.lower() not in statement.lower()
            assert not re.search(r"DROP|OR 1=1|OR '1'='1'|--", statement, re.IGNORECASE)

        assert table_counts(c) == before
        assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --- key extraction ----------------------------------------------------------------------


def test_extract_keys_from_a_message():
    text = (
        "Hello, I'm writing from Maria.Garcia@Example.com about order #a10023 (and A10031?). "
        "My old address o.brown99@example.org is wrong; ref 123456 and AB12345 are not orders. "
        "Again: A10023."
    )
    assert extract_keys(text) == {
        "emails": ["maria.garcia@example.com", "o.brown99@example.org"],
        "order_ids": ["A10023", "A10031"],
    }
    assert extract_keys("a12345@example.com") == {"emails": ["a12345@example.com"], "order_ids": []}
    assert extract_keys("no keys here") == {"emails": [], "order_ids": []}


# --- policy ------------------------------------------------------------------------------


def test_policy_splits_into_numbered_rules():
    text = (ROOT / "data" / "support" / "policy.md").read_text(encoding="utf-8")
    assert text.startswith("# ")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    rules = {}
    for section in sections:
        heading, _, body = section.partition("\n")
        match = re.fullmatch(r"(R\d+) · (\S.*)", heading.strip())
        assert match, heading
        assert match[1] not in rules and body.strip()
        rules[match[1]] = body.strip()
    assert 12 <= len(rules) <= 16
    assert list(rules) == [f"R{n}" for n in range(1, len(rules) + 1)]
    assert all(len(re.findall(r"[.!?](?:\s|$)", body)) <= 4 for body in rules.values())


# --- CLI ---------------------------------------------------------------------------------


def test_script_writes_the_database_and_lists_the_demos(db, tmp_path):
    out = tmp_path / "cli.sqlite"
    script = ROOT / "scripts" / "make_support_db.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out), "--seed", "7"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # works from anywhere, not only the repo root
    )
    assert "120 customers" in done.stdout and "A10023" in done.stdout
    assert all(case in done.stdout for case in DEMO_CASES)
    assert dump(out) == dump(db)  # same rows in another interpreter (other hash seed)
