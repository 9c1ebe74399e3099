"""Run configuration: the `Context` every node reads, rendered as a form in LangGraph Studio."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from foreman.core.resources import DATA_DIR

DEFAULT_CORPUS = DATA_DIR / "corpus"
DEFAULT_SUPPORT_DB = DATA_DIR / "support" / "shop.sqlite"
DEFAULT_POLICY = DATA_DIR / "support" / "policy.md"
DEFAULT_DATASETS = DATA_DIR / "datasets"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


StructuredOutputMethod = Literal["function_calling", "json_schema", "json_mode"]
Scheduler = Literal["dataflow", "waves"]
WorkerDurability = Literal["async", "exit"]
CacheMode = Literal["use", "refresh", "off"]
WEEK_S = 7 * 86400.0


def _choice(name: str, default: str, choices: Any) -> Any:
    """An environment setting that must be one of a `Literal`'s values."""
    value = _env(name, default)
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


@dataclass(kw_only=True)
class Context:
    """Configuration of one Foreman run. Defaults come from the environment.

    Model specs are `PROVIDER:MODEL` strings: `offline` (the built-in deterministic
    extractive mode, no network), `openai:gpt-4.1-mini`, a provider LangChain's
    `init_chat_model` knows (`anthropic:...`, `google_genai:...`, `ollama:...`, with its
    extra installed), or any OpenAI-compatible server as `NAME:MODEL` with `NAME_BASE_URL`
    (and `NAME_API_KEY`) set. README, Providers.
    """

    planner_model: str = field(
        default_factory=lambda: _env("FOREMAN_PLANNER_MODEL", "offline"),
        metadata={"description": "Orchestrator model that writes and revises the plan."},
    )
    worker_model: str = field(
        default_factory=lambda: _env("FOREMAN_WORKER_MODEL", "offline"),
        metadata={"description": "Default model for LLM-backed workers (the cheap one)."},
    )
    worker_models: dict[str, str] = field(
        default_factory=dict,
        metadata={"description": 'Per-worker model overrides, e.g. {"writer": "openai:gpt-4.1"}.'},
    )
    validator_model: str = field(
        default_factory=lambda: _env("FOREMAN_VALIDATOR_MODEL", "offline"),
        metadata={"description": "Judge model used by the validator when `judge` is on."},
    )
    synthesizer_model: str = field(
        default_factory=lambda: _env("FOREMAN_SYNTHESIZER_MODEL", "offline"),
        metadata={"description": "Model that writes the final answer from accepted results."},
    )
    structured_output_method: StructuredOutputMethod = field(
        default_factory=lambda: _choice(
            "FOREMAN_STRUCTURED_OUTPUT", "function_calling", StructuredOutputMethod
        ),
        metadata={
            "description": "How OpenAI-compatible models return structured output: "
            "function_calling (widest support), json_schema or json_mode."
        },
    )
    scheduler: Scheduler = field(
        default_factory=lambda: _choice("FOREMAN_SCHEDULER", "dataflow", Scheduler),
        metadata={
            "description": "dataflow: each subtask starts when its own inputs are accepted; "
            "waves: a Send fan-out per round of ready subtasks (slower on uneven plans)."
        },
    )
    worker_durability: WorkerDurability = field(
        default_factory=lambda: _choice("FOREMAN_WORKER_DURABILITY", "exit", WorkerDurability),
        metadata={
            "description": "When a worker attempt's own state is saved, under the attempt's "
            "checkpoint namespace, where Studio shows it: exit, only if the attempt fails or "
            "is cut off; async, every step of every attempt (checkpoints grow by the "
            "attempts' inputs, dependencies' results included)."
        },
    )
    workers_file: str = field(
        default_factory=lambda: _env("FOREMAN_WORKERS_FILE", ""),
        metadata={
            "description": "A TOML file declaring more workers (prompts, tool-using agents, "
            "MCP tools, remote LangGraph or A2A agents); empty: the built-in workers only. "
            "README, Workers."
        },
    )
    cache: CacheMode = field(
        default_factory=lambda: _choice("FOREMAN_CACHE", "use", CacheMode),
        metadata={
            "description": "Cross-run result cache: use (reuse an accepted result of an "
            "identical subtask, same inputs, model and worker version, from an earlier run; "
            "store new ones), refresh (run every subtask, and store its result over the old "
            "one) or off (neither)."
        },
    )
    cache_ttl_s: float = field(
        default_factory=lambda: float(_env("FOREMAN_CACHE_TTL_S", str(WEEK_S))),
        metadata={
            "description": "How long a cached result may be reused, in seconds (default a "
            "week; 0 turns the cache off)."
        },
    )
    review_plan: bool = field(
        default=False,
        metadata={"description": "Pause after planning so a person can approve, edit or reject."},
    )
    judge: bool = field(
        default=False,
        metadata={"description": "Also ask the validator model to check acceptance criteria."},
    )
    corpus_dir: str = field(
        default_factory=lambda: _env("FOREMAN_CORPUS", str(DEFAULT_CORPUS)),
        metadata={"description": "Folder of .md/.txt documents the research worker searches."},
    )
    web_search: str = field(
        default_factory=lambda: _env("FOREMAN_WEB_SEARCH", ""),
        metadata={
            "description": "Optional web search for the research worker (the web extra): "
            "searx:URL, tavily or duckduckgo (empty: corpus only)."
        },
    )
    support_db: str = field(
        default_factory=lambda: _env("FOREMAN_SUPPORT_DB", str(DEFAULT_SUPPORT_DB)),
        metadata={"description": "SQLite database of accounts and orders the lookup worker reads."},
    )
    policy_path: str = field(
        default_factory=lambda: _env("FOREMAN_POLICY", str(DEFAULT_POLICY)),
        metadata={"description": "Customer-service policy document the policy worker quotes."},
    )
    datasets_dir: str = field(
        default_factory=lambda: _env("FOREMAN_DATASETS", str(DEFAULT_DATASETS)),
        metadata={"description": "Folder of CSV and SQLite files the data worker may analyse."},
    )
    artifacts_dir: str = field(
        default_factory=lambda: _env(
            "FOREMAN_ARTIFACTS", str(Path(_env("FOREMAN_HOME", ".foreman")) / "artifacts")
        ),
        metadata={"description": "Where workers store files they produce (plots), by content."},
    )
    sandbox_timeout_s: float = field(
        default=30.0,
        metadata={"description": "Wall-clock limit for one sandboxed program (code, analysis)."},
    )
    max_fix_rounds: int = field(
        default=1,
        metadata={"description": "Fix-and-review rounds after a review asks for changes."},
    )
    max_subtasks: int = field(
        default=12, metadata={"description": "Plans with more subtasks are rejected."}
    )
    max_parallel: int = field(
        default=4, metadata={"description": "Most subtasks running at the same time."}
    )
    max_attempts: int = field(
        default=2,
        metadata={"description": "Attempts per worker on one subtask (1 + retries with feedback)."},
    )
    max_plan_attempts: int = field(
        default=3, metadata={"description": "Planner tries before an invalid plan ends the run."}
    )
    max_synthesis_attempts: int = field(
        default=3,
        metadata={"description": "Synthesizer tries while its answer is empty."},
    )
    max_replans: int = field(
        default=1, metadata={"description": "Plan revisions after failed subtasks, then escalate."}
    )
    max_total_tokens: int = field(
        default=0, metadata={"description": "Stop dispatching past this many tokens (0: no limit)."}
    )
    max_cost_usd: float = field(
        default=0.0,
        metadata={"description": "Stop dispatching past this cost in USD (0: no limit)."},
    )
    max_subtask_cost_usd: float = field(
        default=0.0,
        metadata={
            "description": "Most USD one subtask may spend, all attempts together; a model "
            "call whose estimate would pass it is refused before it is made (0: no cap)."
        },
    )
    assumed_output_tokens: int = field(
        default=1024,
        metadata={
            "description": "Output tokens a model call is assumed to need when estimating "
            "its cost before making it, until the history knows the worker's largest."
        },
    )
    model_ladders: dict[str, list[str]] = field(
        default_factory=dict,
        metadata={
            "description": 'Per worker, models from cheap to strong, e.g. {"research": '
            '["openai:gpt-4.1-nano", "openai:gpt-4.1"]}: an attempt starts on the cheapest '
            "whose acceptance rate for the worker's capability meets the cascade's target "
            "(cheapest first without history), and a failed validation moves one rung up."
        },
    )
    cascade_target: float = field(
        default=0.9,
        metadata={
            "description": "A rung is started on when its acceptance rate is at least this "
            "share of the best rate a rung of the ladder has shown."
        },
    )
    cascade_min_attempts: int = field(
        default=10,
        metadata={
            "description": "Attempts a rung needs in the history before its acceptance rate "
            "counts; below it the rung is tried."
        },
    )
    hedge_percentile: float = field(
        default=0.0,
        metadata={
            "description": "Start a second attempt (the next rung's model, else an "
            "alternative worker, else the same) when one runs past this percentile of its "
            "worker's observed latency, e.g. 0.9; the first acceptable result wins and the "
            "other is cancelled (0: no hedging)."
        },
    )
    hedge_min_attempts: int = field(
        default=20,
        metadata={"description": "Attempts the history needs before a latency is trusted."},
    )
    worker_timeout_s: float = field(
        default=300.0,
        metadata={
            "description": "Wall-clock limit for one worker attempt (longer than a stalled "
            "model request takes to give up: FOREMAN_HTTP_TIMEOUT x (FOREMAN_HTTP_RETRIES + 1))."
        },
    )
    synthesis_context_tokens: int = field(
        default=6000,
        metadata={
            "description": "Budget for worker outputs in the synthesizer prompt; "
            "longer outputs are condensed."
        },
    )

    def model_for_worker(self, worker: str) -> str:
        """Return the model spec a worker runs with (its override, else `worker_model`)."""
        return self.worker_models.get(worker, self.worker_model)

    def model_specs(self) -> list[str]:
        """Every model spec a run with this Context may call, each once."""
        specs = [self.planner_model, self.worker_model, self.synthesizer_model]
        specs += list(self.worker_models.values())
        specs += [m for ladder in self.model_ladders.values() for m in ladder]
        if self.judge:
            specs.append(self.validator_model)
        return list(dict.fromkeys(specs))


def settings_of(ctx: Context) -> dict[str, Any]:
    """A Context as the plain dict a thread keeps in its `settings` channel."""
    return dataclasses.asdict(ctx)


def context_from(settings: dict[str, Any] | None, **overrides: Any) -> Context:
    """The Context a thread's `settings` describe, with `overrides` applied.

    Keys this version of Foreman does not know (a thread written by another version) are
    ignored; fields the settings lack take their defaults.
    """
    known = {f.name for f in dataclasses.fields(Context)}
    values = {k: v for k, v in (settings or {}).items() if k in known}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Context(**values)
