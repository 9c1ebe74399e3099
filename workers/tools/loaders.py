"""The text of a corpus document: PDF and HTML through langchain-community (the docs extra).

Markdown and plain text are read as they are. Every kind comes out as Markdown-like text,
which `foreman.workers.tools.corpus` splits into paragraph passages the same way: a first
`# ` line is the title, blank lines end a passage.

- `.md`, `.txt`: read as UTF-8 (no extra needed).
- `.pdf`: `PyPDFLoader` (pypdf), a page at a time. Text pulled from a PDF seldom marks its
  paragraphs, so a long block is cut at sentence ends into passages of about
  `PASSAGE_WORDS` words, the size of a Markdown paragraph. The title is the PDF's own, if
  it has one.
- `.html`, `.htm`: the page's `<title>`, then its body without scripts, styles and
  navigation, turned into Markdown by `MarkdownifyTransformer` (markdownify), so headings,
  paragraphs and list items stay apart. (`BSHTMLLoader` runs them together: a page would
  be one passage.)

Nothing is fetched or downloaded: the loaders read local files only (paths here are
absolute, so the PDF loader never takes one for a URL).
"""

from __future__ import annotations

import re
from pathlib import Path

from foreman.core.extras import require

TEXT_SUFFIXES = {".md", ".txt"}
LOADED_SUFFIXES = {".pdf": "PDF", ".html": "HTML", ".htm": "HTML"}
SUFFIXES = TEXT_SUFFIXES | set(LOADED_SUFFIXES)
PASSAGE_WORDS = 90
# Elements of a page that are not its text.
HTML_NOISE = ["head", "script", "style", "noscript", "template", "nav", "svg", "iframe"]
# Markup that markdownify would otherwise keep as symbols in the passage text.
HTML_INLINE = ["a", "img", "b", "strong", "i", "em", "u", "code", "span"]


class DocumentError(Exception):
    """A file that cannot be read as a document (damaged, encrypted, not what it says)."""


def documents(folder: Path) -> list[Path]:
    """The paths in `folder` (recursively) named like documents, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)


def require_loaders(what: str = "reading PDF and HTML files") -> None:
    """Raise `MissingExtra` unless the docs extra is installed.

    Raises:
        MissingExtra: langchain-community, pypdf, beautifulsoup4 or markdownify is missing.
    """
    require(what, "docs")


def check_folder(folder: Path) -> None:
    """Refuse a corpus folder holding PDF or HTML files when the docs extra is missing.

    Raises:
        MissingExtra: there are such files, and no loaders for them.
    """
    found = {p.suffix.lower() for p in documents(folder)}
    kinds = sorted({LOADED_SUFFIXES[s] for s in found if s in LOADED_SUFFIXES})
    if kinds:
        require_loaders(f"the corpus {folder}, with {' and '.join(kinds)} files,")


def read_document(path: Path) -> str:
    """The text of the document at `path`, as Markdown-like text.

    Raises:
        OSError: the file cannot be read.
        UnicodeError: a text file is not valid text.
        MissingExtra: a PDF or HTML file, without the docs extra.
        DocumentError: a PDF or HTML file the loader cannot read.
    """
    kind = LOADED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        return path.read_text(encoding="utf-8", errors="replace")
    require_loaders(f"reading {kind} files")
    return _pdf(path) if kind == "PDF" else _html(path)


def _pdf(path: Path) -> str:
    from langchain_community.document_loaders import PyPDFLoader
    from pypdf.errors import PyPdfError

    try:
        pages = PyPDFLoader(str(path.resolve()), mode="page").load()
    except (PyPdfError, ValueError, KeyError) as exc:
        raise DocumentError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    title = str(pages[0].metadata.get("title") or "").strip() if pages else ""
    blocks = [p for page in pages for p in paragraphs(page.page_content)]
    return "\n\n".join([f"# {title}"] * bool(title) + blocks)


def paragraphs(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """Blocks of `text` (split at blank lines), long ones cut at sentence ends.

    A block of more than 1.5 × `words` words becomes pieces of about `words` words each (up
    to 1.5 × `words`), every piece whole sentences.
    """
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        flat = " ".join(block.split())
        if not flat:
            continue
        if len(flat.split()) <= words * 3 // 2:
            out.append(flat)
            continue
        pieces: list[str] = []
        piece: list[str] = []
        for sentence in re.split(r"(?<=[.!?])\s+", flat):
            piece.append(sentence)
            if len(" ".join(piece).split()) >= words:
                pieces.append(" ".join(piece))
                piece = []
        rest = " ".join(piece)
        if rest and pieces and len(f"{pieces[-1]} {rest}".split()) <= words * 3 // 2:
            pieces[-1] += f" {rest}"  # a short remainder joins the piece before it
        elif rest:
            pieces.append(rest)
        out += pieces
    return out


def _html(path: Path) -> str:
    from bs4 import BeautifulSoup
    from langchain_community.document_transformers import MarkdownifyTransformer
    from langchain_core.documents import Document

    # From bytes, so that the page's own <meta charset> decides the encoding.
    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    title = " ".join(soup.title.get_text(" ").split()) if soup.title else ""
    for tag in soup(HTML_NOISE):
        tag.decompose()
    markdown = MarkdownifyTransformer(
        strip=HTML_INLINE,
        escape_asterisks=False,
        escape_underscores=False,
        escape_misc=False,
    ).transform_documents([Document(page_content=str(soup.body or soup))])[0]
    return "\n\n".join([f"# {title}"] * bool(title) + [markdown.page_content])
