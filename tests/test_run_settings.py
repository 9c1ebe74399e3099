"""A run keeps its settings: `resume` and `rerun` go on with them, unless told otherwise.

Before, the CLI kept them in checkpoint metadata as a dict, which LangGraph's savers drop, so
every resume fell back to the environment's defaults: a run started with a worker model
finished on the offline one.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import HEAT_PUMPS

STARTED_WITH = [
    "--model", "worker=scripted:cheap",
    "--model", "synthesizer=scripted:synth",
    "--max-parallel", "2",
    "--max-cost", "5",
    "--judge",
    "--model", "validator=scripted:judge",
]  # fmt: skip


def attempt_models(shown: dict[str, Any]) -> set[str]:
    return {a["model"] for r in shown["results"].values() for a in r["attempts"]}


def test_resume_after_a_question_keeps_the_runs_settings(models: Any, cli: Any) -> None:
    paused = cli("run", HEAT_PUMPS, "--thread", "s1", "--review-plan", "--no-ask", *STARTED_WITH)
    assert paused.exit_code == 3, paused.output
    done = cli("resume", "s1", "--answer", '{"action": "approve"}', "--no-ask")
    assert done.exit_code == 0, done.output
    assert "changed settings" not in done.output
    shown = json.loads(cli("show", "s1", "--format", "json").output)
    assert attempt_models(shown) == {"scripted:cheap"}
    assert models["judge"].calls_for("Verdict")  # the judge stayed on
    assert len(models["synth"].calls_for("text")) == 1
    settings = shown["settings"]
    assert settings["worker_model"] == "scripted:cheap" and settings["max_parallel"] == 2
    assert settings["max_cost_usd"] == 5 and settings["judge"] and settings["review_plan"]
    md = cli("show", "s1", "--format", "md").output
    assert "## Settings" in md and "- worker_model: scripted:cheap" in md


def test_a_resume_changes_a_setting_only_when_told_and_says_so(models: Any, cli: Any) -> None:
    assert cli("run", HEAT_PUMPS, "--thread", "s2", "--review-plan", "--no-ask",
               *STARTED_WITH).exit_code == 3  # fmt: skip
    done = cli("resume", "s2", "--answer", '{"action": "approve"}', "--no-ask",
               "--model", "worker=scripted:other", "--max-parallel", "3")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "resuming with changed settings:" in done.output
    assert "worker_model: 'scripted:cheap' -> 'scripted:other'" in done.output
    assert "max_parallel: 2 -> 3" in done.output
    shown = json.loads(cli("show", "s2", "--format", "json").output)
    assert attempt_models(shown) == {"scripted:other"}
    assert shown["settings"]["worker_model"] == "scripted:other"
    assert shown["settings"]["judge"]  # untouched settings stay
    [change] = [e for e in shown["audit"] if e["kind"] == "settings"]
    assert change["detail"]["changed"]["worker_model"] == ["scripted:cheap", "scripted:other"]


def test_rerun_goes_on_with_the_runs_settings(models: Any, cli: Any) -> None:
    assert cli("run", HEAT_PUMPS, "--thread", "s3", "--no-ask", *STARTED_WITH).exit_code == 0
    again = cli("rerun", "s3", "w1")
    assert again.exit_code == 0, again.output
    shown = json.loads(cli("show", "s3", "--format", "json").output)
    assert attempt_models(shown) == {"scripted:cheap"}
    assert shown["settings"]["max_parallel"] == 2


def test_rerun_on_a_paused_thread_and_at_a_given_checkpoint(models: Any, cli: Any) -> None:
    models["w"] = models["worker"]  # `scripted:w` is the same scripted model
    models["w"].on("Section", "section on running", {"status": "failed", "error": "no"})
    models["w"].on("Answer", "section on running", {"status": "failed", "error": "no"})
    paused = cli("run", HEAT_PUMPS, "--thread", "s4", "--no-ask", "--model", "worker=scripted:w")
    assert paused.exit_code == 3, paused.output  # w2 failed twice, replanned, escalated
    assert "paused" in json.loads(cli("show", "s4", "--format", "json").output)["status"]
    fork = cli("rerun", "s4", "r1", "--quiet")
    assert fork.exit_code in (0, 3), fork.output
    assert "running again: r1, w1\n" in fork.output  # summary has not run: nothing to redo
    checkpoints = json.loads(cli("show", "s4", "--format", "json").output)["checkpoints"]
    early = next(c["checkpoint_id"] for c in checkpoints if c["next"] == ["validate"])
    at = cli("rerun", "s4", "r1", "--checkpoint", early, "--quiet")
    assert "KeyError" not in at.output and at.exit_code in (0, 3), at.output


def test_validator_model_without_judge_is_pointed_out(cli: Any) -> None:
    result = cli("run", HEAT_PUMPS, "--thread", "s5", "--no-ask", "--quiet",
                 "--model", "validator=offline")  # fmt: skip
    assert result.exit_code == 0
    assert "--model validator=... has no effect without --judge" in result.output
