"""Helpers for the sandbox tests: a program as files, host processes by marker, a marker."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest


def code(source: str) -> dict[str, str]:
    """`source` (dedented) as the files of a run: `main.py`."""
    return {"main.py": textwrap.dedent(source)}


def processes_with(marker: str) -> list[int]:
    """Host PIDs whose command line contains `marker` (seen from outside any namespace)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture
def marker() -> str:
    """A unique string to pass on a sandboxed command line, to find its processes by."""
    return f"sandbox-test-{uuid.uuid4().hex}"
