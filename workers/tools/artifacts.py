"""Content-addressed storage for files workers produce (plots, exports).

State keeps a small reference (name, digest, path, size); the bytes are written once under
`artifacts_dir/<sha256><suffix>`, however many checkpoints mention them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, Field

MEDIA_TYPES = {".png": "image/png", ".csv": "text/csv", ".json": "application/json"}


class Artifact(BaseModel):
    """A reference to a stored file."""

    name: str = Field(description="File name the worker gave it.")
    sha256: str = Field(description="Digest of the content: its address.")
    path: str = Field(description="Where the content is stored.")
    bytes: int = Field(description="Size of the content.")
    media_type: str = Field(default="application/octet-stream")


def store(name: str, data: bytes, root: str | Path) -> Artifact:
    """Write `data` under its digest (once), and return the reference."""
    digest = hashlib.sha256(data).hexdigest()
    suffix = Path(name).suffix.lower()
    target = Path(root) / f"{digest}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f"{suffix}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: a reader never sees half a file
    return Artifact(
        name=name,
        sha256=digest,
        path=str(target),
        bytes=len(data),
        media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"),
    )


def load(artifact: Artifact | dict[str, object]) -> bytes:
    """Read a stored artifact back, checking its digest."""
    ref = artifact if isinstance(artifact, Artifact) else Artifact.model_validate(artifact)
    data = Path(ref.path).read_bytes()
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ValueError(f"artifact {ref.path} does not match its digest")
    return data
