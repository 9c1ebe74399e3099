"""Ages given on the command line and in FOREMAN_THREAD_TTL: `30m`, `12h`, `7d`, `2w`."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """Seconds in an age like `90s`, `30m`, `12h`, `7d`, `2w` (a bare number is days)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not found:
        raise ValueError(f"not an age: {text!r} (use e.g. 30m, 12h, 7d, 2w)")
    return float(found.group(1)) * UNITS[found.group(2) or "d"]
