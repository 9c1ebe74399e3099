"""Child process for crash tests: runs a simulated plan on a real checkpointer until killed.

Usage: python -m tests.support.crash_child DB THREAD  (with $SIM_LOG set)
"""

from __future__ import annotations

import asyncio
import sys

from foreman.checkpointers import open_checkpointer
from graph import build_graph
from graph.models import register_provider
from tests.support import sim
from tests.support.scripted import ScriptedChatModel

# a, b finish fast; c and d are slow and still running when the parent kills us.
DAG = {"a": (0.2, []), "b": (0.2, []), "c": (1.5, ["a"]), "d": (1.5, ["b"]), "e": (0.2, ["c", "d"])}


def models() -> dict[str, ScriptedChatModel]:
    table = {
        "planner": ScriptedChatModel(model_name="planner").on(
            "Plan", "<request>", sim.dag_plan(DAG)
        ),
        "synth": ScriptedChatModel(model_name="synth").on(
            "Report", "<request>", {"title": "t", "markdown": "all five subtasks done"}
        ),
    }
    register_provider("scripted", lambda name: table.setdefault(name, ScriptedChatModel()))
    return table


def context():  # noqa: ANN201
    from tests.conftest import scripted_context

    return scripted_context(max_parallel=4)


async def run(db: str, thread: str, resume: bool) -> dict:
    models()
    async with open_checkpointer(db) as saver:
        app = build_graph(sim.registry()).compile(checkpointer=saver)
        config = {"configurable": {"thread_id": thread}}
        payload = None if resume else {"request": "simulate a crash"}
        return await app.ainvoke(payload, config, context=context())


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], resume=False))
