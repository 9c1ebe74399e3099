"""Large worker outputs live once in the LangGraph store, keyed by content; state keeps keys.

A checkpointer saves changed channels at every step (SQLite even saves the whole state each
time), and a result also travels as a task write, a dependency and an attempt record. Storing
the bulky fields of a `SubtaskRecord` (its `text`, `output` and each attempt's `output`) once
in the store, under the SHA-256 of their JSON, keeps checkpoints small: a record keeps a
`refs` map from field path to key and an empty placeholder in the field. Identical content
(an accepted attempt's output is the record's output) is stored once.

The store is the one the graph runs with (`compile(store=...)`, the CLI's store beside its
checkpointer, or the LangGraph server's). Without a store nothing moves: records stay whole.
Two small indexes, `("foreman", "uses", KEY)` → thread and `("foreman", "threads", THREAD)` →
key, let deleting a thread drop exactly the outputs no other thread uses, and let
`foreman gc` find threads whose checkpoints were deleted elsewhere (by the server).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, cast

from langgraph.config import get_config, get_store
from langgraph.store.base import BaseStore, GetOp, Item, PutOp, SearchOp

from foreman.core.state import SubtaskRecord
from foreman.core.text import without_nul

OUTPUTS = ("foreman", "outputs")
USES = ("foreman", "uses")
THREADS = ("foreman", "threads")
# Below this many bytes of JSON a field stays in the checkpoint: a store round trip costs
# more than it saves.
INLINE_MAX_BYTES = int(os.environ.get("FOREMAN_INLINE_MAX_BYTES", "1024"))
DEPENDENCY_FIELDS = ("text", "output")


class MissingOutput(RuntimeError):
    """A record refers to an output the store no longer has."""


def run_store() -> BaseStore | None:
    """The store of the running graph, or None (no store, or outside a run)."""
    try:
        return get_store()
    except (RuntimeError, KeyError):
        return None


def thread_id() -> str:
    """The running graph's thread id, or `-`."""
    try:
        return str(get_config()["configurable"].get("thread_id") or "-")
    except (RuntimeError, KeyError):
        return "-"


def _label(thread_id: str) -> str:
    """A thread id as a store namespace label (labels may not contain periods)."""
    return thread_id.replace("%", "%25").replace(".", "%2E") or "-"


def _unlabel(label: str) -> str:
    return label.replace("%2E", ".").replace("%25", "%")


def _use_ops(thread_id: str, keys: Iterable[str]) -> list[PutOp]:
    """Register `thread_id` as a user of the outputs under `keys`, in both indexes."""
    ops = []
    for key in keys:
        ops.append(PutOp((*USES, key), thread_id, {}, index=False))
        ops.append(PutOp((*THREADS, _label(thread_id)), key, {}, index=False))
    return ops


