"""Response worker: drafts the reply to the customer from the lookup and policy results."""

from __future__ import annotations

import json
import re
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import Field

from foreman.core.context import Context
from foreman.core.prompts import untrusted
from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, one_call_worker, request_prompt
from foreman.workers.spec import WorkerSpec

NAME = "response"
_ORDER_ID = re.compile(r"\b[A-Z]\d{5}\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class CustomerReply(WorkerStatus):
    """The reply, and what it rests on."""

    subject: str = Field(default="", description="Email subject line.")
    body: str = Field(default="", description="The reply to the customer, ready to send.")
    rules_applied: list[str] = Field(
        default_factory=list, description="Ids of the policy rules the reply applies."
    )
    order_ids: list[str] = Field(
        default_factory=list, description="Orders the reply discusses (from the lookup)."
    )
    needs_approval: bool = Field(
        default=False, description="True when a person must approve before it is sent."
    )
    internal_note: str = Field(default="", description="For the agent, not the customer.")


def facts(inp: WorkerInput) -> dict[str, Any]:
    """The structured outputs of the inputs, by worker: what the reply may rely on."""
    return {
        dep.worker: {k: v for k, v in (dep.output or {}).items() if k not in ("status",)}
        for dep in inp.dependencies.values()
    }


def _request(inp: WorkerInput) -> str:
    """The request, and the inputs' structured outputs as the facts the reply may use."""
    known = json.dumps(facts(inp), indent=1, default=str)
    return request_prompt(inp) + f"\n<facts>\n{untrusted(known)}\n</facts>"


def check_reply(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Reply rules: rests on the inputs only — their rules, their orders, their customer."""
    known = facts(inp)
    problems: list[str] = []
    body = str(output.get("body", ""))
    if not body.strip():
        return ["the reply is empty"]
    if "policy" in known:
        allowed = {r.get("rule_id") for r in known["policy"].get("rules", [])}
        invented = [r for r in output.get("rules_applied", []) if r not in allowed]
        if invented:
            problems.append(f"applies rules the policy result did not give: {invented}")
    if "lookup" in known:
        orders = {o.get("id") for o in known["lookup"].get("orders", [])}
        stray = sorted(set(_ORDER_ID.findall(body)) - orders)
        if stray:
            problems.append(f"mentions orders the lookup did not return: {stray}")
        customer = known["lookup"].get("customer") or {}
        # The customer's own address, and the shop's addresses the policy quotes.
        allowed = {str(customer.get("email", "")).lower()} | {
            e.lower() for e in _EMAIL.findall(json.dumps(known.get("policy", {})))
        }
        if {e.lower() for e in _EMAIL.findall(body)} - allowed:
            problems.append("the reply contains an email address other than the customer's")
    if re.search(r"\[(?:name|order|date|amount)[^\]]*\]|\{\w+\}", body, re.I):
        problems.append("the reply still has placeholders")
    return problems


def render_reply(output: dict[str, Any]) -> str:
    """Subject and body, then the agent's note."""
    parts = [f"**Subject:** {output.get('subject', '')}", str(output.get("body", ""))]
    rules = ", ".join(output.get("rules_applied", []))
    note = output.get("internal_note", "")
    if output.get("needs_approval"):
        note = f"Needs a supervisor's approval before sending. {note}".strip()
    if rules or note:
        parts.append(f"*Agent note:* rules applied: {rules or 'none'}. {note}".rstrip())
    return "\n\n".join(p for p in parts if p)


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the response worker subgraph."""
    return one_call_worker(NAME, CustomerReply, node="respond", human=_request)


def spec() -> WorkerSpec:
    """The `response` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="response",
        uses_tools=False,
        capability="customer service",
        description="drafts the reply to the customer from lookup and policy results, "
        "applying the rules to the order facts",
        graph=build(),
        output_schema=CustomerReply,
        check=check_reply,
        render=render_reply,
    )
