"""A deterministic sample database of an online home, kitchen and electronics shop.

`generate` writes it (`make data` / `scripts/make_support_db.py`); `database.py` reads it.
`DEMO_CASES` lists the fixed customers and orders examples and tests rely on.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from foreman.core.context import DEFAULT_SUPPORT_DB
from foreman.workers.support.database import TABLES, placeholders

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (
        substr(email, instr(email, '@')) IN ('@example.com', '@example.org', '@example.net')
        AND instr(email, '@') > 1
    ),
    name TEXT NOT NULL CHECK (name <> ''),
    country TEXT NOT NULL CHECK (country IN ('US', 'CA')),
    created_at TEXT NOT NULL CHECK (date(created_at) = created_at),
    tier TEXT NOT NULL DEFAULT 'standard' CHECK (tier IN ('standard', 'plus')),
    marketing_opt_in INTEGER NOT NULL DEFAULT 0 CHECK (marketing_opt_in IN (0, 1))
);
CREATE TABLE products (
    sku TEXT PRIMARY KEY CHECK (sku GLOB '[A-Z][A-Z][A-Z]-*'),
    name TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('home', 'kitchen', 'electronics')),
    price_cents INTEGER NOT NULL CHECK (price_cents > 0),
    final_sale INTEGER NOT NULL DEFAULT 0 CHECK (final_sale IN (0, 1)),
    perishable INTEGER NOT NULL DEFAULT 0 CHECK (perishable IN (0, 1)),
    personalised INTEGER NOT NULL DEFAULT 0 CHECK (personalised IN (0, 1))
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY CHECK (id GLOB '[A-Z][0-9][0-9][0-9][0-9][0-9]'),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    placed_at TEXT NOT NULL CHECK (datetime(placed_at) IS NOT NULL),
    status TEXT NOT NULL
        CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled', 'returned')),
    shipping_address TEXT NOT NULL,
    shipping_cents INTEGER NOT NULL CHECK (shipping_cents >= 0),
    total_cents INTEGER NOT NULL CHECK (total_cents >= shipping_cents),
    currency TEXT NOT NULL DEFAULT 'USD' CHECK (currency = 'USD'),
    payment_method TEXT NOT NULL
        CHECK (payment_method IN ('card', 'paypal', 'apple_pay', 'gift_card'))
);
CREATE INDEX orders_by_customer ON orders (customer_id, placed_at);
CREATE TABLE order_items (
    order_id TEXT NOT NULL REFERENCES orders (id),
    sku TEXT NOT NULL REFERENCES products (sku),
    qty INTEGER NOT NULL CHECK (qty > 0),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX order_items_by_sku ON order_items (sku);
CREATE TABLE shipments (
    order_id TEXT PRIMARY KEY REFERENCES orders (id),
    carrier TEXT NOT NULL CHECK (carrier IN ('UPS', 'USPS', 'FedEx', 'Canada Post')),
    tracking_no TEXT NOT NULL UNIQUE,
    shipped_at TEXT NOT NULL CHECK (date(shipped_at) = shipped_at),
    promised_by TEXT NOT NULL CHECK (date(promised_by) = promised_by AND promised_by > shipped_at),
    delivered_at TEXT CHECK (delivered_at IS NULL
        OR (date(delivered_at) = delivered_at AND delivered_at > shipped_at))
);
CREATE TABLE refunds (
    id INTEGER PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL
        CHECK (status IN ('requested', 'pending_review', 'approved', 'paid', 'rejected')),
    created_at TEXT NOT NULL CHECK (date(created_at) = created_at),
    reason TEXT NOT NULL
);
CREATE INDEX refunds_by_order ON refunds (order_id);
CREATE TABLE credits (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    order_id TEXT REFERENCES orders (id),
    kind TEXT NOT NULL CHECK (kind IN ('goodwill', 'late_delivery')),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    created_at TEXT NOT NULL CHECK (date(created_at) = created_at),
    note TEXT NOT NULL
);
CREATE INDEX credits_by_customer ON credits (customer_id, created_at);
"""


