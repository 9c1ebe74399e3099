"""Lay out `foreman` for the type checker as it installs: build/typecheck/foreman.

pyproject maps `foreman.orchestration` to graph/ and `foreman.workers` to workers/ (`package-dir`).
Installed, that is one folder tree; in a checkout, an editable install reaches it through an
import hook that mypy does not run. This makes the same tree out of symbolic links, so
`mypy` (mypy_path = build/typecheck) checks the real files under their real module names.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(out: Path = ROOT / "build" / "typecheck") -> int:
    """(Re)create the link tree: every top-level package of `foreman` at its install path."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    shutil.rmtree(out, ignore_errors=True)
    home = out / "foreman"
    home.mkdir(parents=True)
    mapped = {name.split(".", 1)[1]: src for name, src in package_dir.items() if "." in name}
    for entry in sorted((ROOT / package_dir["foreman"]).iterdir()):
        if entry.name not in mapped and entry.name != "__pycache__":
            (home / entry.name).symlink_to(entry)
    for sub, src in mapped.items():
        (home / sub).symlink_to(ROOT / src, target_is_directory=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
