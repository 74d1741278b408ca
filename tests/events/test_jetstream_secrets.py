"""A NATS URL's user:password never reaches an error or a log line: a refused port, and a server that refuses us.

The refusing server is a few lines of the real NATS protocol on loopback (INFO, then -ERR), not a mock.
"""

from __future__ import annotations

import asyncio
import io

import pytest

from teller.errors import EventsUnavailable
from teller.events import JetStreamPublisher
from tests.fixtures.common import free_port

HANG_GUARD_S = 30  # not a timing assertion: only keeps a broken test from hanging the run
PASSWORD = "SECRET2pw"
_INFO = (b'INFO {"server_id":"fake","version":"2.10.0","proto":1,"max_payload":1048576,'
         b'"auth_required":true}\r\n')


async def _refuse_auth(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(_INFO)
    await writer.drain()
    await reader.readuntil(b"\r\n")  # CONNECT {... "pass": ...}
    writer.write(b"-ERR 'Authorization Violation'\r\n")
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("server", ["refused", "refusing"])
async def test_a_nats_password_stays_out_of_errors_and_logs(log_stream: io.StringIO, server: str) -> None:
    fake = await asyncio.start_server(_refuse_auth, "127.0.0.1", 0)
    port = fake.sockets[0].getsockname()[1] if server == "refusing" else free_port()
    try:
        publisher = JetStreamPublisher(f"nats://teller:{PASSWORD}@127.0.0.1:{port}", connect_timeout_s=1.0)
        try:
            with pytest.raises(EventsUnavailable) as info:
                await asyncio.wait_for(publisher.connect(), HANG_GUARD_S)
        finally:
            await publisher.close()
    finally:
        fake.close()
    for text in (info.value.message, repr(info.value), repr(info.value.details)):
        assert PASSWORD not in text
    logged = log_stream.getvalue()
    assert '"nats.error"' in logged and f'"server": "nats://127.0.0.1:{port}"' in logged
    assert ("Authorization Violation" in logged) == (server == "refusing")
    assert PASSWORD not in logged and "teller:" not in logged