@dataclass(frozen=True)
class _Product:
    sku: str
    name: str
    category: str
    price_cents: int
    final_sale: bool = False
    perishable: bool = False
    personalised: bool = False


CATALOG = (
    _Product("KIT-KTL-17", "Gooseneck Electric Kettle 1.7 L", "kitchen", 6490),
    _Product("KIT-TST-02", "Two-Slice Toaster", "kitchen", 4900),
    _Product("KIT-AFR-55", "Air Fryer 5.5 qt", "kitchen", 12900),
    _Product("KIT-BLN-10", "High-Speed Blender", "kitchen", 8900),
    _Product("KIT-ESP-DB", "Dual-Boiler Espresso Machine", "kitchen", 64900),
    _Product("KIT-MXR-45", "Stand Mixer 4.5 qt", "kitchen", 27900),
    _Product("KIT-KNF-08", "Chef's Knife 8 in", "kitchen", 7900),
    _Product("KIT-PAN-28", "Non-Stick Frying Pan 28 cm", "kitchen", 3900),
    _Product("KIT-GFS-10", "Glass Food Storage Set (10 pc)", "kitchen", 4500),
    _Product("KIT-SCL-01", "Digital Kitchen Scale", "kitchen", 2500),
    _Product("KIT-DUT-CL", "Cast-Iron Dutch Oven (Clearance)", "kitchen", 5995, final_sale=True),
    _Product("KIT-COF-1K", "Single-Origin Coffee Beans 1 kg", "kitchen", 3400, perishable=True),
    _Product("KIT-TEA-12", "Loose-Leaf Tea Sampler (12 tins)", "kitchen", 2200, perishable=True),
    _Product("KIT-CBD-EN", "Engraved Walnut Cutting Board", "kitchen", 7200, personalised=True),
    _Product("HOM-TWL-04", "Linen Tea Towels (set of 4)", "home", 2400),
    _Product("HOM-DUV-QN", "Cotton Duvet Cover, Queen", "home", 8900),
    _Product("HOM-LMP-01", "Ceramic Table Lamp", "home", 6900),
    _Product("HOM-RUG-58", "Wool Area Rug 5 x 8 ft", "home", 24900),
    _Product("HOM-CDL-03", "Soy Candle Trio", "home", 3200),
    _Product("HOM-PIL-02", "Down-Alternative Pillows (pair)", "home", 5900),
    _Product("HOM-THR-CL", "Knit Throw Blanket (Clearance)", "home", 2900, final_sale=True),
    _Product("HOM-TWL-MN", "Monogrammed Bath Towel Set", "home", 5400, personalised=True),
    _Product("ELE-HP-NC1", "Noise-Cancelling Headphones", "electronics", 17900),
    _Product("ELE-SPK-BT", "Portable Bluetooth Speaker", "electronics", 7900),
    _Product("ELE-VAC-R1", "Robot Vacuum", "electronics", 29900),
    _Product("ELE-PLG-04", "Smart Plug (4-pack)", "electronics", 3900),
    _Product("ELE-CHG-65", "65 W USB-C Charger", "electronics", 4500),
    _Product("ELE-CAM-IN", "Indoor Security Camera", "electronics", 8900),
    _Product("ELE-TV-55U", '55" 4K Smart TV', "electronics", 54900),
    _Product(
        "ELE-BLB-CL", "Smart Bulb Starter Kit (Clearance)", "electronics", 3500, final_sale=True
    ),
)
_BY_SKU = {p.sku: p for p in CATALOG}


@dataclass(frozen=True)
class _Demo:
    """A fixed demo customer with one order; days count back from `as_of`."""

    email: str
    order_id: str
    skus: str  # space-separated, one of each
    placed: int
    shipped: int | None = None
    promised: int | None = None  # negative: a date still in the future
    delivered: int | None = None
    tier: str = "standard"
    returned: int | None = None  # when the return arrived; its refund is approved, not yet paid
    goodwill: int | None = None  # when a $15 goodwill credit was issued

    @property
    def name(self) -> str:
        return self.email.split("@")[0].replace(".", " ").title()


