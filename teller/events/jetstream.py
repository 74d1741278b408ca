"""Publish Teller events to NATS JetStream, exactly once in the stream, pipelined.

Each event goes to ``<subject_prefix>.<type>`` with its id as ``Nats-Msg-Id``, so JetStream drops a
republished event inside its duplicate window: the relay may retry a whole batch after a crash and
the stream still holds each event once. A batch is sent with ``publish_async`` (all messages out,
then the acks gathered; FIELD-NOTES: ~7x awaiting each ack) and the result names exactly the
events whose acks arrived: only those may be marked delivered. ``send_batch`` splits the two halves
(a ``SentBatch`` whose ``result()`` gathers the acks later), so a caller can prepare its next batch
while JetStream stores this one: the relay's pipeline. ``publish_batch`` is both at once.

The stream captures ``<subject_prefix>.>``. A stream of that name that does not is refused (someone
else's), except Teller's own stream from before issue 15, which captures ``teller.events.>`` (the
legacy prefix): the new subjects are added beside the old ones, once, so its stored messages stay and
the events go on without an operator (docs/ARCHITECTURE.md, "Events": what a consumer must change).

Every nats-py failure becomes ``EventsUnavailable``. Connecting is lazy and bounded: one attempt
per call, at most ``connect_timeout_s`` (a closed port fails at once). A connection that drops is
closed and the next call connects afresh, so the publisher survives NATS being down for any length
of time and needs no restart when it comes back. A dropped connection logs ``nats.disconnected``;
our own ``close()`` does not (it is no disconnection, and the warning would cry wolf).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from teller.errors import EventsUnavailable
from teller.events.schema import LEGACY_SUBJECT_PREFIX, SUBJECT_PREFIX, Event, check_subject_prefix
from teller.log import endpoint_of, get_logger, scrub_urls

__all__ = ["JetStreamPublisher", "PublishResult", "SentBatch", "PUBLISH_BATCH_MAX"]

# nats-py's in-flight bound (its semaphore), and ours over all unfinished batches together: send_batch
# refuses to pass it, so a send never waits on a semaphore that only a later ack or cancel could free.
PUBLISH_BATCH_MAX = 1000
_DUPLICATE_WINDOW_S = 120.0
_CONNECT_RETRY_WAIT_S = 0.1  # JetStream's default; the relay's retries happen well inside it


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What JetStream acknowledged. ``acked`` includes ``duplicates`` (already stored earlier)."""

    acked: tuple[str, ...]
    duplicates: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.failed


