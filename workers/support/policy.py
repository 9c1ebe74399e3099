"""Policy worker: finds the written rules that apply to a request, and quotes them.

The policy document has one `## R<n> · Title` section per rule. Rules are retrieved with BM25;
the model decides which of them apply and quotes them; the check verifies every quote is
the rule's own words.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from foreman.core.context import Context
from foreman.core.prompts import untrusted
from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, WorkerState, ask_worker_model, request_prompt
from foreman.workers.spec import WorkerSpec
from foreman.workers.tools.corpus import Corpus, Passage

NAME = "policy"
OFFERED = 6
_HEADING = re.compile(r"^## +(R\d+)\s*[·:\-—]\s*(.+)$", re.M)


@dataclass(frozen=True)
class Rule:
    """One rule of the policy."""

    id: str
    title: str
    text: str


class Policy:
    """The rules of a policy document, searchable."""

    def __init__(self, rules: list[Rule]):
        if not rules:
            raise ValueError("the policy document has no `## R<n> · Title` rules")
        self.rules = {r.id: r for r in rules}
        self._index = Corpus([Passage(r.id, "policy", r.title, "", r.text) for r in rules])

    def search(self, query: str, k: int = OFFERED) -> list[Rule]:
        """The rules that best match `query`."""
        return [self.rules[h.passage.id] for h in self._index.search(query, k=k)]


def parse_policy(text: str) -> list[Rule]:
    """Split a policy document into its rules."""
    heads = list(_HEADING.finditer(text))
    rules = []
    for head, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end() : nxt.start() if nxt else len(text)]
        rules.append(Rule(head.group(1), head.group(2).strip(), " ".join(body.split())))
    return rules


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Policy:
    return Policy(parse_policy(Path(path).read_text(encoding="utf-8")))


def load_policy(path: str | Path) -> Policy:
    """Load (and cache until the file changes) the policy at `path`."""
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise FileNotFoundError(f"policy document not found: {p}")
    return _load(str(p), p.stat().st_mtime)


class RuleApplication(BaseModel):
    """One rule that applies, in its own words."""

    rule_id: str = Field(description="Id of the rule, e.g. `R3`.")
    quote: str = Field(description="The sentence(s) of the rule that apply, copied exactly.")
    applies_because: str = Field(default="", description="Why it applies to this request.")


class PolicyDecision(WorkerStatus):
    """The rules that govern the request."""

    rules: list[RuleApplication] = Field(default_factory=list, description="Applicable rules.")
    summary: str = Field(default="", description="What the rules allow, in one or two lines.")


class PolicyState(WorkerState, total=False):
    """Policy worker state: adds the rules offered to the model."""

    offered: list[dict[str, str]]
    """Retrieved rules: id, title, text."""


def _query(inp: WorkerInput) -> str:
    parts = [inp.subtask.objective, inp.clarification or ""]
    for dep in inp.dependencies.values():
        out = dep.output or {}
        parts += [str(out.get("intent", "")).replace("_", " "), str(out.get("summary", ""))]
        parts += [str(i).replace("_", " ") for i in out.get("secondary_intents", [])]
    return " ".join(parts)


async def retrieve_rules(state: PolicyState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Offer the model the rules that best match the request."""
    inp = WorkerInput.model_validate(state["input"])
    policy = await asyncio.to_thread(load_policy, runtime.context.policy_path)
    rules = policy.search(_query(inp))
    return {"offered": [{"id": r.id, "title": r.title, "text": r.text} for r in rules]}


async def decide_rules(state: PolicyState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the model which offered rules apply, with quotes."""
    inp = WorkerInput.model_validate(state["input"])
    rules = "\n".join(
        f'<rule id="{r["id"]}" title="{untrusted(r["title"])}">{untrusted(r["text"])}</rule>'
        for r in state["offered"]
    )
    decision, usage, spec = await ask_worker_model(
        NAME, PolicyDecision, "policy", request_prompt(inp) + f"\n<rules>\n{rules}\n</rules>",
        runtime.context,
    )  # fmt: skip
    output = decision.model_dump()
    output["offered"] = [r["id"] for r in state["offered"]]
    return {"output": output, "usage": usage, "model": spec}


def _norm(text: str) -> str:
    return " ".join(text.replace("“", '"').replace("”", '"').replace("’", "'").split())


def check_policy(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Policy rules: at least one rule; each exists, was offered, and is quoted exactly."""
    applied = output.get("rules", [])
    if not applied:
        return ["no rule was cited"]
    policy = load_policy(ctx.policy_path)
    offered = set(output.get("offered", []))
    problems = []
    for r in applied:
        rule = policy.rules.get(r.get("rule_id", ""))
        if rule is None:
            problems.append(f"rule {r.get('rule_id')!r} does not exist in the policy")
        elif offered and rule.id not in offered:
            problems.append(f"rule {rule.id} was not among the rules retrieved for this request")
        elif not r.get("quote") or _norm(r["quote"]) not in _norm(rule.text):
            problems.append(f"the quote given for {rule.id} is not the rule's own words")
    return problems


def render_policy(output: dict[str, Any]) -> str:
    """Each rule with its quote and why it applies."""
    lines = [output.get("summary", "")]
    lines += [
        f"- **{r['rule_id']}**: “{r['quote']}”"
        + (f" — {r['applies_because']}" if r.get("applies_because") else "")
        for r in output.get("rules", [])
    ]
    return "\n".join(line for line in lines if line)


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the policy worker subgraph."""
    builder = StateGraph(PolicyState, context_schema=Context)
    builder.add_node(retrieve_rules)
    builder.add_node(decide_rules)
    builder.add_edge(START, "retrieve_rules")
    builder.add_edge("retrieve_rules", "decide_rules")
    builder.add_edge("decide_rules", END)
    return builder.compile(name=NAME, checkpointer=False)


def spec() -> WorkerSpec:
    """The `policy` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="policy",
        uses_tools=False,
        capability="customer service",
        description="finds the written customer-service rules that apply to a "
        "request and quotes them word for word",
        graph=build(),
        reads=("policy_path",),
        output_schema=PolicyDecision,
        check=check_policy,
        render=render_policy,
    )