# Aligned as a table: placed, shipped, promised, delivered (days before as_of).
# fmt: off
_DEMOS = {
    "returnable":      _Demo("maria.garcia@example.com", "A10023", "KIT-KTL-17", 17, 16, 11, 12),
    "outside_window":  _Demo("daniel.kim@example.com", "A10031", "KIT-TST-02", 52, 51, 44, 45),
    "late_delivery":   _Demo("aisha.khan@example.org", "A10042", "HOM-CDL-03 HOM-TWL-04",
                             26, 25, 21, 16, tier="plus"),
    "processing":      _Demo("tom.becker@example.net", "A10057", "ELE-VAC-R1", 1),
    "in_transit":      _Demo("lucia.rossi@example.com", "A10064", "ELE-HP-NC1", 4, 2, -3),
    "final_sale":      _Demo("olivia.brown@example.com", "A10071", "KIT-DUT-CL HOM-TWL-04",
                             14, 13, 9, 9),
    "existing_refund": _Demo("noah.wilson@example.org", "A10078", "KIT-BLN-10",
                             31, 30, 25, 26, returned=4),
    "over_500":        _Demo("sofia.martinez@example.com", "A10085", "KIT-ESP-DB", 11, 10, 6, 7),
    "personalised":    _Demo("emma.schmidt@example.net", "A10090", "KIT-CBD-EN", 9, 8, 4, 4),
    "goodwill_used":   _Demo("priya.patel@example.com", "A10096", "KIT-GFS-10",
                             6, 5, 2, 3, goodwill=100),
}
# fmt: on

_SHOWS = {
    "returnable": "kettle delivered 12 days ago, on time: inside the 30-day return window",
    "outside_window": "toaster delivered 45 days ago: outside the 30-day return window",
    "late_delivery": "Plus member; delivered 5 days after the promised date, $6.95 shipping paid",
    "processing": "robot vacuum ordered yesterday, still processing: cancellable, address editable",
    "in_transit": "headphones shipped 2 days ago, in transit, promised 3 days from now",
    "final_sale": "delivered 9 days ago: a final-sale Dutch oven and returnable tea towels",
    "existing_refund": "returned; received 4 days ago, $89.00 refund approved but not yet paid",
    "over_500": "$649.00 espresso machine delivered 7 days ago: refund needs a supervisor",
    "personalised": "engraved cutting board delivered 4 days ago: personalised, not returnable",
    "goodwill_used": "delivered 3 days ago (7-day damage window); goodwill credit 100 days ago",
    "mismatch": "Maria asks about Daniel Kim's order A10031: it must be withheld, not shown",
}

DEMO_CASES: dict[str, dict[str, str]] = {
    case: {"email": d.email, "order_id": d.order_id, "shows": _SHOWS[case]}
    for case, d in _DEMOS.items()
}
"""Fixed customers and orders for examples and tests: case -> email, order_id, shows."""
DEMO_CASES["mismatch"] = {  # Maria's email with Daniel's order id
    "email": _DEMOS["returnable"].email,
    "order_id": _DEMOS["outside_window"].order_id,
    "shows": _SHOWS["mismatch"],
}

