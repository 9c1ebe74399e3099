"""The worker registry: what the planner may dispatch to, and how each worker is checked."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import lru_cache
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from foreman.core.context import Context
from foreman.workers.spec import WorkerSpec

__all__ = [
    "WorkerRegistry",
    "WorkerSpec",
    "default_registry",
    "discover_workers",
    "registry_for",
]


class WorkerRegistry(Mapping[str, WorkerSpec]):
    """An immutable mapping of worker name to spec."""

    def __init__(self, specs: list[WorkerSpec]):
        names = [s.name for s in specs]
        if clash := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"two workers are named {', '.join(clash)}")
        self._specs = {s.name: s for s in specs}
        for spec in specs:
            unknown = [a for a in spec.alternatives if a not in self._specs]
            if unknown:
                raise ValueError(f"worker {spec.name}: unknown alternatives {unknown}")

    def __getitem__(self, name: str) -> WorkerSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def describe(self) -> str:
        """One line per worker, the way the planner prompt lists them."""
        return "\n".join(
            f"  - {s.name}: {s.description} (capability: {s.capability})"
            for s in self._specs.values()
        )


ENTRY_POINT_GROUP = "foreman.workers"


def _as_specs(obj: Any, origin: str) -> list[WorkerSpec]:
    """A WorkerSpec, a list of them, or a callable returning either."""
    if callable(obj) and not isinstance(obj, WorkerSpec):
        obj = obj()
    specs = obj if isinstance(obj, list | tuple) else [obj]
    for spec in specs:
        if not isinstance(spec, WorkerSpec):
            raise TypeError(f"{origin} gave {type(spec).__name__}, not a WorkerSpec")
    return list(specs)


def discover_workers() -> list[WorkerSpec]:
    """Workers added without editing Foreman: entry points, then `$FOREMAN_WORKERS`.

    A package declares `[project.entry-points."foreman.workers"] name = "pkg.mod:factory"`;
    or `FOREMAN_WORKERS="pkg.mod:factory,other.mod:SPEC"` names them directly. Each target is
    a `WorkerSpec`, a list of them, or a callable returning either.
    """
    specs: list[WorkerSpec] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs += _from(ep.load(), f"entry point {ep.name}")
    for target in filter(None, os.environ.get("FOREMAN_WORKERS", "").split(",")):
        module, _, attr = target.strip().partition(":")
        if not attr:
            raise ValueError(f"FOREMAN_WORKERS entry {target!r} must be module:attribute")
        specs += _from(getattr(import_module(module), attr), f"FOREMAN_WORKERS {target}")
    return specs


def _from(obj: Any, origin: str) -> list[WorkerSpec]:
    """`_as_specs`, each spec marked with where it came from."""
    return [replace(s, origin=origin) for s in _as_specs(obj, origin)]


@lru_cache(maxsize=1)
def default_registry() -> WorkerRegistry:
    """The built-in workers, each spec from its own module, plus discovered ones."""
    from foreman.workers import code, data, llm, research, reviewer, writer
    from foreman.workers.support import classify, lookup, policy, response

    builtin = (research, writer, llm, code, reviewer, data, classify, lookup, policy, response)
    return WorkerRegistry([*(module.spec() for module in builtin), *discover_workers()])


def registry_for(base: WorkerRegistry, ctx: Context) -> WorkerRegistry:
    """`base` plus the workers `ctx.workers_file` declares (read again when it changes).

    Raises:
        WorkersFileError: the file cannot be used; the message names the line.
    """
    if not ctx.workers_file.strip():
        return base
    from foreman.workers.declared.build import declared_workers

    # a registry that already holds this file's workers (resolved once before) is extended
    # from what it held besides them
    file = f"{Path(ctx.workers_file).expanduser().resolve()}:"
    kept = [s for s in base.values() if not s.origin.startswith(file)]
    declared = tuple(declared_workers(ctx.workers_file, tuple(s.name for s in kept)))
    key = (id(base), tuple(id(s) for s in declared))
    if key not in _EXTENDED:  # the same file's registry, not one per node of every run
        _EXTENDED.clear()
        _EXTENDED[key] = WorkerRegistry([*kept, *declared])
    return _EXTENDED[key]


_EXTENDED: dict[tuple[int, tuple[int, ...]], WorkerRegistry] = {}