class JetStreamPublisher:
    """One connection, one stream. Use ``async with`` or call ``close()``.

    ``publish_batch`` returns a ``PublishResult`` when at least one ack arrived (the caller marks
    only ``acked`` delivered and retries ``failed``); it raises ``EventsUnavailable`` when nothing
    could be published at all, so a relay backs off.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "TELLER",
        subject_prefix: str = SUBJECT_PREFIX,
        legacy_subject_prefix: str = LEGACY_SUBJECT_PREFIX,
        connect_timeout_s: float = 2.0,
        ack_timeout_s: float = 5.0,
        stream_max_age_s: float = 7 * 24 * 3600.0,
    ) -> None:
        if not url:
            raise ValueError("a NATS url is required (empty nats.url means events stay in-process)")
        self._url = url
        self._stream = stream
        self._prefix = check_subject_prefix(subject_prefix)
        self._legacy_prefix = check_subject_prefix(legacy_subject_prefix)
        self._connect_timeout_s = connect_timeout_s
        self._ack_timeout_s = ack_timeout_s
        self._stream_max_age_s = stream_max_age_s
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._connect_lock = asyncio.Lock()
        self._unfinished: list[SentBatch] = []  # sent, acks not yet gathered nor given up
        self._log = get_logger(component="jetstream", stream=stream)

    @property
    def stream(self) -> str:
        return self._stream

    async def __aenter__(self) -> JetStreamPublisher:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect and make sure the stream exists; ``EventsUnavailable`` if NATS is not there."""
        await self._ensure_js()

    async def publish_batch(self, events: Sequence[Event]) -> PublishResult:
        return await (await self.send_batch(events)).result()

    async def send_batch(self, events: Sequence[Event]) -> SentBatch:
        """Send the events now and return without waiting for their acks (see ``SentBatch``).

        ``EventsUnavailable`` if NATS cannot be reached; ``ValueError`` if this batch and the
        unfinished ones together would pass PUBLISH_BATCH_MAX. An empty batch connects to nothing.
        """
        if len(events) > PUBLISH_BATCH_MAX:
            raise ValueError(f"batch of {len(events)} events is over PUBLISH_BATCH_MAX={PUBLISH_BATCH_MAX}")
        if not events:
            return self._batch([], [])
        js = await self._ensure_js()
        self._abandon_forgotten()
        in_flight = sum(batch.in_flight for batch in self._unfinished)
        if in_flight + len(events) > PUBLISH_BATCH_MAX:
            raise ValueError(f"{in_flight} events still in flight: {len(events)} more would pass "
                             f"PUBLISH_BATCH_MAX={PUBLISH_BATCH_MAX}")
        futures: list[tuple[str, asyncio.Future[Any]]] = []
        try:
            for event in events:
                future = await js.publish_async(
                    event.subject_under(self._prefix),
                    event.to_json(),
                    headers={"Nats-Msg-Id": event.id},
                    # No Nats-Expected-Stream header (it cost ~25% of throughput here): the stream's
                    # subjects are checked once on connect instead.
                    # No wait_stall: it costs a task per message (asyncio.wait_for), and the batches
                    # in flight never exceed the client's bound (PUBLISH_BATCH_MAX, checked above).
                )
                futures.append((event.id, future))
        except (nats.errors.Error, OSError, asyncio.TimeoutError) as exc:
            self._log.warning("jetstream.publish_interrupted", error=type(exc).__name__, sent=len(futures))
        batch = self._batch(futures, [e.id for e in events[len(futures):]])
        if futures:
            self._unfinished.append(batch)
        return batch

    def _batch(self, futures: list[tuple[str, asyncio.Future[Any]]], unsent: list[str]) -> SentBatch:
        return SentBatch(futures, unsent, ack_timeout_s=self._ack_timeout_s, log=self._log, unfinished=self._unfinished)

    def _abandon_forgotten(self) -> None:
        """A batch nobody awaited within the ack timeout would hold nats-py's slots for ever: give it up."""
        now_s = time.monotonic()
        for batch in [b for b in self._unfinished if b.forgotten(now_s)]:
            self._log.warning("jetstream.batch_forgotten", events=batch.in_flight)
            batch.abandon()

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        for batch in list(self._unfinished):
            batch.abandon()  # its acks could only come on this connection: fail them now, not at the timeout
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), timeout=self._connect_timeout_s)
            except (nats.errors.Error, OSError, asyncio.TimeoutError):
                pass  # closing a dead connection: nothing left to lose

    async def _ensure_js(self) -> JetStreamContext:
        async with self._connect_lock:
            nc = self._nc
            if nc is not None and (nc.is_closed or not nc.is_connected):
                await self.close()  # the connection dropped: start over on this call
            if self._js is None:
                self._js = await self._connect()
            return self._js

    async def _connect(self) -> JetStreamContext:
        nc = NatsClient()

        async def on_disconnected() -> None:
            # nats-py calls this from close() too; ours detaches the connection first, so only a
            # connection that is still ours when it goes has really dropped.
            if nc is self._nc:
                self._log.warning("nats.disconnected")

        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=[self._url],
                    connect_timeout=self._connect_timeout_s,
                    # No background reconnect loop: a dropped connection closes, and the next call
                    # connects afresh. One bounded attempt per call instead of an invisible retry.
                    allow_reconnect=False,
                    # nats-py retries the server inside connect() even so; 1 means two quick tries.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=_CONNECT_RETRY_WAIT_S,
                    error_cb=self._on_error,
                    disconnected_cb=on_disconnected,
                ),
                # A cap over the whole handshake, whatever nats-py does inside it.
                timeout=self._connect_timeout_s * 2,
            )
        except (nats.errors.Error, OSError, asyncio.TimeoutError) as exc:
            raise EventsUnavailable("cannot connect to NATS", error=type(exc).__name__) from exc
        self._nc = nc
        js = nc.jetstream(timeout=self._ack_timeout_s, publish_async_max_pending=PUBLISH_BATCH_MAX)
        try:
            await self._ensure_stream(js)
        except EventsUnavailable:
            await self.close()
            raise
        except (nats.errors.Error, OSError, asyncio.TimeoutError) as exc:
            await self.close()
            raise EventsUnavailable("cannot set up the JetStream stream", error=type(exc).__name__) from exc
        self._log.info("jetstream.connected", subjects=f"{self._prefix}.>")
        return js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            info = await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            info = None
        if info is not None:
            subjects = list(info.config.subjects or [])
            if f"{self._prefix}.>" in subjects:
                return
            if f"{self._legacy_prefix}.>" not in subjects:
                # Someone else's stream under our name: publishing would land nowhere or elsewhere.
                raise EventsUnavailable("the JetStream stream does not capture Teller's subjects",
                                        subjects=subjects)
            await self._add_our_subjects(js, info.config, subjects)
            return
        config = StreamConfig(
            name=self._stream,
            subjects=[f"{self._prefix}.>"],
            duplicate_window=_DUPLICATE_WINDOW_S,
            max_age=self._stream_max_age_s,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # Another Teller process created it between our two calls: fine if it now exists.
            await js.stream_info(self._stream)
        self._log.info("jetstream.stream_created", subjects=f"{self._prefix}.>")

    async def _add_our_subjects(self, js: JetStreamContext, config: StreamConfig, subjects: list[str]) -> None:
        """Teller's stream from before the subject move: capture the new subjects too, keep the old ones
        (the messages stored under them stay readable until max_age; ops may drop them later)."""
        try:
            await js.update_stream(replace(config, subjects=[*subjects, f"{self._prefix}.>"]))
        except nats.js.errors.BadRequestError as exc:
            # e.g. another stream already captures the new subjects (NATS refuses an overlap)
            raise EventsUnavailable("cannot add Teller's subjects to the JetStream stream",
                                    subjects=subjects, error=type(exc).__name__) from exc
        self._log.warning("jetstream.stream_subjects_added", old=subjects, added=f"{self._prefix}.>")

    async def _on_error(self, exc: Exception) -> None:
        # The server by scheme://host:port (a NATS URL can hold user:password); a socket error by its type (its
        # text can name the server as given); what the NATS client or server said (-ERR ...) with URLs cut.
        detail = scrub_urls(str(exc))[:200] if isinstance(exc, nats.errors.Error) else None
        self._log.warning("nats.error", error=type(exc).__name__, server=endpoint_of(self._url), detail=detail)


class SentBatch:
    """Events handed to the connection whose acks are still on their way (``send_batch``).

    Finish it once: ``await result()`` waits up to ``ack_timeout_s`` for the acks and returns what
    ``publish_batch`` would (``EventsUnavailable`` if none arrived); ``abandon()`` gives them up,
    because the caller will send those events again (a copy JetStream already stored is then
    dropped as a duplicate). Until finished, its events count against PUBLISH_BATCH_MAX.
    """

    __slots__ = ("_futures", "_unsent", "_ack_timeout_s", "_log", "_unfinished", "_expires_at_s", "_awaited",
                 "_finished")

    def __init__(self, futures: list[tuple[str, asyncio.Future[Any]]], unsent: list[str], *, ack_timeout_s: float,
                 log: Any, unfinished: list[SentBatch]) -> None:
        self._futures = futures
        self._unsent = unsent
        self._ack_timeout_s = ack_timeout_s
        self._log = log
        self._unfinished = unfinished  # the publisher's register of batches still counting in flight
        self._expires_at_s = time.monotonic() + ack_timeout_s
        self._awaited = False
        self._finished = not futures

    @property
    def in_flight(self) -> int:
        return 0 if self._finished else len(self._futures)

    def forgotten(self, now_s: float) -> bool:
        return not self._finished and not self._awaited and now_s >= self._expires_at_s

    async def result(self) -> PublishResult:
        if not self._futures and not self._unsent:
            return PublishResult((), (), ())
        if not self._finished:
            self._awaited = True
            await self._wait_for_acks()
            self._finish()
        acked: list[str] = []
        duplicates: list[str] = []
        failed = list(self._unsent)
        for event_id, future in self._futures:
            if future.cancelled() or future.exception() is not None:
                failed.append(event_id)
            else:
                acked.append(event_id)
                if future.result().duplicate:
                    duplicates.append(event_id)
        if failed:
            self._log.warning("jetstream.acks_missing", acked=len(acked), failed=len(failed))
        if not acked:
            raise EventsUnavailable("no event was acknowledged by JetStream", failed=len(failed))
        return PublishResult(tuple(acked), tuple(duplicates), tuple(failed))

    async def _wait_for_acks(self) -> None:
        """Until every future is done or ``ack_timeout_s`` has passed.

        JetStream acks one connection's messages in the order they were published, so the last
        future is waited for first and the others are then found done: one waiter per batch. A
        waiter on every future (asyncio.wait, gather) costs ~2 us per message against ~0.5 us so,
        measured over batches of 500. Out-of-order or failed acks only fall through to a second
        wait on those still pending, within the same deadline.
        """
        loop = asyncio.get_running_loop()
        deadline_s = loop.time() + self._ack_timeout_s
        await asyncio.wait([self._futures[-1][1]], timeout=self._ack_timeout_s)
        pending = [future for _, future in self._futures if not future.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline_s - loop.time()))

    def abandon(self) -> None:
        """Give up the acks still missing (the caller re-sends those events); idempotent."""
        if not self._finished:
            self._finish()

    def _finish(self) -> None:
        for _, future in self._futures:
            if not future.done():
                future.cancel()  # frees nats-py's in-flight slot; a late ack is simply ignored
        self._finished = True
        if self in self._unfinished:
            self._unfinished.remove(self)
