"""`${NAME}` in a workers file's headers and env: the environment variable, read when used.

A token then lives in the environment (a secret store, a `.env`), not in the file.
"""

from __future__ import annotations

import os
import re

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnsetVariable(LookupError):
    """A `${NAME}` whose variable is not set; the message names it, never a value."""


def expanded(values: dict[str, str] | None, where: str) -> dict[str, str] | None:
    """`values` with each `${NAME}` replaced by the environment variable `NAME`.

    Raises:
        UnsetVariable: a variable is not set (`where` says which table uses it).
    """
    if values is None:
        return None

    def value(match: re.Match[str]) -> str:
        if (found := os.environ.get(match.group(1))) is None:
            raise UnsetVariable(f"{where} uses ${{{match.group(1)}}}, which is not set")
        return found

    return {key: _VARIABLE.sub(value, text) for key, text in values.items()}
