"""Offline engine for the data worker: pandas scripts for common questions, by rule.

It recognises an aggregate (mean, total, count, max, min) of a numeric column, optionally by a
grouping column, and draws a chart when asked; anything else gets a summary of the columns.
"""

from __future__ import annotations

import re
from typing import Any

from foreman.core.text import tag

_OPS = [
    (r"\b(total|sum|overall)\b", "sum"),
    (r"\b(how many|number of|count)\b", "count"),
    (r"\b(highest|maximum|max|largest|most)\b", "max"),
    (r"\b(lowest|minimum|min|smallest|least)\b", "min"),
    (r"\b(average|mean|typical)\b", "mean"),
]
_CHART = re.compile(r"\b(plot|chart|graph|visuali[sz]e|trend|over time)\b", re.I)


def _columns(dataset: str) -> list[tuple[str, str]]:
    m = re.search(r"^columns: (.+)$", dataset, re.M)
    return re.findall(r"(\w+) \((number|text)\)", m.group(1)) if m else []


def _mentions(text: str, column: str) -> int:
    """Where the objective names a column (by name or its words), or -1."""
    for form in (column, column.replace("_", " "), column.split("_")[0]):
        if len(form) > 2 and (m := re.search(rf"\b{re.escape(form.lower())}s?\b", text)):
            return m.start()
    return -1


def analysis_script(system: str, human: str) -> dict[str, Any]:
    """A pandas script for the objective over the described CSV file."""
    dataset = tag(human, "dataset")
    name = re.search(r'name="([^"]+)"', human)
    objective = (tag(human, "objective") + " " + tag(human, "clarification")).lower()
    if not name or 'kind="csv"' not in human:
        return {
            "status": "failed",
            "error": "offline mode analyses CSV files only; configure a model for SQL analysis",
        }
    columns = _columns(dataset)
    numeric = sorted(
        ((p, c) for c, k in columns if k == "number" and (p := _mentions(objective, c)) >= 0)
    )
    groups = sorted(
        ((p, c) for c, k in columns if k == "text" and (p := _mentions(objective, c)) >= 0)
    )
    op = next((op for pattern, op in _OPS if re.search(pattern, objective)), "mean")
    lines = ["import pandas as pd", "", f'df = pd.read_csv("{name.group(1)}")']
    chart = bool(_CHART.search(objective))
    if not numeric and op != "count":
        lines += [
            'print("Summary of the numeric columns")',
            "print(df.describe().round(2).to_string())",
        ]
        explanation = "summary statistics of every numeric column"
        chart = False
    else:
        metric = numeric[0][1] if numeric else None
        group = groups[-1][1] if groups else None
        if group is None and chart and any(c == "month" for c, _ in columns):
            group = "month"
        target = f'["{metric}"]' if metric else ""
        agg = "size()" if op == "count" else f"{op}()"
        if group:
            lines.append(f'result = df.groupby("{group}"){target}.{agg}.round(2)')
            if group != "month":
                lines.append("result = result.sort_values(ascending=False)")
            heading = f"{op} of {metric or 'rows'} by {group}"
            lines += [f'print("{heading.capitalize()}")', "print(result.to_string())"]
        else:
            value = "len(df)" if op == "count" else f'round(df["{metric}"].{op}(), 2)'
            heading = f"{op} of {metric or 'rows'}"
            lines.append(f'print("{heading.capitalize()}:", {value})')
            chart = False
        explanation = heading
        if chart and group:
            kind = "line" if group == "month" else "bar"
            lines += [
                "",
                "import matplotlib",
                'matplotlib.use("Agg")',
                "import matplotlib.pyplot as plt",
                "",
                f'ax = result.plot(kind="{kind}", title="{heading.capitalize()}")',
                f'ax.set_xlabel("{group}")',
                f'ax.set_ylabel("{op} of {metric or "rows"}")',
                "plt.tight_layout()",
                'plt.savefig("plot.png", dpi=100)',
            ]
    return {"status": "done", "code": "\n".join(lines) + "\n", "explanation": explanation}
