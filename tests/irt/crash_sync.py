"""A Teller process for the SIGKILL test: runs the IRT flow against a store and the sandbox until killed.

Usage: python crash_sync.py <store url> <sandbox url> <page size>
"""

from __future__ import annotations

import asyncio
import sys

from teller.app import start_teller
from teller.payments.sandbox_state import SandboxState
from tests.irt.conftest import POLL_INTERVAL_S
from tests.fixtures.http import settings_for_tests


async def main(url: str, sandbox_url: str, page_max: int) -> None:
    creds = SandboxState()  # the sandbox's default credentials
    settings = settings_for_tests(
        chains=[], database={"url": url},
        paystar={"base_url": sandbox_url, "application_id": creds.application_id,
                 "access_password": creds.access_password, "refresh_token": creds.refresh_token},
        irt={"statement_url": sandbox_url, "statement_poll_interval_s": POLL_INTERVAL_S,
             "card_hash_secret": "c" * 32},
    )
    await start_teller(settings, overrides={"statement_page_max": page_max})
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
