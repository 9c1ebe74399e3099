"""Pattern 2, code generation: components in parallel, a review, a fix round, an assembly.

Scripted models write the code; the tests really run in the sandbox. Run directly against
the scripted models and through a real ChatOpenAI over loopback HTTP.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from foreman import build_graph
from foreman.rerun import find_base, fork_for_rerun
from tests.conftest import scripted_context
from tests.support.scripted import ScriptedChatModel
from tests.support.scripted_http import run_scripted

REQUEST = "Build a small text toolkit: a slugify function, a word counter, and a summary helper."

PLAN = {
    "goal": "A tested text toolkit.",
    "subtasks": [
        {
            "id": "c1",
            "worker": "code",
            "objective": "Write slugify.py with slugify(text) -> str: lower-case ASCII words "
            "joined by hyphens.",
            "expected_output": "slugify.py and its tests",
            "acceptance_criteria": ["accents are folded", "punctuation is dropped"],
            "feeds_answer": False,
        },
        {
            "id": "c2",
            "worker": "code",
            "objective": "Write wordcount.py with count_words(text) -> dict[str, int].",
            "expected_output": "wordcount.py and its tests",
            "acceptance_criteria": ["words differing only in case count as one word"],
            "feeds_answer": False,
        },
        {
            "id": "review",
            "worker": "review",
            "objective": "Review c1 and c2 against their acceptance criteria.",
            "inputs": ["c1", "c2"],
            "feeds_answer": False,
        },
        {
            "id": "assemble",
            "worker": "code",
            "objective": "Assemble textkit.py with summarize(text) using both modules, with an "
            "integration test.",
            "inputs": ["c1", "c2", "review"],
        },
    ],
}

SLUGIFY = '''import re
import unicodedata


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by hyphens."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))
'''
TEST_SLUGIFY = """from slugify import slugify


def test_words_and_punctuation():
    assert slugify("Hello, World!") == "hello-world"


def test_accents_are_folded():
    assert slugify("Crème brûlée") == "creme-brulee"
"""
WORDCOUNT_V1 = """import re
from collections import Counter


def count_words(text: str) -> dict[str, int]:
    return dict(Counter(re.findall(r"[A-Za-z']+", text)))
"""
WORDCOUNT_V2 = WORDCOUNT_V1.replace("text)))", "text.lower())))")
TEST_WORDCOUNT = """from wordcount import count_words


def test_counts():
    assert count_words("a b a") == {"a": 2, "b": 1}
"""
TEST_WORDCOUNT_V2 = (
    TEST_WORDCOUNT
    + """

def test_case_is_ignored():
    assert count_words("The the") == {"the": 2}
"""
)
TEXTKIT = """from slugify import slugify
from wordcount import count_words


def summarize(text: str) -> dict[str, str]:
    counts = count_words(text)
    return {"slug": slugify(text), "top_word": max(counts, key=counts.__getitem__)}
"""
TEST_TEXTKIT = """from textkit import summarize


def test_summary_uses_both_modules():
    assert summarize("The cat and the hat") == {
        "slug": "the-cat-and-the-hat",
        "top_word": "the",
    }
