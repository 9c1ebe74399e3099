"""Child for a crash test: dies after the plan node's writes are saved, before the next checkpoint.

The checkpoint that would follow the plan node never gets written (its `aput` blocks), so
the parent can SIGKILL the process in that window, which exists even under durability
"sync". Usage: python -m tests.support.blocked_checkpoint_child DB THREAD
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from foreman import Context, build_graph
from foreman.checkpointers import open_checkpointer
from tests.conftest import HEAT_PUMPS


async def main(db: str, thread: str) -> None:
    async with open_checkpointer(db) as saver:
        put = saver.aput

        async def aput(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
            if "branch:to:dispatch" in checkpoint["channel_values"]:
                print("plan writes saved; blocking the next checkpoint", flush=True)
                await asyncio.sleep(3600)
            return await put(config, checkpoint, metadata, versions)

        saver.aput = aput  # type: ignore[method-assign]
        app = build_graph().compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": thread}}
        await app.ainvoke({"request": HEAT_PUMPS}, config, context=Context(), durability="sync")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
