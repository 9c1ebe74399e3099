"""The workers file: its schema, and loading it with errors that name the line.

A workers file is TOML: `[workers.NAME]` tables, each with a `kind`, and the MCP servers
they draw tools from under `[mcp_servers.NAME]`. README, Workers, shows each kind.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

NAME = re.compile(r"^[A-Za-z_][\w-]*$")
"""Worker names: what a plan's `worker` field and the planner's worker list hold."""
ModelRole = Literal["worker", "planner", "validator", "synthesizer"]
"""The Context model a declared worker runs on when it names no `model` of its own."""


class WorkersFileError(ValueError):
    """A workers file that cannot be used; the message names the file and the line."""


class Strict(BaseModel):
    """A table of the file: a key Foreman does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Rules(Strict):
    """The validation rules a declared worker's output is checked against (all optional)."""

    not_empty: bool = Field(default=True, description="The answer has some text.")
    min_words: int | None = Field(default=None, ge=1, description="At least this many words.")
    max_words: int | None = Field(default=None, ge=1, description="At most this many words.")
    must_include: list[str] = Field(
        default_factory=list, description="Phrases the answer must contain (any case)."
    )
    must_not_include: list[str] = Field(
        default_factory=list, description="Phrases the answer must not contain (any case)."
    )
    pattern: str | None = Field(default=None, description="A regular expression it must match.")
    keeps_citations: bool = Field(
        default=False,
        description="Cites ([id]) at least one passage its inputs cite, and none they don't.",
    )
    used_tools: bool = Field(
        default=False, description="A tool-using worker made at least one successful tool call."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class WorkerBase(Strict):
    """What every declared worker has."""

    capability: str = Field(min_length=1, description="Short tag, e.g. `conversion`.")
    description: str = Field(min_length=1, description="What the planner is told it does.")
    model: str | None = Field(
        default=None, description="Its own model spec; default: the model of `role`."
    )
    role: ModelRole = Field(default="worker", description="Whose model it runs on otherwise.")
    prompt: str | None = Field(default=None, description="System prompt, inline.")
    prompt_file: str | None = Field(
        default=None, description="System prompt from a file (relative to the workers file)."
    )
    output: Literal["text", "section", "findings"] = Field(
        default="text",
        description="Output shape: text (Markdown), or one of Foreman's schemas; "
        "`output_schema` instead for a JSON schema.",
    )
    output_schema: dict[str, Any] | None = Field(default=None, description="A JSON schema.")
    output_schema_file: str | None = Field(default=None, description="A JSON schema file.")
    rules: Rules = Field(default_factory=Rules)
    alternatives: list[str] = Field(
        default_factory=list, description="Workers to substitute when this one keeps failing."
    )
    timeout_s: float | None = Field(default=None, gt=0, description="Limit of one attempt.")
    max_tokens: int = Field(default=0, ge=0, description="Token cap of one attempt (0: none).")
    max_cost_usd: float = Field(default=0.0, ge=0, description="USD cap of one attempt.")
    cache: bool | None = Field(
        default=None,
        description="Whether a later run may reuse an accepted result for the same subtask, "
        "inputs and model. Default: yes for `prompt` workers; no for the others, whose "
        "tools or remote agents may read live data or act.",
    )


class PromptWorker(WorkerBase):
    """A model with its own prompt: one call per attempt."""

    kind: Literal["prompt"]


class AgentWorker(WorkerBase):
    """A tool-calling agent over LangChain tools given by import path (`pkg.mod:tool`)."""

    kind: Literal["agent"]
    tools: list[str] = Field(min_length=1, description="`module:attribute` of each tool.")
    max_steps: int = Field(default=6, ge=1, le=50, description="Most model calls per attempt.")


class McpWorker(WorkerBase):
    """A tool-calling agent over the tools of MCP servers, only those it allows."""

    kind: Literal["mcp"]
    servers: list[str] = Field(min_length=1, description="Names under `[mcp_servers]`.")
    tools: list[str] = Field(
        min_length=1, description="The allow-list: the only tools the worker sees and calls."
    )
    max_steps: int = Field(default=6, ge=1, le=50, description="Most model calls per attempt.")


class RemoteGraphWorker(WorkerBase):
    """A graph on another LangGraph server (another Foreman too), by URL and assistant."""

    kind: Literal["remote_graph"]
    url: str = Field(description="The server, e.g. http://127.0.0.1:2024.")
    graph: str = Field(description="Assistant id or graph id on that server.")
    input: Literal["messages", "request"] = Field(
        default="messages", description='Send {"messages": [...]} or {"request": "..."}.'
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the server's API key."
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="The run context sent with each run, e.g. `{ review_plan = true }` for a "
        "remote Foreman; empty: the assistant's own.",
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value.rstrip("/")


class A2AWorker(WorkerBase):
    """A remote agent speaking the A2A protocol, found from its agent card."""

    kind: Literal["a2a"]
    url: str = Field(description="The agent's base URL (its card is under /.well-known/).")
    headers: dict[str, str] | None = Field(
        default=None,
        description='HTTP headers of every request, e.g. Authorization = "Bearer ${TOKEN}".',
    )


DeclaredWorker = Annotated[
    PromptWorker | AgentWorker | McpWorker | RemoteGraphWorker | A2AWorker,
    Field(discriminator="kind"),
]


class McpServer(Strict):
    """An MCP server: a command started over stdio, or a streamable HTTP endpoint."""

    transport: Literal["stdio", "streamable_http"]
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    timeout_s: float = Field(default=30.0, gt=0, description="Start-up and call limit.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _complete(self) -> McpServer:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio server needs `command`")
        if self.transport == "streamable_http" and not self.url:
            raise ValueError("a streamable_http server needs `url`")
        return self


class WorkersFile(Strict):
    """A whole workers file."""

    workers: dict[str, DeclaredWorker] = Field(default_factory=dict)
    mcp_servers: dict[str, McpServer] = Field(default_factory=dict)


class Loaded(BaseModel):
    """A parsed workers file, with what is needed to report a problem by line."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    path: Path
    text: str
    file: WorkersFile

    def where(self, *loc: str | int) -> str:
        """`path:line` of the table or key at `loc` (the table's line if the key is not)."""
        line = locate(self.text, [str(k) for k in loc])
        return f"{self.path}:{line}" if line else str(self.path)

    def resolve(self, relative: str) -> Path:
        """A path in the file, relative to the file's folder."""
        return (self.path.parent / relative).expanduser()


def _header(text: str, parts: list[str]) -> int | None:
    """The line of the table header `[a.b.c]` (keys bare or quoted), 1-based."""
    key = r"\s*\.\s*".join(
        rf"(?:{re.escape(p)}|\"{re.escape(p)}\"|'{re.escape(p)}')" for p in parts
    )
    found = re.search(rf"^[ \t]*\[[ \t]*{key}[ \t]*\]", text, re.M)
    return text.count("\n", 0, found.start()) + 1 if found else None


def locate(text: str, loc: list[str]) -> int | None:
    """The 1-based line of what `loc` (a path of keys) points at in TOML `text`.

    The innermost table header on the path, then the key inside that table; tomllib keeps
    no positions, and a workers file is small enough to search.
    """
    lines = text.splitlines()
    for depth in range(len(loc), 0, -1):
        start = _header(text, loc[:depth])
        if start is None:
            continue
        if depth == len(loc):
            return start
        key = loc[depth]
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*[=.]")
        for n in range(start, len(lines)):
            if lines[n].lstrip().startswith("["):
                break
            if pattern.match(lines[n]):
                return n + 1
        return start
    return None


def _message(error: dict[str, Any]) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def load(path: str | Path) -> Loaded:
    """Read and validate a workers file.

    Raises:
        WorkersFileError: the file is missing, is not TOML, or does not fit the schema; each
            problem on its own line, as `path:line: where: what`.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkersFileError(f"{path}: cannot read the workers file: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = f":{at.group(1)}" if at else ""
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise WorkersFileError(f"{path}{line}: not valid TOML: {what}") from exc
    try:
        parsed = WorkersFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # the union's tag ("mcp") is in the path pydantic gives, not in the file
            loc = [str(k) for k in error["loc"]]
            if (
                len(loc) > 2
                and loc[0] == "workers"
                and loc[2] == str(raw.get("workers", {}).get(loc[1], {}).get("kind"))
            ):
                del loc[2]
            found = locate(text, loc)
            where = f"{path}:{found}" if found else str(path)
            problems.append(f"{where}: {'.'.join(loc)}: {_message(dict(error))}")
        raise WorkersFileError("\n".join(problems)) from exc
    bad = [n for n in parsed.workers if not NAME.match(n)]
    if bad:
        raise WorkersFileError(
            "\n".join(
                f"{path}:{locate(text, ['workers', n]) or '?'}: worker name {n!r}: use letters, "
                "digits, _ and -, starting with a letter or _"
                for n in bad
            )
        )
    return Loaded(path=path, text=text, file=parsed)
