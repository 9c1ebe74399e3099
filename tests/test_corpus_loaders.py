"""A corpus of PDF, HTML and Markdown files: read through langchain-community's loaders.

The PDF is written by hand (`tests/support/pdf.py`); pypdf reads it as it would any other.
Without the docs extra, PDF and HTML files are refused with a message naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from foreman.workers.tools.corpus import Corpus, load_corpus, split_document
from foreman.workers.tools.loaders import PASSAGE_WORDS, paragraphs, read_document
from tests.support.pdf import make_pdf

WITHOUT_EXTRAS = Path(__file__).parent / "support" / "without_extras.py"
BOREHOLE = [
    "A ground-source heat pump takes heat from boreholes drilled 100 to 150 metres deep.",
    "Drilling one borehole costs about 8,000 euros in loose soil and more in rock.",
    "A borehole field lasts fifty years and keeps its temperature all winter.",
]
HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>District heating networks</title>
<style>p { color: grey }</style><script>var tracking = "district heating";</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About us</a></nav>
<h1>District heating</h1>
<p>A district heating network pipes hot water from a <b>central plant</b> to many homes.</p>
<p>Large heat pumps at <a href="https://example.org">sewage works</a> can feed such
networks with water at 70 degrees.</p>
<ul><li>Fewer boilers</li><li>One plant to maintain</li></ul>
</body></html>
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pages = [BOREHOLE[:2], BOREHOLE[2:]]
    (corpus / "boreholes.pdf").write_bytes(make_pdf(pages, title="Borehole heat exchangers"))
    (corpus / "district.html").write_text(HTML, encoding="utf-8")
    (corpus / "notes.md").write_text("# Notes\n\nAir-source units sit outside the house.\n")
    return corpus


def test_pdf_pages_become_passages_with_the_pdfs_title(folder: Path):
    passages = split_document(folder / "boreholes.pdf")
    assert [p.id for p in passages] == ["boreholes#p1", "boreholes#p2"]
    assert {p.title for p in passages} == {"Borehole heat exchangers"}
    assert passages[0].text == " ".join(BOREHOLE[:2])
    assert passages[1].text == BOREHOLE[2]


def test_html_keeps_paragraphs_apart_and_drops_scripts_styles_and_navigation(folder: Path):
    passages = split_document(folder / "district.html")
    assert {p.title for p in passages} == {"District heating networks"}
    assert [p.text for p in passages] == [
        "A district heating network pipes hot water from a central plant to many homes.",
        "Large heat pumps at sewage works can feed such networks with water at 70 degrees.",
        "* Fewer boilers * One plant to maintain",
    ]
    text = read_document(folder / "district.html")
    assert "tracking" not in text and "color" not in text and "About us" not in text


def test_a_mixed_folder_is_one_corpus_that_search_reads(folder: Path):
    corpus = load_corpus(folder)
    assert corpus.skipped == []
    assert {p.doc for p in corpus.passages} == {"boreholes", "district", "notes"}
    (hit,) = corpus.search("borehole drilling cost", k=1)
    assert hit.passage.id == "boreholes#p1"
    (hit,) = corpus.search("sewage works heat pumps", k=1)
    assert hit.passage.id == "district#p2"


def test_documents_with_the_same_name_keep_their_own_ids(folder: Path):
    (folder / "boreholes.html").write_text("<p>Boreholes need a drilling permit.</p>")
    corpus = Corpus.from_folder(folder)
    ids = [p.id for p in corpus.passages]
    assert len(ids) == len(set(ids))
    docs = {p.doc: p.title for p in corpus.passages}
    # sorted: boreholes.html keeps the name, boreholes.pdf (read after it) gets boreholes-2
    assert corpus.by_id["boreholes#p1"].text == "Boreholes need a drilling permit."
    assert docs["boreholes-2"] == "Borehole heat exchangers"


def test_a_damaged_pdf_is_skipped_with_its_reason(folder: Path):
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF body\n")
    corpus = Corpus.from_folder(folder)
    (skipped,) = corpus.skipped
    assert skipped.startswith(f"{folder / 'broken.pdf'}: not a readable PDF")
    assert {p.doc for p in corpus.passages} == {"boreholes", "district", "notes"}


def test_long_pdf_blocks_are_cut_at_sentence_ends():
    sentence = "Heat pumps move heat from outside air into the house. "  # 10 words
    pieces = paragraphs(sentence * 30)
    assert len(pieces) == 300 // PASSAGE_WORDS
    assert all(p.endswith("house.") for p in pieces)
    assert " ".join(pieces) == (sentence * 30).strip()
    assert paragraphs("One.\n\n\nTwo\nlines.") == ["One.", "Two lines."]


def test_run_answers_from_a_pdf_and_html_corpus(cli: Any, folder: Path):
    result = cli("run", "What does a borehole in soil or rock cost?", "--corpus", str(folder),
                 "--thread", "pdf1", "--no-ask")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "boreholes#p1" in result.output and "8,000 euros" in result.output


def without_docs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FOREMAN_HOME": str(cwd / "home"), "COLUMNS": "200"}
    env["FOREMAN_DB"] = f"sqlite:{cwd / 'runs.sqlite'}"
    return subprocess.run(
        [sys.executable, str(WITHOUT_EXTRAS), "docs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_the_docs_extra_the_cli_refuses_a_pdf_corpus(folder: Path, tmp_path: Path):
    done = without_docs("-m", "foreman", "run", "Borehole costs?", "--corpus", str(folder),
                        "--no-ask", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"error: the corpus {folder}, with HTML and PDF files, needs the docs extra: "
        "pip install 'foreman-agents[docs]'"
    )
    assert not (tmp_path / "runs.sqlite").exists()  # nothing was opened


def test_without_the_docs_extra_markdown_still_loads_and_the_rest_says_why(
    folder: Path, tmp_path: Path
):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from foreman.workers.tools.corpus import Corpus\n"
        "corpus = Corpus.from_folder(Path(sys.argv[1]))\n"
        "print(sorted({p.doc for p in corpus.passages}))\n"
        "print(*corpus.skipped, sep='\\n')\n"
        "(Path(sys.argv[1]) / 'notes.md').unlink()\n"
        "try:\n"
        "    Corpus.from_folder(Path(sys.argv[1]))\n"
        "except FileNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    done = without_docs("-c", code, str(folder), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    needs = "needs the docs extra: pip install 'foreman-agents[docs]'"
    assert done.stdout.splitlines() == [
        "['notes']",
        f"{folder / 'boreholes.pdf'}: reading PDF files {needs}",
        f"{folder / 'district.html'}: reading HTML files {needs}",
        f"no readable documents (.htm, .html, .md, .pdf, .txt) in {folder}; "
        f"reading HTML files {needs}; reading PDF files {needs}",
    ]
