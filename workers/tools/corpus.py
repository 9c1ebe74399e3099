"""A local document corpus split into passages and indexed with BM25 (bm25s).

Markdown and text files are read as they are; PDF and HTML files through langchain-community's
loaders when the docs extra is installed (`foreman.workers.tools.loaders`).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import bm25s
import Stemmer

from foreman.core.extras import MissingExtra
from foreman.core.text import keywords, query_keywords
from foreman.workers.tools.loaders import SUFFIXES, DocumentError, documents, read_document

# A passage addresses a query when it holds this share of the query's distinctive terms,
# weighted by rarity (see `Corpus.relevance`), and at least NEAR_BEST of the best passage's
# share: a passage that matches one loose word of a question ("long" in "how long do they
# last") is not on a par with one that answers it. Measured on the request set in tests/
# (README, "When Foreman orchestrates").
RELEVANT = 0.5
NEAR_BEST = 0.6
# ... and its BM25 score at least this share of the best passage's: a passage that shares
# only one generic word with the query ("working days" for "how heat pumps work") scores far
# below those written about it.
BM25_NEAR_BEST = 0.65
# Terms in more than this share of the passages say what the whole corpus is about, not what
# one passage is about: they do not count towards relevance while rarer terms are asked for.
COMMON = 0.25


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


def _own_ids(passages: list[Passage], taken: set[str]) -> list[Passage]:
    """`passages` of one document, under `doc-2` (`-3`, ...) if another has its name.

    `notes.pdf` beside `notes.html`, or two `notes.md` in different folders: ids stay unique.
    """
    if not passages or passages[0].doc not in taken:
        return passages
    doc, n = passages[0].doc, 2
    while f"{doc}-{n}" in taken:
        n += 1
    renamed = f"{doc}-{n}"
    return [replace(p, id=p.id.replace(f"{doc}#", f"{renamed}#", 1), doc=renamed) for p in passages]


def split_document(path: Path) -> list[Passage]:
    """Split a document (Markdown, text, PDF, HTML) into paragraph passages with stable ids.

    NUL characters are dropped: no document needs them, and PostgreSQL cannot store them.

    Raises:
        OSError: the file cannot be read.
        MissingExtra: a PDF or HTML file, without the docs extra.
        DocumentError: a PDF or HTML file its loader cannot read.
    """
    text = read_document(path).replace("\x00", "")
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
    """BM25 index over passages: every paragraph of a folder's documents, or any."""

    @classmethod
    def from_folder(cls, folder: Path) -> Corpus:
        """Index every passage of the readable documents (`SUFFIXES`) in `folder`.

        Anything else with those names is skipped and listed in `skipped`: a FIFO (reading
        one would wait forever), a socket or device, a dangling link, a file that cannot be
        read, a PDF or HTML file without the docs extra.

        Raises:
            FileNotFoundError: no document could be read (saying why, if an extra is missing).
        """
        passages: list[Passage] = []
        skipped: list[str] = []
        missing: set[str] = set()
        for path in documents(folder):
            if not path.is_file():  # follows links; False for FIFOs, sockets, devices
                skipped.append(f"{path}: not a regular file")
                continue
            try:
                found = split_document(path)
            except MissingExtra as exc:
                missing.add(str(exc))
                skipped.append(f"{path}: {exc}")
            except (OSError, UnicodeError, DocumentError) as exc:
                skipped.append(f"{path}: {exc.strerror if isinstance(exc, OSError) else exc}")
            else:
                passages += _own_ids(found, {p.doc for p in passages})
        if not passages:
            kinds = ", ".join(sorted(SUFFIXES))
            why = "".join(f"; {m}" for m in sorted(missing))
            raise FileNotFoundError(f"no readable documents ({kinds}) in {folder}{why}")
        corpus = cls(passages)
        corpus.skipped = skipped
        return corpus

    def __init__(self, passages: list[Passage]):
        if not passages:
            raise ValueError("nothing to index")
        self.skipped: list[str] = []
        self.passages = passages
        self.by_id = {p.id: p for p in self.passages}
        self._terms = [set(keywords(f"{p.title} {p.text}")) for p in passages]
        self._df = Counter(t for terms in self._terms for t in terms)
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

    def idf(self, term: str) -> float:
        """How rare a stemmed term is across the passages (unseen terms are the rarest)."""
        return math.log(1 + len(self.passages) / (1 + self._df.get(term, 0)))

    def relevance(self, query: str, text: str) -> float:
        """How much of what `query` asks about `text` holds, from 0 to 1.

        The rarity-weighted share of the query's distinctive terms (those not common to most
        of the corpus) that occur in `text`; with none distinctive, of all its terms. Terms
        the corpus never uses weigh the most, so an off-topic query scores low everywhere. A
        passage may leave out one of three or more terms (see `_covered`).
        """
        return self._covered(self._counted(query), set(keywords(text)))

    def _counted(self, query: str) -> list[str]:
        """The query terms relevance counts: distinctive ones if any, else all."""
        terms = [t for t in query_keywords(query) if any(c.isalpha() for c in t)]
        distinctive = [t for t in terms if self._df.get(t, 0) <= COMMON * len(self.passages)]
        return distinctive or terms

    def _covered(self, counted: list[str], present: set[str]) -> float:
        """The weighted share of `counted` in `present`; of three or more, one may be missing.

        A passage on most of what is asked often leaves a modifier out.
        """
        share = self._share(counted, present)
        if len(counted) >= 3:
            for left_out in counted:
                share = max(share, self._share([t for t in counted if t != left_out], present))
        return share

    def _share(self, counted: list[str], present: set[str]) -> float:
        total = sum(self.idf(t) for t in counted)
        return sum(self.idf(t) for t in counted if t in present) / total if total else 0.0

    def signature(self, per_doc: int = 12) -> dict[str, tuple[str, list[str]]]:
        """Per document: its title and its most characteristic words (for the planner)."""
        words: dict[str, Counter[str]] = {}
        titles: dict[str, str] = {}
        for passage in self.passages:
            titles[passage.doc] = passage.title
            found = re.findall(r"[A-Za-z][A-Za-z\-]{3,}", passage.text)
            words.setdefault(passage.doc, Counter()).update(w.lower() for w in found)
        out = {}
        for doc, counts in words.items():
            scored = []
            for word, n in counts.items():
                stems = keywords(word)
                if stems:
                    scored.append((n * self.idf(stems[0]), word))
            top = [w for _, w in sorted(scored, reverse=True)[:per_doc]]
            out[doc] = (titles[doc], top)
        return out

    def search(
        self,
        query: str,
        k: int = 4,
        per_doc: int | None = None,
        min_relevance: float = 0.0,
        about: Sequence[str] = (),
    ) -> list[Hit]:
        """Top `k` passages with a positive score, at most `per_doc` from one document.

        With `min_relevance`, only passages that address the query that much (`relevance`),
        and nearly as well as the best one does (`NEAR_BEST`, `BM25_NEAR_BEST`): BM25 ranks
        whatever shares a word with the query, relevant or not. Relevance is judged against the
        query, or the
        best of the texts in `about` (an objective and a person's clarification, say).
        """
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not tokens.ids or not tokens.ids[0]:
            return []
        with self._lock:
            ids, scores = self._index.retrieve(
                tokens, k=len(self.passages), show_progress=False, n_threads=1
            )
        ranked = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
        cut = 0.0
        if min_relevance and ranked:
            floor = BM25_NEAR_BEST * ranked[0][1]
            ranked = [(i, s) for i, s in ranked if s >= floor]
            judged = [self._counted(text) for text in (about or [query])]
            share = {
                i: max(self._covered(counted, self._terms[i]) for counted in judged)
                for i, _ in ranked
            }
            cut = max(min_relevance, NEAR_BEST * max(share.values(), default=0.0))
        hits: list[Hit] = []
        per: dict[str, int] = {}
        for idx, score in ranked:
            if len(hits) >= k:
                break
            passage = self.passages[idx]
            if per_doc is not None and per.get(passage.doc, 0) >= per_doc:
                continue
            if min_relevance and share[idx] < cut:
                continue
            per[passage.doc] = per.get(passage.doc, 0) + 1
            hits.append(Hit(passage, score))
        return hits


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
