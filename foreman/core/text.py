"""Small text utilities shared by the offline engines, validators and budgets."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import Stemmer  # PyStemmer: a maintained Snowball stemmer, no data downloads

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]+|\d+(?:[.,]\d+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours write report find evidence section describe explain
    summarize summary give provide about include including cover covering using use based
    executive key point points per one each short brief make makes made get gets got
    """.split()
)


def clean_text(text: str) -> str:
    """`text` without NUL characters, which PostgreSQL cannot store in text or JSON."""
    return text.replace("\x00", "")


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply dicts and lists nest in `value`, counted up to `limit` (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        deepest = max(deepest, depth)
        if deepest >= limit:
            return limit
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return deepest


def without_nul(value: Any) -> Any:
    """`value` with NUL characters dropped from every string in it (dicts, lists, tuples)."""
    if isinstance(value, str):
        return clean_text(value) if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_nul(v) for v in value)
    return value


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def estimate_tokens(text: str) -> int:
    """Deterministic token estimate (words and punctuation); used for budgets, not billing."""
    return len(_TOKEN.findall(text))


def sentences(text: str) -> list[str]:
    """Split prose into sentences, dropping Markdown headings and blank lines."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(line.strip() for line in block.splitlines() if line.strip())
        if not block or block.startswith("#"):
            continue
        out.extend(s.strip() for s in _SENTENCE_END.split(block) if s.strip())
    return out


def keywords(text: str) -> list[str]:
    """Stemmed content words, in order of first appearance, without duplicates."""
    words = [w.lower() for w in _WORD.findall(text)]
    stems = _stemmer().stemWords([w for w in words if w not in STOPWORDS])
    seen: dict[str, None] = {}
    for stem in stems:
        seen.setdefault(stem, None)
    return list(seen)


_HOW_MUCH = re.compile(r"\bhow (?:long|much|many|often|far|big|old|soon)\b", re.I)


def without_how_much(text: str) -> str:
    """A question without the measure words of "how long", "how much"...

    In "how long do heat pumps last" the question is about lasting; "long" asks, it is not
    what the answer is about.
    """
    return _HOW_MUCH.sub("how", text)


def query_keywords(text: str) -> list[str]:
    """`keywords` of a question or objective (see `without_how_much`)."""
    return keywords(without_how_much(text))


def overlap(query_terms: list[str], text: str) -> float:
    """Fraction of query terms that occur in `text` (stemmed)."""
    if not query_terms:
        return 0.0
    present = set(keywords(text))
    return sum(1 for t in query_terms if t in present) / len(query_terms)


def numbers(text: str) -> list[str]:
    """Numbers that appear in `text`, as written."""
    return re.findall(r"\d+(?:[.,]\d+)?", text)


def clip_sentences(text: str, max_tokens: int) -> str:
    """Keep whole leading sentences of `text` within `max_tokens`."""
    kept: list[str] = []
    used = 0
    for sent in sentences(text):
        cost = estimate_tokens(sent)
        if used + cost > max_tokens and kept:
            break
        kept.append(sent)
        used += cost
    return " ".join(kept)


def tag_blocks(text: str, tag: str) -> list[tuple[dict[str, str], str]]:
    """Find `<tag k="v">body</tag>` blocks in a prompt; returns (attributes, body) pairs."""
    pattern = re.compile(rf"<{tag}((?:\s+[\w-]+=\"[^\"]*\")*)\s*>(.*?)</{tag}>", re.S)
    out = []
    for attrs, body in pattern.findall(text):
        out.append((dict(re.findall(r'([\w-]+)="([^"]*)"', attrs)), body.strip()))
    return out


def tag(text: str, name: str) -> str:
    """Body of the first `<name>` block in `text`, or ''."""
    blocks = tag_blocks(text, name)
    return blocks[0][1] if blocks else ""


def escape_attr(value: str) -> str:
    """Make a value safe inside a double-quoted prompt attribute."""
    return value.replace('"', "'").replace("\n", " ")


# Sentences addressed to a model rather than to a reader: a retrieved document or a worker's
# output may carry them (prompt injection). They are data, so they are set aside and
# reported instead of being shown to the next model as if they were content.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.!?]{0,40}\b(?:instructions|prompt|rules|"
    r"guidelines)\b|\b(?:note|message) to (?:the )?(?:ai|llm|assistant|model|agent)s?\b|"
    r"\byou are now\b|\bsystem prompt\b|\bnew instructions\b",
    re.I,
)


def set_aside_instructions(text: str) -> tuple[str, list[str]]:
    """Split `text` into its content and the sentences that try to instruct a model."""
    kept: list[str] = []
    removed: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        (removed if _INSTRUCTION.search(sentence) else kept).append(sentence)
    return " ".join(kept).strip(), removed


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ORDER_ID = re.compile(r"\b[A-Z]\d{5}\b", re.IGNORECASE)


def extract_keys(text: str) -> dict[str, list[str]]:
    """Emails (lower-cased) and order ids (upper-cased) mentioned in free text, in order.

    Example:
        >>> extract_keys("Hi, order #a10023 for Maria.Garcia@example.com never came.")
        {'emails': ['maria.garcia@example.com'], 'order_ids': ['A10023']}
    """
    emails = list(dict.fromkeys(m.lower() for m in _EMAIL.findall(text)))
    rest = _EMAIL.sub(" ", text)  # so the digits inside an email never read as an order id
    return {
        "emails": emails,
        "order_ids": list(dict.fromkeys(m.upper() for m in _ORDER_ID.findall(rest))),
    }