_FIRST = (
    "James Olivia Liam Ava Ethan Mia Lucas Chloe Mateo Zoe Aiden Grace Omar Hana Diego Leila "
    "Samuel Nora Kwame Ingrid Rohan Mei Felix Amara Hugo Yara Caleb Elena Tariq Freya Jonah "
    "Sakura Marco Isla Nikhil Rosa Theo Ada Malik Clara"
).split()
_LAST = (
    "Smith Johnson Lee Nguyen Brown Patel Anderson Thompson O'Brien Moreno Walker Chen Haddad "
    "Novak Fischer Okafor Silva Yamamoto Kowalski Reyes Murphy Dubois Larsen Ahmed Russo Park "
    "Jensen Costa Hughes Bennett Ali Schneider Tanaka Campbell Foster Mendes Ivanova Sato Price "
    "Romero"
).split()
# fmt: off
_US_CITIES = (
    ("Portland", "OR", "972"), ("Austin", "TX", "787"), ("Columbus", "OH", "432"),
    ("Denver", "CO", "802"), ("Raleigh", "NC", "276"), ("Madison", "WI", "537"),
    ("Sacramento", "CA", "958"), ("Tampa", "FL", "336"), ("Minneapolis", "MN", "554"),
    ("Pittsburgh", "PA", "152"), ("Boise", "ID", "837"), ("Richmond", "VA", "232"),
)
_CA_CITIES = (
    ("Toronto", "ON", "M5V"), ("Vancouver", "BC", "V6B"), ("Calgary", "AB", "T2P"),
    ("Ottawa", "ON", "K1P"), ("Halifax", "NS", "B3H"),
)
_STREETS = (
    "Maple Ave", "Oak St", "Cedar Ln", "Elm St", "Pine Rd", "Willow Way", "Lakeview Dr",
    "Highland Ave", "River Rd", "Park Pl", "Chestnut St", "Birch Ct",
)
# fmt: on
_FIRST_ORDER_NO = 10100  # demo orders own A10001-A10099, so random ids never collide with them
_FREE_SHIPPING_FROM, _SHIPPING_FEE = 7500, 695


_Life = tuple[str, int | None, int | None, int | None]  # status, shipped, promised, delivered
_US_CARRIERS = ("UPS", "USPS", "FedEx")
_GOODWILL_NOTES = (
    "goodwill: slow reply from support",
    "goodwill: missing assembly leaflet",
    "goodwill: courier left the parcel in the rain",
)


class _Builder:
    """Accumulates rows for every table; all randomness comes from one seeded `rng`."""

    def __init__(self, rng: random.Random, as_of: date) -> None:
        self.rng, self.as_of = rng, as_of
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        self._tracking: set[str] = set()  # membership tests only: set order is not seeded

    def day(self, days_before: int) -> str:
        return (self.as_of - timedelta(days=days_before)).isoformat()

    def address(self, country: str) -> str:
        rng, street = self.rng, self.rng.choice(_STREETS)
        if country == "CA":
            city, prov, fsa = rng.choice(_CA_CITIES)
            ldu = f"{rng.randint(1, 9)}{rng.choice('ABCEGHJKLMNPRSTVWXYZ')}{rng.randint(0, 9)}"
            return f"{rng.randint(10, 2999)} {street}, {city}, {prov} {fsa} {ldu}, Canada"
        city, state, zip3 = rng.choice(_US_CITIES)
        return f"{rng.randint(10, 9999)} {street}, {city}, {state} {zip3}{rng.randint(10, 99)}, USA"

    def tracking(self, carrier: str) -> str:
        while True:
            if carrier == "UPS":
                number = "1Z" + self._chars("0123456789ABCDEFGHJKLMNPRSTVWXYZ", 6) + "03"
                number += self._chars("0123456789", 8)
            else:
                number = self._chars("0123456789", {"USPS": 22, "FedEx": 12}.get(carrier, 16))
            if number not in self._tracking:
                self._tracking.add(number)
                return number

    def _chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def customer(
        self, cid: int, name: str, email: str, country: str, tier: str, since: int
    ) -> None:
        opt_in = int(self.rng.random() < 0.4)
        self.rows["customers"].append((cid, email, name, country, self.day(since), tier, opt_in))

    def order(
        self,
        oid: str,
        cid: int,
        country: str,
        items: Sequence[tuple[str, int]],
        placed: int,
        life: _Life,
    ) -> tuple[int, int]:
        """Add an order with its items and shipment; return (subtotal, shipping) in cents."""
        rng, (status, shipped, promised, delivered) = self.rng, life
        for sku, qty in items:
            self.rows["order_items"].append((oid, sku, qty, _BY_SKU[sku].price_cents))
        subtotal = sum(qty * _BY_SKU[sku].price_cents for sku, qty in items)
        fee = 0 if subtotal >= _FREE_SHIPPING_FROM else _SHIPPING_FEE
        pay = rng.choices(("card", "paypal", "apple_pay", "gift_card"), weights=(6, 3, 2, 1))[0]
        placed_at = f"{self.day(placed)}T{rng.randint(7, 22):02d}:{rng.randint(0, 59):02d}:00"
        address = self.address(country)
        row = (oid, cid, placed_at, status, address, fee, subtotal + fee, "USD", pay)
        self.rows["orders"].append(row)
        if shipped is not None and promised is not None:
            carrier = rng.choice(("Canada Post", "UPS") if country == "CA" else _US_CARRIERS)
            arrived = None if delivered is None else self.day(delivered)
            ship = (oid, carrier, self.tracking(carrier), self.day(shipped), self.day(promised))
            self.rows["shipments"].append((*ship, arrived))
        return subtotal, fee

    def refund(self, oid: str, cents: int, day: int, reason: str, status: str = "") -> None:
        # A refund is paid about a week after it is approved; above $500 it waits for review.
        if not status:
            status = "paid" if day >= 8 else "pending_review" if cents > 50000 else "approved"
        rows = self.rows["refunds"]
        rows.append((len(rows) + 1, oid, cents, status, self.day(day), reason))

    def credit(self, cid: int, oid: str | None, kind: str, cents: int, day: int, note: str) -> None:
        rows = self.rows["credits"]
        rows.append((len(rows) + 1, cid, oid, kind, cents, self.day(day), note))