def _fields(rec: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """(path, value) of the fields that may be stored apart."""
    yield "text", rec.get("text")
    yield "output", rec.get("output")
    for i, att in enumerate(rec.get("attempts") or []):
        yield f"attempts/{i}/output", att.get("output")


def _set(rec: dict[str, Any], path: str, value: Any) -> None:
    if path.startswith("attempts/"):
        i = int(path.split("/")[1])
        rec["attempts"][i] = {**rec["attempts"][i], "output": value}
    else:
        rec[path] = value


def content_key(value: Any) -> tuple[str, int]:
    """SHA-256 of a value's canonical JSON, and that JSON's size in bytes."""
    data = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest(), len(data)


async def stow(rec: SubtaskRecord, store: BaseStore | None = None) -> SubtaskRecord:
    """Move a record's large fields to the store; return the record that keeps their keys."""
    store = store or run_store()
    if store is None:
        return rec
    out: dict[str, Any] = {**rec, "attempts": list(rec.get("attempts") or [])}
    refs: dict[str, str] = dict(rec.get("refs") or {})
    blobs: dict[str, Any] = {}
    for path, value in _fields(rec):
        if value is None or value == "" or path in refs:
            continue
        key, size = content_key(value)
        if size <= INLINE_MAX_BYTES:
            continue
        refs[path] = key
        blobs[key] = without_nul(value)  # the store is JSON: PostgreSQL refuses NUL in it
        _set(out, path, "" if isinstance(value, str) else None)
    if not blobs:
        return rec
    thread = thread_id()
    ops = [PutOp(OUTPUTS, key, {"value": value}, index=False) for key, value in blobs.items()]
    await store.abatch(ops + _use_ops(thread, blobs))
    out["refs"] = refs
    return cast(SubtaskRecord, out)


async def load_all(
    records: Mapping[str, Mapping[str, Any]],
    store: BaseStore | None = None,
    fields: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Copies of records keyed by id with their stored fields back (all, or those in `fields`).

    One store round trip for all of them.
    """
    wanted = set(fields) if fields is not None else None
    todo = [
        (sid, path, key)
        for sid, rec in records.items()
        for path, key in (rec.get("refs") or {}).items()
        if wanted is None or path in wanted
    ]
    out = {sid: dict(rec) for sid, rec in records.items()}
    if not todo:
        return out
    store = store or run_store()
    if store is None:
        raise MissingOutput(
            f"subtask {todo[0][0]!r} keeps its output in a store, and this graph runs "
            "without one: compile it with the store it ran with"
        )
    items = await store.abatch([GetOp(OUTPUTS, key) for _, _, key in todo])
    for (sid, path, key), item in zip(todo, items, strict=True):
        if item is None:
            raise MissingOutput(
                f"the output {path} of subtask {sid!r} (sha256 {key[:12]}…) is no longer in "
                "the store"
            )
        rec = out[sid]
        rec["attempts"] = list(rec.get("attempts") or [])
        _set(rec, path, item.value["value"])  # type: ignore[union-attr]
        rec["refs"] = {p: k for p, k in rec["refs"].items() if p != path}
    return out


async def _registrations(store: BaseStore, thread_id: str) -> list[Item]:
    namespace = (*THREADS, _label(thread_id))
    items: list[Item] = []
    while page := await store.asearch(namespace, limit=500, offset=len(items)):
        items += page
    return items


async def forget_thread(store: BaseStore, thread_id: str) -> int:
    """Drop a thread's uses of stored outputs, and each output no other thread uses.

    Three store round trips whatever the number of outputs. Returns how many were deleted.
    """
    namespace = (*THREADS, _label(thread_id))
    keys = await registered_keys(store, thread_id)
    if not keys:
        return 0
    # The uses go first and the thread's index last, so an interrupted call can be repeated.
    await store.abatch([PutOp((*USES, key), thread_id, None) for key in keys])
    users = await store.abatch([SearchOp((*USES, key), limit=1) for key in keys])
    unused = [key for key, found in zip(keys, users, strict=True) if not found]
    await store.abatch(
        [PutOp(OUTPUTS, key, None) for key in unused] + [PutOp(namespace, k, None) for k in keys]
    )
    return len(unused)


async def registered_keys(store: BaseStore, thread_id: str) -> list[str]:
    """The keys of the stored outputs a thread is registered as using."""
    return [item.key for item in await _registrations(store, thread_id)]


async def share_uses(store: BaseStore, source_thread: str, target_thread: str) -> int:
    """Register `target_thread` as a user of every output `source_thread` uses (a thread copy).

    Returns how many outputs that is.
    """
    keys = await registered_keys(store, source_thread)
    if keys:
        await store.abatch(_use_ops(target_thread, keys))
    return len(keys)


async def last_registration(store: BaseStore, thread_id: str) -> float | None:
    """Unix time a thread last stored an output, or None if it has none registered."""
    items = await _registrations(store, thread_id)
    if not items:
        return None
    newest = max(item.updated_at for item in items)
    if newest.tzinfo is None:  # the SQLite store gives naive UTC times
        newest = newest.replace(tzinfo=UTC)
    return newest.timestamp()


async def registered_threads(store: BaseStore) -> list[str]:
    """Every thread the store has recorded uses of stored outputs for."""
    labels: list[str] = []
    while page := await store.alist_namespaces(prefix=THREADS, limit=500, offset=len(labels)):
        labels += [ns[len(THREADS)] for ns in page if len(ns) > len(THREADS)]
    return [_unlabel(label) for label in labels]


def referenced_keys(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every store key the records refer to."""
    return {key for rec in records for key in (rec.get("refs") or {}).values()}
