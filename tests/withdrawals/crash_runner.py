"""A Teller process for the crash tests: ``python -m tests.withdrawals.crash_runner SETTINGS_JSON CRASH_STEP``.

Runs the real app (withdrawal actor, signer, SQLite file) until killed; with CRASH_STEP set, it SIGKILLs
itself the first time the withdrawal actor reaches that step (``after_sign``, ``after_broadcast``,
``after_receipt``), which is what a power cut there would do.
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
    def hook(step: str) -> None:
        if step == target:
            os.kill(os.getpid(), signal.SIGKILL)
    return hook


async def main(raw: dict, step: str) -> None:
    settings = settings_from_mapping(raw, environ={})
    overrides = {"withdrawal_crash_hook": _hook(step)} if step != "none" else {}
    teller = await start_teller(settings, overrides=overrides)
    print("ready", flush=True)
    try:
        await asyncio.sleep(3600)
    finally:
        await teller.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), sys.argv[2]))