def _add_demos(b: _Builder) -> None:
    for cid, d in enumerate(_DEMOS.values(), start=1):
        b.customer(cid, d.name, d.email, "US", d.tier, since=d.placed + 90 * cid)
        status = "processing" if d.shipped is None else "shipped"
        if d.delivered is not None:
            status = "delivered" if d.returned is None else "returned"
        life = (status, d.shipped, d.promised, d.delivered)
        subtotal, _ = b.order(
            d.order_id, cid, "US", [(s, 1) for s in d.skus.split()], d.placed, life
        )
        if d.returned is not None:
            reason = "return received unused (customer's own label)"
            b.refund(d.order_id, subtotal, d.returned, reason, status="approved")
        if d.goodwill is not None:
            b.credit(cid, None, "goodwill", 1500, d.goodwill, _GOODWILL_NOTES[2])


def _lifecycle(rng: random.Random, placed: int) -> _Life:
    """Where an order placed `placed` days before as_of has got to by as_of."""
    if rng.random() < 0.05:
        return "cancelled", None, None, None
    shipped = placed - rng.choice((0, 1, 1, 2))
    if shipped < 0:
        return "processing", None, None, None
    promised = shipped - rng.randint(5, 7)
    delivered = shipped - rng.choices(range(2, 9), weights=(4, 6, 6, 4, 2, 1, 1))[0]
    if delivered < 0:
        return "shipped", shipped, promised, None
    return "delivered", shipped, promised, delivered