"""


def files(**named: str) -> list[dict[str, str]]:
    return [{"path": p.replace("__", "."), "content": c} for p, c in named.items()]


def script(models: dict[str, ScriptedChatModel]) -> None:
    models["planner"].on("Plan", "text toolkit", PLAN)
    worker = models["worker"]
    worker.on(
        "CodeSubmission",
        "Fix the result of subtask c2",
        {"files": files(wordcount__py=WORDCOUNT_V2, test_wordcount__py=TEST_WORDCOUNT_V2),
         "summary": "count_words, case-insensitive"},
    )  # fmt: skip
    worker.on(
        "CodeSubmission",
        "Assemble textkit.py",
        {"files": files(textkit__py=TEXTKIT, test_textkit__py=TEST_TEXTKIT),
         "summary": "textkit.summarize over slugify and count_words"},
    )  # fmt: skip
    worker.on(
        "CodeSubmission",
        "Write slugify.py",
        {"files": files(slugify__py=SLUGIFY, test_slugify__py=TEST_SLUGIFY), "summary": "slugify"},
    )
    worker.on(
        "CodeSubmission",
        "Write wordcount.py",
        {"files": files(wordcount__py=WORDCOUNT_V1, test_wordcount__py=TEST_WORDCOUNT),
         "summary": "count_words"},
    )  # fmt: skip
    worker.on(
        "ReviewReport",
        'id="c2_fix1"',
        {"approved": True, "findings": [], "summary": "Both components meet their criteria."},
    )
    worker.on(
        "ReviewReport",
        'id="c2"',
        {
            "approved": False,
            "summary": "c1 is fine; c2 misses a criterion.",
            "findings": [
                {
                    "subject": "c2",
                    "severity": "major",
                    "location": "wordcount.py:count_words",
                    "issue": "counts are case-sensitive: 'The' and 'the' are counted apart",
                    "suggestion": "lower-case the text before counting, and test it",
                }
            ],
        },
    )


@pytest.mark.parametrize("transport", ["scripted", "http"])
async def test_code_generation_pattern(
    transport: str,
    models: dict[str, ScriptedChatModel],
    thread: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script(models)
    app = build_graph().compile(checkpointer=InMemorySaver())
    values = await run_scripted(app, REQUEST, thread, transport, models, monkeypatch)
    assert values["status"] == "done", values.get("error")
    # Plan shape: the planner's plan, then the fix round the failed review caused.
    sources = [p["source"] for p in values["plan_history"]]
    assert sources == ["planner", "fix_round"]
    final = {s["id"]: s for s in values["plan"]["subtasks"]}
    assert set(final) == {"c1", "c2", "c2_fix1", "review_r2", "assemble"}
    assert final["c2_fix1"]["inputs"] == ["c2"] and final["c2_fix1"]["replaces"] == "c2"
    assert final["review_r2"]["inputs"] == ["c1", "c2_fix1"]
    assert final["assemble"]["inputs"] == ["c1", "c2_fix1", "review_r2"]
    assert "case-sensitive" in final["c2_fix1"]["objective"]

    results = values["results"]
    # Verdicts: the first review was sound but asked for changes; everything else accepted.
    assert results["review"]["status"] == "changes_requested"
    assert "case-sensitive" in (results["review"]["error"] or "")
    for sid in ("c1", "c2", "c2_fix1", "review_r2", "assemble"):
        assert results[sid]["status"] == "accepted", (sid, results[sid]["error"])
    # Components ran once; accepted results were not redone in the fix round.
    assert all(len(results[s]["attempts"]) == 1 for s in ("c1", "c2", "c2_fix1", "assemble"))
    # Dependents received exactly their inputs.
    assert results["assemble"]["attempts"][0]["input"]["dependencies"] == [
        "c1", "c2_fix1", "review_r2"
    ]  # fmt: skip
    assert results["c2_fix1"]["attempts"][0]["input"]["dependencies"] == ["c2"]

    # The assembly holds every file, the fixed counter included, and its tests passed.
    assembled = results["assemble"]["output"]
    paths = {f["path"]: f["content"] for f in assembled["files"]}
    assert set(paths) >= {"slugify.py", "wordcount.py", "textkit.py", "test_textkit.py"}
    assert ".lower()" in paths["wordcount.py"]
    assert assembled["tests_passed"] and assembled["tests_run"] == 5
    assert "5 passed" in assembled["test_output"]
    # The answer is the assembled implementation (replaced and intermediate results left out).
    assert "def summarize" in values["answer"] and "5 tests passed" in values["answer"]
    assert 'Counter(re.findall(r"[A-Za-z\']+", text))' not in values["answer"]


async def test_rerun_after_a_fix_round_redoes_the_subtask_and_what_used_it(
    models: dict[str, ScriptedChatModel], thread: dict[str, Any]
) -> None:
    """`foreman rerun` on a thread whose plan grew a fix round: the current plan decides."""
    script(models)
    app = build_graph().compile(checkpointer=InMemorySaver())
    ctx = scripted_context()
    await app.ainvoke({"request": REQUEST}, thread, context=ctx)
    before = (await app.aget_state(thread)).values
    assert before["status"] == "done"
    review_calls = len([c for c in models["worker"].calls if c.schema == "ReviewReport"])

    fork = await find_base(app, thread["configurable"]["thread_id"], "c1")
    assert set(fork.subtasks) == {"c1", "review_r2", "assemble"}  # not c2, c2_fix1 nor review
    await fork_for_rerun(app, fork, why="c1 again")
    await app.ainvoke(None, thread, context=ctx)
    after = (await app.aget_state(thread)).values

    assert after["status"] == "done", after.get("error")
    assert [p["source"] for p in after["plan_history"]] == ["planner", "fix_round"]  # no new round
    for sid in ("c1", "review_r2", "assemble"):
        assert after["results"][sid]["status"] == "accepted"
        assert after["results"][sid]["attempts"] != before["results"][sid]["attempts"], sid
    for sid in ("c2", "c2_fix1", "review"):  # the replaced, the fix and the first review stay
        assert after["results"][sid] == before["results"][sid], sid
    reviews = [c for c in models["worker"].calls if c.schema == "ReviewReport"]
    assert len(reviews) == review_calls + 1 and 'id="c2_fix1"' in reviews[-1].prompt
    assert after["results"]["assemble"]["output"]["tests_passed"]
    assert "def summarize" in after["answer"]


async def test_code_that_breaks_the_rules_fails_its_subtask_and_the_run_goes_on(
    models: dict[str, ScriptedChatModel], thread: dict[str, Any]
) -> None:
    hostile = """import socket


