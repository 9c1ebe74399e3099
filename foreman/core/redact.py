"""Keeps credentials out of error text before it reaches state, audit files or a terminal.

A provider's error body is not ours: some servers echo the request's headers back, so a
`401` can carry the `Authorization` header with the key in it. Anything that turns such
text into a message goes through `redact` first.
"""

from __future__ import annotations

import os
import re

REDACTED = "[redacted]"
_SECRET_ENV = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.I)
_PATTERNS = [
    # `Authorization: Bearer sk-...`, `"authorization": "..."`, `api_key=...`
    re.compile(
        r"""(?i)((?:authorization|x-api-key|api[_-]?key|access[_-]?token)["']?\s*[:=]\s*["']?)"""
        r"""(?:bearer\s+|basic\s+)?[^\s"',;}]+"""
    ),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{8,}"),
    # credentials inside a URL: scheme://user:password@host
    re.compile(r"(://[^/\s:@]+:)[^/\s@]+(?=@)"),
]


def _known_secrets() -> list[str]:
    """Values of environment variables that look like credentials (longest first)."""
    values = {
        v for k, v in os.environ.items() if _SECRET_ENV.search(k) and v and len(v.strip()) >= 6
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with API keys, bearer tokens and URL passwords replaced by `[redacted]`."""
    for secret in _known_secrets():
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text
