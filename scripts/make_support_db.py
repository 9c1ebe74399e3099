"""Create the sample shop database the customer-service workers read.

Usage, from the repository root:

    python scripts/make_support_db.py [--out data/support/shop.sqlite] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python scripts/...`, Python puts scripts/ on the path, not the repo root; without
# this the script would need Foreman installed to find `workers`.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from foreman.workers.support.database import connect_readonly, table_counts  # noqa: E402
from foreman.workers.support.sample import DEMO_CASES, generate  # noqa: E402

DEFAULT_OUT = ROOT / "data" / "support" / "shop.sqlite"


def main(argv: list[str] | None = None) -> int:
    """Generate the database, then print its row counts and the demo cases."""
    parser = argparse.ArgumentParser(description="Create the sample shop database.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="SQLite file to write")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--customers", type=int, default=120, help="customers (default 120)")
    parser.add_argument(
        "--as-of", type=date.fromisoformat, default=date(2026, 11, 1), help="'today', YYYY-MM-DD"
    )
    args = parser.parse_args(argv)
    path = generate(args.out, seed=args.seed, customers=args.customers, as_of=args.as_of)
    with closing(connect_readonly(path)) as conn:
        counts = table_counts(conn)
    del counts["meta"]
    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
    print(f"wrote {path} (seed {args.seed}, as_of {args.as_of}): {summary}")
    width = max(len(case) for case in DEMO_CASES)
    for case, demo in DEMO_CASES.items():
        print(f"  {case:<{width}}  {demo['order_id']}  {demo['email']:<27} {demo['shows']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