def fetch():
    return socket.create_connection(("1.1.1.1", 53), timeout=2)
"""
    test = "from net import fetch\n\n\ndef test_fetch():\n    fetch().close()\n"
    plan = {
        "goal": "two components",
        "subtasks": [
            {"id": "ok", "worker": "code", "objective": "Write slugify.py"},
            {"id": "net", "worker": "code", "objective": "Write net.py that phones home"},
        ],
    }
    models["planner"].on("Plan", "toolkit", plan)
    models["worker"].on(
        "CodeSubmission",
        "Write slugify.py",
        {"files": files(slugify__py=SLUGIFY, test_slugify__py=TEST_SLUGIFY)},
    )
    models["worker"].on(
        "CodeSubmission", "phones home", {"files": files(net__py=hostile, test_net__py=test)}
    )
    app = build_graph().compile(checkpointer=InMemorySaver())
    ctx = scripted_context(max_replans=0)
    await app.ainvoke({"request": "a toolkit"}, thread, context=ctx)
    state = await app.aget_state(thread)
    # The hostile subtask failed with the sandbox's reason; its sibling was accepted.
    results = state.values["results"]
    assert results["ok"]["status"] == "accepted"
    assert results["net"]["status"] == "failed"
    assert len(results["net"]["attempts"]) == ctx.max_attempts
    assert "network" in (results["net"]["error"] or "").lower()
    # The run waits for a person at the escalation, then goes on without it.
    (interrupt,) = state.interrupts
    assert interrupt.value["kind"] == "escalation" and interrupt.value["subtask"] == "net"
    values = await app.ainvoke(Command(resume={"action": "skip"}), thread, context=ctx)
    assert values["status"] == "partial"  # answered without it, and says so
    assert "def slugify" in values["answer"]
    assert "net" in values["answer"]  # listed as a gap


HOSTILE = {
    "network": ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)", "network"),
    "read outside": ("open('/etc/passwd').read()", "Permission denied"),
    "write outside": ("open('/tmp/foreman-escape-test', 'w').write('x')", "Permission denied"),
    "fork bomb": ("import os\nwhile True:\n    os.fork()", "process limit"),
    "memory bomb": ("x = []\nwhile True:\n    x.append(bytearray(10**8))", "memory limit"),
    "endless loop": ("while True:\n    pass", "limit of 3 s exceeded"),
    "gigabytes of output": ("while True:\n    print('x' * 10000)", "output limit"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_code_is_stopped_and_reported(
    case: str, models: dict[str, ScriptedChatModel], thread: dict[str, Any]
) -> None:
    body, reason = HOSTILE[case]
    test = "def test_it():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    plan = {
        "goal": "two components",
        "subtasks": [
            {"id": "ok", "worker": "code", "objective": "Write slugify.py"},
            {"id": "bad", "worker": "code", "objective": "Write the hostile component"},
        ],
    }
    models["planner"].on("Plan", "toolkit", plan)
    models["worker"].on(
        "CodeSubmission",
        "Write slugify.py",
        {"files": files(slugify__py=SLUGIFY, test_slugify__py=TEST_SLUGIFY)},
    )
    models["worker"].on("CodeSubmission", "hostile", {"files": files(test_bad__py=test)})
    app = build_graph().compile(checkpointer=InMemorySaver())
    # Only the endless loop should meet the wall clock; the rest hit their own limit first,
    # however loaded the machine.
    timeout = 3 if case == "endless loop" else 30
    ctx = scripted_context(max_replans=0, max_attempts=1, sandbox_timeout_s=timeout)
    await app.ainvoke({"request": "a toolkit"}, thread, context=ctx)
    results = (await app.aget_state(thread)).values["results"]
    assert results["ok"]["status"] == "accepted"
    assert results["bad"]["status"] == "failed"
    assert reason in (results["bad"]["error"] or ""), results["bad"]["error"]
    values = await app.ainvoke(Command(resume={"action": "skip"}), thread, context=ctx)
    assert values["status"] == "partial"  # the run went on without it, and says so
    assert not os.path.exists("/tmp/foreman-escape-test")  # noqa: ASYNC240
