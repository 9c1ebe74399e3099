"""The sandbox's working directory: written before a run, collected from and removed after.

Each run gets a fresh private directory from `mkdtemp` holding only the files given (paths
must be relative, without `..`), plus the HOME-like directories the environment points at.
After the run, regular files matching the `collect` globs come back, never through a
symlink; then the directory goes, whatever the program did to its permissions.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from foreman.workers.sandbox.limits import SandboxLimits

_INTERNAL_DIRS = (".tmp", ".cache", ".config")  # HOME-like state, never collected


def relative(name: str) -> PurePosixPath:
    """`name` as a relative path; `ValueError` if it is empty, absolute or contains `..`."""
    path = PurePosixPath(name)
    if not name or "\0" in name or path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"sandbox paths must be relative, without '..': {name!r}")
    return path


def as_bytes(data: str | bytes) -> bytes:
    """File content as bytes; text is UTF-8 encoded."""
    return data.encode() if isinstance(data, str) else bytes(data)


def prepare(content: dict[PurePosixPath, bytes]) -> Path:
    """A fresh private working directory holding `content`."""
    workdir = Path(os.path.realpath(tempfile.mkdtemp(prefix="foreman-sandbox-")))
    try:
        for rel, data in content.items():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_bytes(data)
        for name in _INTERNAL_DIRS:
            (workdir / name).mkdir(exist_ok=True)
        if os.getuid() == 0:
            share_with_group(workdir)
    except BaseException:
        remove(workdir)
        raise
    return workdir


def share_with_group(workdir: Path) -> None:
    """Make the workdir group-accessible when running as root.

    The sandbox's real uid is then not 0 (see `launcher/launch.py`), and access(2) checks the real
    uid: with group rights (the gid stays 0) `os.access(path, os.W_OK)` tells the truth, as
    matplotlib needs. Other users still get nothing: mode 0770, group root.
    """
    for parent, _, names in os.walk(workdir):
        os.chmod(parent, 0o770)
        for name in names:
            os.chmod(os.path.join(parent, name), 0o660)


def remove(workdir: Path) -> None:
    """Delete `workdir` and everything in it, whatever the program did to its permissions."""
    try:
        # The program may have made directories without permissions (mkdir mode 0).
        for parent, dirs, _ in os.walk(workdir):
            for name in dirs:
                path = os.path.join(parent, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o700)
        shutil.rmtree(workdir)
    except (OSError, RecursionError):  # e.g. directories nested thousands deep
        subprocess.run(["chmod", "-R", "u+rwx", "--", workdir], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", "--", workdir], check=False, capture_output=True)


def collect(workdir: Path, patterns: list[str], limits: SandboxLimits) -> dict[str, bytes]:
    """Regular files matching `patterns`, never through a symlink (the sandbox is dead now)."""
    found: dict[str, bytes] = {}
    try:
        paths = sorted({p for pattern in patterns for p in workdir.glob(pattern)})
    except (OSError, RecursionError):  # a hostile tree: return nothing rather than fail
        return found
    for path in paths:
        rel = path.relative_to(workdir).as_posix()
        if rel.split("/")[0] in _INTERNAL_DIRS or os.path.realpath(path) != str(path):
            continue  # HOME-like state, or a symlink on the way
        if len(found) >= limits.max_files_returned:
            break
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_size <= limits.max_file_bytes:
                found[rel] = f.read(limits.max_file_bytes)
    return found
