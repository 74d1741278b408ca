"""A Teller process for the deposit crash test: ``python -m tests.deposits.crash_runner SETTINGS_JSON STEP``.

Runs the real app (watcher, signer, the test's database) until killed; it SIGKILLs itself the first time
the watcher reaches STEP (``scanned``: blocks read, nothing committed; ``committed``: a range committed;
``credit_committed``: one deposit's credit committed, others not yet) - what a power cut there would do.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from teller.app import start_teller
from teller.config import settings_from_mapping


def _hook(target: str):  # type: ignore[no-untyped-def]
    def hook(chain: str, step: str) -> None:
        if step == target:
            os.kill(os.getpid(), signal.SIGKILL)
    return hook


async def main(raw: dict, step: str) -> None:
    settings = settings_from_mapping(raw, environ={})
    teller = await start_teller(settings, overrides={"deposit_crash_hook": _hook(step)})
    print("ready", flush=True)
    try:
        await asyncio.sleep(3600)
    finally:
        await teller.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), sys.argv[2]))
