"""Run Python as if some of Foreman's extras were not installed.

    python tests/support/without_extras.py postgres,web -m foreman run ...
    python tests/support/without_extras.py all -c "import foreman; ..."

An import hook placed first makes every module an extra installs fail to import, with the
`ModuleNotFoundError` a missing package gives: `import psycopg` raises, and so does
`importlib.util.find_spec("psycopg")`. Programs this process starts (the sandbox's Python)
are not affected.
"""

from __future__ import annotations

import importlib.abc
import os
import runpy
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# The importable names each extra brings (pyproject.toml, [project.optional-dependencies]).
EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": (
        "psycopg",
        "psycopg_binary",
        "psycopg_pool",
        "langgraph.checkpoint.postgres",
        "langgraph.store.postgres",
    ),
    "data": ("pandas", "matplotlib"),
    "web": ("langchain_tavily", "ddgs", "langchain_community"),
    "docs": ("langchain_community", "pypdf", "bs4", "markdownify"),
    "mcp": ("mcp", "langchain_mcp_adapters"),
    "a2a": ("a2a",),
}


class Blocker(importlib.abc.MetaPathFinder):
    """Refuses to find the blocked modules and their submodules."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def blocks(self, fullname: str) -> bool:
        return any(fullname == n or fullname.startswith(n + ".") for n in self.names)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if self.blocks(fullname):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def block(extras: str) -> None:
    """Block the modules of the comma-separated `extras` (`all` for every one)."""
    chosen = list(EXTRAS) if extras == "all" else extras.split(",")
    names = [name for extra in chosen for name in EXTRAS[extra]]
    blocker = Blocker(names)
    for loaded in [m for m in sys.modules if blocker.blocks(m)]:
        del sys.modules[loaded]
    sys.meta_path.insert(0, blocker)


def main(argv: list[str]) -> None:
    """`EXTRAS -m MODULE ARGS...` or `EXTRAS -c CODE ARGS...`."""
    extras, flag, target, *rest = argv
    block(extras)
    sys.path[0] = os.getcwd()  # as `python -m` and `python -c` have it, not this file's folder
    if flag == "-m":
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    elif flag == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
    else:
        raise SystemExit(f"usage: {sys.argv[0]} EXTRAS (-m MODULE | -c CODE) [ARGS...]")


if __name__ == "__main__":
    main(sys.argv[1:])
