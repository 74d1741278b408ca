"""``[nats] subject_prefix`` reaches the relay: a running Teller publishes its events under the configured
prefix, into a stream it creates capturing exactly that prefix (the real NATS on 127.0.0.1:4222)."""

from __future__ import annotations

from typing import Any

import nats
import nats.js.errors

import teller.app as teller_app
from teller.app import start_teller
from teller.flows import events
from tests.eventsflow.helpers import FAST, credit_deposit, until
from tests.fixtures.http import settings_for_tests
from tests.fixtures.nats import JetStreamNames


async def test_events_go_to_the_configured_prefix(store: Any, jetstream_names: JetStreamNames) -> None:
    names = jetstream_names
    settings = settings_for_tests(nats={"url": names.url, "stream": names.stream,
                                        "subject_prefix": names.subject_prefix})
    saved, teller_app.FLOW_BUILDERS = teller_app.FLOW_BUILDERS, lambda: [events.build]
    try:
        teller = await start_teller(settings, store=store, overrides=dict(FAST))
    finally:
        teller_app.FLOW_BUILDERS = saved
    nc = await nats.connect(servers=[names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        await credit_deposit(store, telegram_id=77)
        js = nc.jetstream()

        async def stored() -> bool:
            try:
                return (await js.stream_info(names.stream)).state.messages == 1
            except nats.js.errors.NotFoundError:
                return False
        await until(stored, what="the event in the stream")
        info = await js.stream_info(names.stream)
        assert info.config.subjects == [f"{names.subject_prefix}.>"]
        message = await js.get_msg(names.stream, info.state.last_seq)
        assert message.subject == f"{names.subject_prefix}.deposit.credited"
    finally:
        await nc.close()
        await teller.stop()
