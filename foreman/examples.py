"""Named example requests, one per pattern: `foreman run --example NAME`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """A request that shows one pattern."""

    pattern: str
    request: str
    offline: bool
    """Whether the offline mode runs it for real."""
    sender: str = ""
    """The verified sender a support system would give with the message (`--sender`)."""
    extra: str = ""
    """The extra it needs beyond `pip install foreman-agents` (`foreman.core.extras`)."""


EXAMPLES = {
    "report": Example(
        "research and report: an outline, research per section in parallel, one cited report",
        "Write a report on residential heat pumps: how they work, efficiency, running costs, "
        "cold-climate performance and environmental impact.",
        offline=True,
    ),
    "support": Example(
        "customer service: classify, lookup and policy in parallel, then the reply",
        "Customer message from maria.garcia@example.com: \"Hi, I'd like to return the kettle "
        "from my order A10023, it's unused but too big for our kitchen. How do I get my money "
        'back?"',
        offline=True,
        sender="maria.garcia@example.com",
    ),
    "late": Example(
        "customer service: a late delivery, compensation under the policy",
        'Customer message from aisha.khan@example.org: "My order A10042 arrived days after the '
        'promised date. This is unacceptable, I paid for shipping!"',
        offline=True,
        sender="aisha.khan@example.org",
    ),
    "data": Example(
        "data analysis: pandas in the sandbox, a table and a PNG chart",
        "Using the dataset heat_pump_trial.csv, what is the average cop by region? Plot a chart.",
        offline=True,
        extra="data",
    ),
    "code": Example(
        "code generation: components in parallel, review, fixes, assembly with passing tests "
        "(needs a model: offline mode does not write code)",
        "Build a small Python text toolkit: a slugify function, a word counter that ignores "
        "case, and a summarize(text) helper that uses both, each with pytest tests; review "
        "the components before assembling them.",
        offline=False,
    ),
}
