"""Events under the seed's subject: ``<[nats] subject_prefix>.<type>``, default ``wallet.events`` (it was
``teller.events``). The prefix is validated as a NATS subject; Teller's stream from before the move, which
captures ``teller.events.>``, gains the new subjects and keeps its messages (the real NATS on 127.0.0.1:4222)."""

from __future__ import annotations

import json

import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from teller.config import ConfigError
from teller.errors import EventsUnavailable
from teller.events import LEGACY_SUBJECT_PREFIX, Event, EventType, JetStreamPublisher, check_subject_prefix
from teller.events.schema import SUBJECT_PREFIX_LEN_MAX
from tests.fixtures.http import settings_for_tests
from tests.fixtures.nats import JetStreamNames

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
prefixes = st.lists(tokens, min_size=1, max_size=6).map(".".join).filter(lambda p: len(p) <= SUBJECT_PREFIX_LEN_MAX)


def _event(i: int) -> Event:
    return Event(id=f"e-{i}", type=EventType.IRT_CREDITED, user_id="u1",
                 payload={"asset": "IRT", "amount": f"{i}.5", "reference": f"R-{i}"})


def test_the_default_is_the_seeds_subject() -> None:
    assert settings_for_tests().nats.subject_prefix == "wallet.events"
    assert _event(1).subject == "wallet.events.irt.credited" and LEGACY_SUBJECT_PREFIX == "teller.events"


@given(prefixes)
def test_any_dotted_prefix_of_plain_tokens_is_accepted(prefix: str) -> None:
    assert check_subject_prefix(prefix) == prefix
    assert settings_for_tests(nats={"subject_prefix": prefix}).nats.subject_prefix == prefix


@given(prefixes, st.sampled_from(["*", ">", " ", "\t", "\n", "$", "..", "ä", "/", "\x00"]), st.data())
def test_wildcards_blanks_and_empty_tokens_are_refused(prefix: str, bad: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(prefix)))
    text = prefix[:at] + bad + prefix[at:]
    with pytest.raises(ValueError):
        check_subject_prefix(text)
    with pytest.raises(ConfigError, match=r"^nats\.subject_prefix: "):
        settings_for_tests(nats={"subject_prefix": text})


@pytest.mark.parametrize("text", ["", ".", "wallet.", ".wallet", "a" * (SUBJECT_PREFIX_LEN_MAX + 1), 5, None])
def test_edges_and_other_types_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        check_subject_prefix(text)
    with pytest.raises(ConfigError, match=r"nats\.subject_prefix"):
        settings_for_tests(nats={"subject_prefix": text})


async def _stream(names: JetStreamNames, *, subject: str | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """The stream's subjects and its messages (subject, reference), optionally only those under ``subject``."""
    nc = await nats.connect(servers=[names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        info = await js.stream_info(names.stream)
        messages = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            msg = await js.get_msg(names.stream, seq)
            if subject is None or msg.subject.startswith(subject + "."):
                messages.append((msg.subject, json.loads(msg.data)["payload"]["reference"]))
        return list(info.config.subjects or []), messages
    finally:
        await nc.close()


async def test_teller_s_stream_from_before_the_move_keeps_its_messages_and_gains_the_new_subjects(
        jetstream_names: JetStreamNames) -> None:
    legacy = f"legacy{jetstream_names.stream[-12:]}.events"   # stands for teller.events, unique to this test
    new = jetstream_names.subject_prefix
    async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream, subject_prefix=legacy,
                                  legacy_subject_prefix=legacy) as before:
        assert (await before.publish_batch([_event(1)])).complete   # what the old Teller published
    assert (await _stream(jetstream_names))[0] == [f"{legacy}.>"]

    for i in (2, 3):   # two starts after the upgrade: the subjects are added once
        async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream, subject_prefix=new,
                                      legacy_subject_prefix=legacy) as after:
            assert (await after.publish_batch([_event(i)])).complete
    subjects, messages = await _stream(jetstream_names)
    assert subjects == [f"{legacy}.>", f"{new}.>"]
    assert messages == [(f"{legacy}.irt.credited", "R-1"), (f"{new}.irt.credited", "R-2"),
                        (f"{new}.irt.credited", "R-3")]
    # a consumer still filtering on the old subjects sees only what was there before: it must move
    assert (await _stream(jetstream_names, subject=legacy))[1] == [(f"{legacy}.irt.credited", "R-1")]


async def test_a_stream_of_someone_else_is_still_refused(jetstream_names: JetStreamNames) -> None:
    nc = await nats.connect(servers=[jetstream_names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        await nc.jetstream().add_stream(name=jetstream_names.stream, subjects=[f"other{jetstream_names.stream}.>"])
    finally:
        await nc.close()
    async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                  subject_prefix=jetstream_names.subject_prefix) as publisher:
        with pytest.raises(EventsUnavailable):
            await publisher.publish_batch([_event(1)])
    assert (await _stream(jetstream_names))[0] == [f"other{jetstream_names.stream}.>"]  # untouched


def test_a_publisher_refuses_a_bad_prefix() -> None:
    with pytest.raises(ValueError):
        JetStreamPublisher("nats://127.0.0.1:4222", subject_prefix="wallet.*")
