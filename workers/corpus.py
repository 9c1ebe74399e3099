"""A local document corpus split into passages and indexed with BM25 (bm25s)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import bm25s
import Stemmer

SUFFIXES = {".md", ".txt"}


@dataclass(frozen=True)
class Passage:
    """One paragraph of one document."""

    id: str
    doc: str
    title: str
    source: str
    text: str


@dataclass(frozen=True)
class Hit:
    """A passage and its BM25 score for a query."""

    passage: Passage
    score: float


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "doc"


def split_document(path: Path) -> list[Passage]:
    """Split a Markdown or text file into paragraph passages with stable ids.

    NUL characters are dropped: no document needs them, and PostgreSQL cannot store them.
    """
    text = path.read_text(encoding="utf-8", errors="replace").replace("\x00", "")
    doc = _slug(path.stem)
    title, source = path.stem, ""
    passages: list[Passage] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        body: list[str] = []
        for line in lines:
            if line.startswith("# ") and not passages and title == path.stem:
                title = line[2:].strip()
            elif line.lower().startswith("source:"):
                source = line.split(":", 1)[1].strip()
            elif not line.startswith("#"):
                body.append(line)
        if body:
            n = len(passages) + 1
            passages.append(Passage(f"{doc}#p{n}", doc, title, source, " ".join(body)))
    return passages


class Corpus:
    """BM25 index over passages: every paragraph of a folder's `.md`/`.txt` files, or any."""

    @classmethod
    def from_folder(cls, folder: Path) -> Corpus:
        """Index every passage of the readable `.md`/`.txt` files in `folder`.

        Anything else with those names is skipped and listed in `skipped`: a FIFO (reading
        one would wait forever), a socket or device, a dangling link, a file that cannot be
        read.
        """
        passages: list[Passage] = []
        skipped: list[str] = []
        for path in documents(folder):
            if not path.is_file():  # follows links; False for FIFOs, sockets, devices
                skipped.append(f"{path}: not a regular file")
                continue
            try:
                passages += split_document(path)
            except (OSError, UnicodeError) as exc:
                skipped.append(f"{path}: {exc.strerror if isinstance(exc, OSError) else exc}")
        if not passages:
            raise FileNotFoundError(f"no readable .md or .txt documents in {folder}")
        corpus = cls(passages)
        corpus.skipped = skipped
        return corpus

    def __init__(self, passages: list[Passage]):
        if not passages:
            raise ValueError("nothing to index")
        self.skipped: list[str] = []
        self.passages = passages
        self.by_id = {p.id: p for p in self.passages}
        self._stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(
            [f"{p.title}. {p.text}" for p in self.passages],
            stopwords="en",
            stemmer=self._stemmer,
            show_progress=False,
        )
        self._index = bm25s.BM25()
        self._index.index(tokens, show_progress=False)
        self._lock = threading.Lock()  # bm25s retrieval is not documented as thread-safe

    def search(self, query: str, k: int = 4, per_doc: int | None = None) -> list[Hit]:
        """Top `k` passages with a positive score, at most `per_doc` from one document."""
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not tokens.ids or not tokens.ids[0]:
            return []
        with self._lock:
            ids, scores = self._index.retrieve(
                tokens, k=len(self.passages), show_progress=False, n_threads=1
            )
        hits: list[Hit] = []
        per: dict[str, int] = {}
        for idx, score in zip(ids[0], scores[0], strict=True):
            if score <= 0 or len(hits) >= k:
                break
            passage = self.passages[int(idx)]
            if per_doc is not None and per.get(passage.doc, 0) >= per_doc:
                continue
            per[passage.doc] = per.get(passage.doc, 0) + 1
            hits.append(Hit(passage, float(score)))
        return hits


def documents(folder: Path) -> list[Path]:
    """The paths in `folder` (recursively) named like documents, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)


def _signature(folder: Path) -> tuple[tuple[str, float, int], ...]:
    found = []
    for path in documents(folder):
        try:
            st = path.stat()  # never opens the file: safe on a FIFO
        except OSError:
            continue  # a dangling link
        found.append((str(path), st.st_mtime, st.st_size))
    return tuple(found)


@lru_cache(maxsize=8)
def _load(folder: str, signature: tuple[tuple[str, float, int], ...]) -> Corpus:
    return Corpus.from_folder(Path(folder))


def load_corpus(folder: str | Path) -> Corpus:
    """Load (and cache until a file changes) the corpus in `folder`."""
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {path}")
    return _load(str(path), _signature(path))
