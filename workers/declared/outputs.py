"""A declared worker's output: its shape, the call that fills it, its rendering and checks.

The shape is text (Markdown), one of Foreman's schemas, or a JSON schema from the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from foreman.core.context import Context
from foreman.core.models import ainvoke_json, ainvoke_structured, ainvoke_text
from foreman.core.schemas import WorkerStatus
from foreman.core.state import Usage
from foreman.workers.base import WorkerInput
from foreman.workers.declared.config import Loaded, Rules, WorkerBase, WorkersFileError
from foreman.workers.declared.rules import broken_rules
from foreman.workers.research import ResearchFindings, render_findings
from foreman.workers.writer import Section, render_section


class TextOutput(WorkerStatus):
    """A declared worker's answer in Markdown."""

    text: str = Field(default="", description="The answer, in Markdown.")
    tools_called: list[str] = Field(
        default_factory=list, description="Tools that returned a result, in call order."
    )


class ResultOutput(WorkerStatus):
    """A declared worker's answer in the JSON schema its file gives (`result`)."""

    result: dict[str, Any] = Field(default_factory=dict)
    tools_called: list[str] = Field(default_factory=list)


def render_text(output: dict[str, Any]) -> str:
    """The answer text."""
    return str(output.get("text", ""))


def render_result(output: dict[str, Any]) -> str:
    """A result as Markdown: one line per field."""
    result = output.get("result") or {}
    return "\n".join(
        f"- **{key}**: {value if isinstance(value, str) else json.dumps(value)}"
        for key, value in result.items()
    )


_NAMED: dict[str, tuple[type[WorkerStatus], Any]] = {
    "section": (Section, render_section),
    "findings": (ResearchFindings, render_findings),
}


@dataclass(frozen=True)
class Shape:
    """How a declared worker's output looks and is checked."""

    model: type[BaseModel]
    """The pydantic model the validator checks the output against."""
    json_schema: dict[str, Any] | None
    """The JSON schema of `result`, when the file gives one."""
    render: Any
    """Markdown rendering of an output."""

    @property
    def is_text(self) -> bool:
        """Whether the output is Markdown text (no schema to fill)."""
        return self.model is TextOutput

    async def ask(
        self, spec: str, messages: Sequence[BaseMessage], ctx: Context, role: str
    ) -> tuple[dict[str, Any], Usage]:
        """One model call answering in this shape; returns the output and its usage."""
        if self.json_schema is not None:
            result, usage = await ainvoke_json(
                spec, self.json_schema, messages, method=ctx.structured_output_method, role=role
            )
            return {"status": "done", "result": result}, usage
        if self.is_text:
            text, usage = await ainvoke_text(spec, messages, role=role)
            return {"status": "done", "text": text}, usage
        parsed, usage = await ainvoke_structured(
            spec, self.model, messages, method=ctx.structured_output_method, role=role
        )
        return parsed.model_dump(), usage

    def problems(self, rules: Rules, output: dict[str, Any], inp: WorkerInput) -> list[str]:
        """Schema problems of `result`, then the file's rules on the rendered output."""
        if self.json_schema is not None:
            validator = jsonschema.Draft202012Validator(self.json_schema)
            errors = sorted(validator.iter_errors(output.get("result")), key=str)
            if errors:
                return [
                    f"the result does not fit its schema at "
                    f"{'/'.join(map(str, e.absolute_path)) or 'the top'}: {e.message}"
                    for e in errors[:5]
                ]
        return broken_rules(rules, str(self.render(output)), output, inp)


def _title(name: str) -> str:
    """A function name providers accept, from a worker name."""
    return "".join(p.capitalize() for p in re.split(r"[-_]", name) if p) or "Result"


def shape_of(name: str, decl: WorkerBase, loaded: Loaded) -> Shape:
    """The output shape a worker's declaration asks for.

    Raises:
        WorkersFileError: a schema file that is missing or not a JSON schema.
    """
    schema = decl.output_schema
    if decl.output_schema_file:
        where = loaded.where("workers", name, "output_schema_file")
        try:
            schema = json.loads(loaded.resolve(decl.output_schema_file).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkersFileError(f"{where}: cannot read the output schema: {exc}") from exc
    if schema is None:
        if decl.output == "text":
            return Shape(TextOutput, None, render_text)
        model, render = _NAMED[decl.output]
        return Shape(model, None, render)
    where = loaded.where("workers", name, "output_schema")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise WorkersFileError(f"{where}: not a JSON schema: {exc.message}") from exc
    if schema.get("type") != "object":
        raise WorkersFileError(f"{where}: the output schema must describe an object")
    titled = {"title": _title(name), **schema}
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(titled["title"])):
        titled["title"] = _title(name)
    return Shape(ResultOutput, titled, render_result)
