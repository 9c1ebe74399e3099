"""Questions a paused run asks: show them, check `--answer` against them, ask in a terminal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from rich.console import Console

from foreman.core.models import ModelConfigError, load_chat_model
from foreman.core.schemas import RetrySubtask
from foreman.core.text import nesting_depth
from foreman.errors import UsageError
from foreman.orchestration.hitl import AnswerError, from_ui
from foreman.orchestration.human_review import CLARIFICATION, ESCALATION, PLAN_REVIEW, explain

PAYLOADS: dict[str, TypeAdapter[Any]] = {
    "plan_review": PLAN_REVIEW,
    "clarification": CLARIFICATION,
    "escalation": ESCALATION,
}


def pending_interrupts(snapshot: Any) -> list[Any]:
    """The interrupts a state snapshot is waiting on."""
    return list(getattr(snapshot, "interrupts", ()) or ())


def print_interrupts(console: Console, thread: str, pending: list[Any]) -> None:
    """Show each pending question with the answers it takes, and how to resume."""
    console.rule("[bold cyan]Waiting for you")
    for intr in pending:
        value = intr.value
        kind = value.get("kind")
        if value.get("error"):
            console.print(f"[red]Previous answer rejected:[/] {value['error']}")
        if kind == "plan_review":
            console.print(f"[bold]Plan v{value.get('version')} to review[/] (interrupt {intr.id}):")
            for sub in value["plan"]["subtasks"]:
                deps = f" ← {', '.join(sub['inputs'])}" if sub["inputs"] else ""
                console.print(
                    f"  {sub['id']} [{sub['worker']}]{deps}: {sub['objective']}",
                    highlight=False,
                    markup=False,
                )
        elif kind == "clarification":
            console.print(f"[bold]{value['subtask']} asks:[/] {value['question']}")
        elif kind == "escalation":
            console.print(
                f"[bold]{value['subtask']} ({value['worker']}) failed:[/] "
                f"{value.get('failure') or 'no reason was given'}",
                highlight=False,
            )
            for att in value.get("attempts") or []:
                console.print(
                    f"  attempt {att.get('n')}: {att.get('worker')} on {att.get('model')}, "
                    f"{att.get('verdict')}" + (f": {att['error']}" if att.get("error") else ""),
                    highlight=False,
                    markup=False,
                )
        console.print(f"  answer with: {value.get('expected')}", highlight=False, markup=False)
    key = "" if len(pending) == 1 else " (several: a JSON object keyed by subtask id)"
    console.print(f"\nResume: [bold]foreman resume {thread} --answer 'JSON'[/]{key}")


MAX_ANSWER_DEPTH = 32


def resume_value(pending: list[Any], answer: str) -> Any:
    """Parse and check `--answer` against the pending interrupts, before touching the thread."""
    try:
        data = json.loads(answer)
    except json.JSONDecodeError:
        data = answer  # a plain string answers a clarification
    except RecursionError:
        data = None
    if data is None or nesting_depth(data, MAX_ANSWER_DEPTH + 1) > MAX_ANSWER_DEPTH:
        raise UsageError(
            "--answer must be a JSON object (or, for a question, a string), nested at most "
            f"{MAX_ANSWER_DEPTH} levels deep"
        )

    def check(intr: Any, value: Any) -> Any:
        kind = intr.value.get("kind")
        try:
            decision = PAYLOADS[kind].validate_python(from_ui(kind, value))
            if isinstance(decision, RetrySubtask) and decision.model:
                load_chat_model(decision.model)
        except ValidationError as exc:
            raise UsageError(
                f"answer for {intr.value.get('subtask') or kind} is not valid: {explain(exc)}; "
                f"expected {intr.value.get('expected')}"
            ) from exc
        except ModelConfigError as exc:
            raise UsageError(f"the model for the retry cannot be used: {exc}") from exc
        except AnswerError as exc:
            raise UsageError(f"answer for {intr.value.get('subtask') or kind}: {exc}") from exc
        return value

    if len(pending) == 1:
        return check(pending[0], data)
    if not isinstance(data, dict):
        raise UsageError(
            "several questions are pending: answer with a JSON object keyed by "
            "subtask id (or interrupt id)"
        )
    values = {}
    for intr in pending:
        key = next((k for k in (intr.id, intr.value.get("subtask")) if k in data), None)
        if key is None:
            raise UsageError(f"no answer for {intr.value.get('subtask') or intr.id}")
        values[intr.id] = check(intr, data[key])
    return values


def ask_in_terminal(value: dict[str, Any], read: Callable[[str], str]) -> Any:
    """Ask a person for one interrupt's answer; None leaves the run paused."""
    kind = value.get("kind")
    if kind == "plan_review":
        choice = read("approve / reject / later (edit with foreman resume --answer) [approve]: ")
        choice = choice.strip().lower() or "approve"
        if choice == "approve":
            return {"action": "approve"}
        if choice == "reject":
            return {"action": "reject", "feedback": read("what should change? ").strip() or "?"}
        return None
    if kind == "clarification":
        answer = read(f"answer for {value.get('subtask')} (empty: later): ").strip()
        return {"answer": answer} if answer else None
    if kind == "escalation":
        choice = read(f"{value.get('subtask')}: retry / skip / supply / abort / later [later]: ")
        choice = choice.strip().lower()
        if choice == "retry":
            model = read("model for the retry (empty: the run's own): ").strip()
            note = read("note for the worker (empty: none): ").strip()
            return {"action": "retry", "model": model or None, "note": note}
        if choice == "skip":
            return {"action": "skip"}
        if choice == "supply":
            return {"action": "supply", "result": read("result text: ").strip() or "(empty)"}
        if choice == "abort":
            return {"action": "abort", "reason": read("reason: ").strip()}
    return None
