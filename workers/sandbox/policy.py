"""Sandbox policy: which isolation layers a run needs, and what the program gets to see.

The required layers (and the two environment switches that relax or test them), the clean
environment with HOME and TMPDIR inside the working directory, how `python` and other
commands are resolved, the trees the program may read and execute (the Python installation
and system libraries, never writable) and the device files it may use. A layer that cannot
be set up raises `SandboxUnavailable`, whose message says what is missing and what to do.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

ALLOW_WEAKER_ENV = "FOREMAN_SANDBOX_ALLOW_WEAKER"
SIMULATE_MISSING_ENV = "FOREMAN_SANDBOX_SIMULATE_MISSING"  # e.g. "userns,pidns", for tests
REQUIRED_LAYERS = ("landlock", "seccomp", "userns", "pidns")
_SYSTEM_READ = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache"]
_SYSTEM_READ += ["/etc/localtime", "/etc/mime.types", "/etc/fonts"]
DEVICES = {"/dev/null": "rw", "/dev/zero": "r", "/dev/urandom": "r", "/dev/random": "r"}


class SandboxUnavailable(RuntimeError):
    """Isolation cannot be set up here; the message says what is missing and what to do."""


def weaker_allowed() -> bool:
    """Whether FOREMAN_SANDBOX_ALLOW_WEAKER=1 lets runs go ahead without missing layers."""
    return os.environ.get(ALLOW_WEAKER_ENV) == "1"


def required_layers() -> set[str]:
    """The layers a run must have; `SandboxUnavailable` where there can be none (not Linux)."""
    if weaker_allowed():
        return set()
    if sys.platform != "linux":
        raise SandboxUnavailable(explain(f"this is {sys.platform}, and the sandbox needs Linux"))
    return set(REQUIRED_LAYERS)


def explain(error: str) -> str:
    """The `SandboxUnavailable` message for `error`: what is missing and what to do."""
    return (
        f"the sandbox cannot isolate programs here: {error}. See docs/sandbox.md for what it "
        f"needs, or set {ALLOW_WEAKER_ENV}=1 to run with the layers that are available "
        "(isolation_report() lists them)."
    )


def executable(name: str) -> str:
    """The program file for `name`: this interpreter for python/python3, else from PATH."""
    if name in ("python", "python3"):
        return sys.executable
    return shutil.which(name, path=search_path()) or name


def search_path() -> str:
    """The sandbox's PATH: this interpreter's directory first, then the system's."""
    return f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"


def environment(workdir: Path) -> dict[str, str]:
    """The program's whole environment: nothing inherited, HOME and TMPDIR in `workdir`."""
    env = {
        "PATH": search_path(),
        "HOME": str(workdir),
        "XDG_CACHE_HOME": str(workdir / ".cache"),
        "XDG_CONFIG_HOME": str(workdir / ".config"),
        "MPLCONFIGDIR": str(workdir / ".config" / "matplotlib"),
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PYTHONUNBUFFERED": "1",  # output written before a kill is not lost
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # As root the real and effective uids differ (see `launcher/launch.py`), so the loader drops
    # TMPDIR (AT_SECURE); tempfile falls back to TEMP and TMP.
    env |= dict.fromkeys(("TMPDIR", "TEMP", "TMP"), str(workdir / ".tmp"))
    # One thread per numeric library: threads count as processes, and as memory.
    for name in ("OPENBLAS", "OMP", "MKL", "NUMEXPR"):
        env[f"{name}_NUM_THREADS"] = "1"
    return env


@lru_cache(maxsize=1)
def read_roots() -> list[str]:
    """The Python installation and system libraries: readable and executable, never writable."""
    import site
    import sysconfig

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots |= {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {*site.getsitepackages(), str(Path(sys.executable).resolve().parent)}
    home = Path.home().resolve()
    for root in roots:
        if Path(root).resolve() == Path("/") or home.is_relative_to(Path(root).resolve()):
            raise SandboxUnavailable(explain(f"the Python installation at {root} holds {home}"))
    return sorted(roots) + [p for p in _SYSTEM_READ if os.path.exists(p)]
