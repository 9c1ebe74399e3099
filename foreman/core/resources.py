"""Where Foreman's package data lives: prompts, the default corpus, policy and sample data.

In a checkout they are the top-level `prompts/` and `data/` folders; installed, they are
`foreman/prompts` and `foreman/data` (pyproject's `package-dir` maps one onto the other).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# Foreman is installed as plain files (wheel or editable), never from a zip, so the
# resource roots are real folders that `Path` and `glob` can read.
PROMPTS_DIR = Path(str(files("foreman.prompts")))
DATA_DIR = Path(str(files("foreman.data")))
