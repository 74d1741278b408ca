"""A writer process for the crash test: group-commits transfers until it is killed.

Usage: python crash_writer.py <store url> <run id>. Prints ``ACK <key>`` once a transfer is
durable (the ledger answered). Each transfer carries an outbox event and a write, so the test can
see that none is half applied.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from teller.errors import TellerError
from teller.storage import Event, Write, open_store

SUBMITTERS = 16
ASSET = "IRT"


async def main(url: str, run: str) -> None:
    store = await open_store(url)
    counter = itertools.count()

    async def submitter() -> None:
        while True:
            n = next(counter)
            key = f"{run}-{n}"
            user = f"user:{n % 5 + 1}:{ASSET}"
            try:
                if n % 3 == 2:  # spend some of it: holds, so the overdraft rule is exercised too
                    await store.ledger.transfer(debit=user, credit="suspense:irt", asset=ASSET, amount=7, key=key,
                                                pending=True, outbox=[Event("t", {"key": key})],
                                                writes=[Write("INSERT INTO sync_cursors (name, cursor) VALUES (?, ?)",
                                                              (key, "x"))])
                else:
                    await store.ledger.transfer(debit="bank:irt", credit=user, asset=ASSET, amount=5, key=key,
                                                outbox=[Event("t", {"key": key})],
                                                writes=[Write("INSERT INTO sync_cursors (name, cursor) VALUES (?, ?)",
                                                              (key, "x"))])
            except TellerError:
                continue
            sys.stdout.write(f"ACK {key}\n")
            sys.stdout.flush()

    await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