def _add_random(b: _Builder, first_id: int, count: int) -> None:
    rng, taken = b.rng, {d.email for d in _DEMOS.values()}
    specs: list[tuple[int, int, str, str, list[tuple[str, int]]]] = []
    for cid in range(first_id, first_id + count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        local = f"{first}.{last}".lower().replace("'", "")
        domain = rng.choice(("example.com", "example.com", "example.org", "example.net"))
        email, n = f"{local}@{domain}", 1
        while email in taken:
            n += 1
            email = f"{local}{n}@{domain}"
        taken.add(email)
        country = "CA" if rng.random() < 0.15 else "US"
        tier = "plus" if rng.random() < 0.2 else "standard"
        since = rng.randint(20, 1100)
        b.customer(cid, f"{first} {last}", email, country, tier, since)
        if rng.random() < 0.06:
            day = rng.randint(0, min(since, 360))
            cents, note = rng.choice((1000, 1500, 2000)), rng.choice(_GOODWILL_NOTES)
            b.credit(cid, None, "goodwill", cents, day, note)
        for _ in range(rng.choices(range(5), weights=(2, 5, 3, 2, 1))[0]):
            products = rng.sample(CATALOG, k=rng.choices((1, 2, 3), weights=(6, 3, 1))[0])
            items = [
                (p.sku, rng.choice((1, 1, 1, 2)) if p.price_cents < 5000 else 1) for p in products
            ]
            specs.append((rng.randint(0, min(120, since)), cid, country, tier, items))
    specs.sort(key=lambda s: (-s[0], s[1]))  # ids follow placement order, like a real sequence
    number = _FIRST_ORDER_NO
    for placed, cid, country, tier, items in specs:
        oid, number = f"A{number}", number + rng.randint(1, 3)
        status, shipped, promised, delivered = _lifecycle(rng, placed)
        returned = None
        excluded = any(
            _BY_SKU[s].final_sale or _BY_SKU[s].perishable or _BY_SKU[s].personalised
            for s, _ in items
        )
        if delivered is not None and delivered >= 6 and not excluded and rng.random() < 0.1:
            returned, status = rng.randint(max(0, delivered - 30), delivered - 5), "returned"
        subtotal, fee = b.order(
            oid, cid, country, items, placed, (status, shipped, promised, delivered)
        )
        if status == "cancelled":
            b.refund(oid, subtotal + fee, max(0, placed - 1), "order cancelled before shipment")
        elif returned is not None:
            b.refund(oid, subtotal, returned, "return received unused")
        elif delivered is not None and rng.random() < 0.05:
            sku, _ = items[0]
            reported = rng.randint(max(0, delivered - 7), delivered)
            reason = f"{_BY_SKU[sku].name} arrived damaged; photo on file"
            b.refund(oid, _BY_SKU[sku].price_cents, reported, reason)
        late = delivered is not None and promised is not None and delivered < promised
        if late and delivered is not None and rng.random() < 0.6:  # R7 compensation, given
            day = max(0, delivered - 1)
            if fee:
                b.refund(oid, fee, day, "late delivery: shipping fee")
            if tier == "plus":
                b.credit(cid, oid, "late_delivery", 1000, day, "late delivery, Plus member")


def generate(
    path: str | Path, *, seed: int = 7, customers: int = 120, as_of: date = date(2026, 11, 1)
) -> Path:
    """Write (or overwrite) the sample shop database and return its path.

    The same seed, customer count and `as_of` always give the same rows. Customers 1-10 and
    their orders are the fixed `DEMO_CASES`; the rest are random over the 120 days before
    `as_of`, which the database stores in `meta` as "today".

    Args:
        path: Where to write the SQLite file; parent folders are created.
        seed: Seed of the random generator.
        customers: Total number of customers, the demo customers included.
        as_of: The date the sample data treats as today.

    Raises:
        ValueError: If `customers` is smaller than the number of demo customers.
    """
    if customers < len(_DEMOS):
        raise ValueError(f"customers must be at least {len(_DEMOS)} (the demo customers)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    b = _Builder(random.Random(seed), as_of)
    b.rows["meta"] = [("as_of", as_of.isoformat()), ("seed", str(seed)), ("currency", "USD")]
    b.rows["products"] = [
        (p.sku, p.name, p.category, p.price_cents, p.final_sale, p.perishable, p.personalised)
        for p in CATALOG
    ]
    _add_demos(b)
    _add_random(b, len(_DEMOS) + 1, customers - len(_DEMOS))
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(SCHEMA)
        with conn:
            for table in TABLES:  # parents before children, so every foreign key resolves
                if rows := b.rows[table]:
                    conn.executemany(
                        f"INSERT INTO {table} VALUES ({placeholders(len(rows[0]))})", rows
                    )
    finally:
        conn.close()
    os.replace(tmp, path)  # atomic, so a reader never opens a half-written database
    return path


def default_database(path: str | Path) -> Path:
    """`path`, or where the sample database is when `path` is the default and not yet made.

    A checkout makes it with `make data`; an installed Foreman (a wheel has no generated
    files) makes it on first use, next to its package data or, where that is read-only, in
    the user's cache folder.
    """
    path = Path(path)
    if path != DEFAULT_SUPPORT_DB or path.is_file():
        return path
    if os.access(path.parent, os.W_OK):
        return generate(path)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "foreman"
    fallback = cache / path.name
    return fallback if fallback.is_file() else generate(fallback)
