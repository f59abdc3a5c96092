"""The per-process fan-out of live events (docs/design.md#the-path-of-one-event).

One layer channel per process joins each group once, however many local
streams read it; one receive task feeds every stream's bounded mailbox. A
broadcast to 10,000 browsers is then one layer message per process, encoded to
SSE bytes once. Modelled on channels_redis.pubsub: a dict of channel -> readers,
a non-blocking push to each, `group_discard` when the last reader leaves.
"""

import asyncio
import contextvars
import itertools
import logging
import math
import time
import weakref
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from livefeed import conf, eventlog, htmx, instruments, language, revocation, shutdown, sse
from livefeed.channels import group_name
from livefeed.exceptions import TooManyStreams
from livefeed.sequencer import Sequencer

logger = logging.getLogger("livefeed")

END = (None, b"")  # asks a stream to finish: server stopping, stream too old, session gone
_KEEP_ALIVE = sse.comment("keep-alive")
# Ticker runs per HEARTBEAT. Idle streams' heartbeats are spread over them by
# when each stream last wrote: writing thousands in one instant puts them all
# in flight at once, and the garbage collector then walks them all
# (docs/performance.md, "Idle").
_TICKS = 15
# A channel whose last reader here left stays joined this long (seconds), and
# is left within a tenth of it after that (or at once by a process shutting
# down). Reconnects come back within about RETRY, and in
# a storm by the thousand: each then finds its channels joined, and neither the
# leaving stream nor the returning one waits its turn for a round trip to the
# layer (docs/performance.md#channels-left-late).
LINGER = 10.0
_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


class Reader:
    """One open stream: its channels and its bounded mailbox of (id, bytes) items.

    A list and one waiter rather than an asyncio.Queue: a broadcast pushes to
    every reader of a channel, and the stream takes all that queued up at once,
    so the Queue's per-item bookkeeping and its four deques were paid per
    delivery and per idle stream for nothing (docs/performance.md, "What changed").
    """

    __slots__ = (
        "channels", "items", "maxsize", "waiter", "overflowed", "release", "session", "expires",
        "written", "language", "sink", "seen", "__weakref__",
    )  # fmt: skip

    release: weakref.finalize  # set by Hub.reserve

    def __init__(
        self, channels: list[str], maxsize: int, session: str | None = None, language: str | None = None
    ) -> None:
        self.channels = channels
        self.session = session
        # Its reader's language, read once at connect: translated notifications are rendered in it (livefeed.language).
        self.language = language
        max_age = conf.get("MAX_AGE")
        self.expires = time.monotonic() + max_age if max_age else None
        self.items: list[tuple[int | None, bytes]] = []
        self.maxsize = maxsize
        self.waiter: asyncio.Future | None = None
        self.overflowed = False
        self.written = time.monotonic()  # when the stream last had something to write
        # Under daphne, the client's socket (livefeed.asgi._Unsent): what arrives while the stream
        # waits with nothing queued goes straight there, without waking it (docs/design.md#trap-17).
        self.sink: Any = None
        self.seen = -1  # the highest id its replay wrote: a live copy at or below it is a duplicate

    def _put(self, item: tuple[int | None, bytes]) -> bool:
        if len(self.items) >= self.maxsize:
            return False
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        return True

    async def take(self) -> list[tuple[int | None, bytes]]:
        """Wait for at least one item; return all that are queued, oldest first."""
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter  # a disconnect cancels the stream here (docs/design.md#trap-3)
            finally:
                self.waiter = None
        items, self.items = self.items, []
        self.written = time.monotonic()
        return items

    def _write(self, payload: bytes) -> bool:
        """Write payload to the client now if the stream waits in take() with nothing queued; else False.

        Then nothing is in flight between the stream and its socket, so the
        order holds; waking the stream's coroutine chain to write it would cost
        most of a delivery (docs/performance.md#live-chunks-straight-to-the-socket).
        """
        waiter = self.waiter
        if self.sink is None or waiter is None or waiter.done():  # a queued item completes the waiter
            return False
        try:
            if not self.sink.write(payload):
                return False  # the socket is backed up, or not one to write to: the stream sends it
        except Exception:
            logger.exception("Could not write to a stream's socket; it sends its events itself from now on")
            self.sink = None
            return False
        self.written = time.monotonic()
        return True

    def end(self) -> None:
        """Ask the stream to finish: after what it has queued, or at once if it is full."""
        if not self._put(END):
            self.overflowed = True

    def push(self, item: tuple[int | None, bytes]) -> None:
        # Once one event is dropped, drop all later ones too: delivering a later
        # event first would move the client's Last-Event-ID past the lost one.
        if self.overflowed:
            return
        if self.sink is not None:
            event_id, payload = item
            if event_id is not None and event_id <= self.seen:
                return  # its replay wrote it
            if self._write(payload):
                return
        if not self._put(item):
            self.overflowed = True
            instruments.slow_closes.inc()
            logger.warning("Slow stream on %s: closing it to catch up from the log", self.channels)

    def push_run(self, items: list[tuple[None, bytes]], joined: bytes) -> None:
        """Queue unstored items, their payloads joined: a stream waiting in take() gets them in one write."""
        if not self.overflowed and self._write(joined):
            return
        for item in items:
            self.push(item)

    def keep_alive(self) -> None:
        """Queue a heartbeat comment unless the stream has something to write anyway."""
        if self.overflowed or self.items:
            return
        if not self._write(_KEEP_ALIVE):
            self._put((None, _KEEP_ALIVE))


class Hub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        # channel name -> local readers of it
        self.readers: dict[str, set[Reader]] = {}
        # every live reservation, subscribed or not, and their count per user
        self.streams: weakref.WeakSet[Reader] = weakref.WeakSet()
        self.per_user: dict[Any, int] = {}
        self.html_readers: weakref.WeakSet[Reader] = weakref.WeakSet()  # ?format=html streams
        # The subscribed ones, which the ticker looks at every tick: a plain set, since iterating
        # the WeakSet was most of an idle process's own CPU (docs/performance.md#idle-the-tickers-set).
        self.live: set[Reader] = set()
        # Joined channels nobody here reads now -> when the last reader left (LINGER).
        self.idle: dict[str, float] = {}
        self.channel_name: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._joined_at = time.monotonic()
        # Live events in log-id order: a stream never writes an id above one it has yet to write.
        self.order = Sequencer(self._fan_out, lambda channel: channel in self.readers)
        self.closing = False

    # Reservations and subscriptions -----------------------------------------

    def reserve(
        self,
        channels: list[str],
        user_key: Any,
        session: str | None = None,
        limit: int | None = None,
        html: bool = False,
        language: str | None = None,
    ) -> Reader:
        """Return a Reader counted against the stream caps, or raise TooManyStreams.

        At most `limit` (default MAX_STREAMS_PER_USER) readers share a user_key.
        """
        if len(self.streams) >= conf.get("MAX_STREAMS"):
            raise TooManyStreams("This server holds all the streams it can.", per_user=False)
        limit = conf.get("MAX_STREAMS_PER_USER") if limit is None else limit
        if user_key is not None and self.per_user.get(user_key, 0) >= limit:
            raise TooManyStreams("Too many open streams for this user.", per_user=True)
        reader = Reader(channels, conf.get("QUEUE_SIZE"), session, language)
        self.streams.add(reader)
        if html:
            self.html_readers.add(reader)
        if user_key is not None:
            self.per_user[user_key] = self.per_user.get(user_key, 0) + 1
        # Runs once: from remove(), or when a response that was never iterated
        # (its client gone first) is garbage-collected with its reader.
        reader.release = weakref.finalize(reader, self._uncount, user_key)
        return reader

    async def add(self, reader: Reader) -> None:
        """Subscribe reader to its channels, all or none: a failed or cancelled add leaves nothing."""
        async with self._lock:
            await self._start()
            reached, joining = 0, None
            try:
                for channel in reader.channels:
                    if channel not in self.readers and self.idle.pop(channel, None) is None:
                        joining = channel
                        await self.layer.group_add(group_name(channel), self.channel_name)
                        joining = None
                    self.readers.setdefault(channel, set()).add(reader)
                    reached += 1
            except BaseException:
                # Layer down, or client gone during the round trip: else the reader
                # stays in the channels it joined, and every retry leaks one more.
                # Those it joined stay joined for LINGER, as after any stream; the
                # group whose add broke is left: the layer may count it joined.
                emptied, now = self._forget(reader), time.monotonic()
                for channel in reader.channels[:reached]:
                    if channel in emptied:
                        self.idle[channel] = now
                if joining is not None:
                    await self._discard(joining)
                raise
            self.live.add(reader)

    async def remove(self, reader: Reader) -> None:
        """Forget reader; the groups nobody here reads any more are left LINGER seconds later. Idempotent."""
        self.streams.discard(reader)
        self.html_readers.discard(reader)
        reader.release()
        if reader not in self.live:
            return
        self.live.discard(reader)
        emptied, now = self._forget(reader), time.monotonic()
        for channel in emptied:
            self.idle[channel] = now
        if self.closing:
            # Now, not after LINGER: with the core Redis layer a process gone
            # would stay a member of its groups until group_expiry. Only its own:
            # every stream ends at once, and the others' are theirs to leave.
            for channel in emptied:
                await self._leave(channel, now)

    async def leave_idle(self, now: float) -> None:
        """Leave the channels nobody here has read for LINGER seconds by now."""
        # A channel enters idle when its last reader leaves: the oldest come first.
        while self.idle:
            channel, since = next(iter(self.idle.items()))
            if since > now - LINGER:
                return
            await self._leave(channel, since)

    async def _leave(self, channel: str, since: float) -> None:
        # One channel per hold of the lock, which add() takes channels back
        # from idle under: a connect waits for one round trip, not for all.
        async with self._lock:
            if self.idle.get(channel) == since:  # not taken back meanwhile
                del self.idle[channel]
                await self._discard(channel)

    def _forget(self, reader: Reader) -> list[str]:
        """Take reader out of its channels; return those of them nobody here reads now."""
        for channel in reader.channels:
            readers = self.readers.get(channel, set())
            readers.discard(reader)
            if not readers:
                self.readers.pop(channel, None)
        return [channel for channel in reader.channels if channel not in self.readers]

    def _uncount(self, user_key: Any) -> None:
        if user_key is None:
            return
        self.per_user[user_key] -= 1
        if not self.per_user[user_key]:
            del self.per_user[user_key]

    async def _discard(self, channel: str) -> None:
        try:
            await self.layer.group_discard(group_name(channel), self.channel_name)
        except Exception:
            logger.exception("Could not leave channel group %s", channel)

    # Background tasks --------------------------------------------------------

    async def _start(self) -> None:
        if self.channel_name is None:
            self.order.floor = await eventlog.newest_id()
            shutdown.on_sigterm(self.loop, self._shut_down)
            self.channel_name = await self.layer.new_channel()
            # A clean context: these tasks outlive the request that starts them,
            # and must not inherit its thread-sensitive context.
            self._tasks = [
                asyncio.create_task(job(), name=f"livefeed-hub{job.__name__}", context=contextvars.Context())
                for job in (
                    self._receive,
                    self._tick,
                    self._leave_idle_forever,
                    self._recover,
                    self.order.run,
                    self._due,
                    self._reauthorize,
                )
            ]

    async def _receive(self) -> None:
        # The one receive() of this process; never cancelled while streams are
        # open, since a cancelled receive() loses messages (docs/design.md#trap-5).
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Channel layer receive failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            # A packed message holds many events: let the streams write a share
            # before queueing more, or a burst fills mailboxes of streams that keep up.
            share = max(1, conf.get("QUEUE_SIZE") // 4)
            events = unpacked(message) if message.get("type") == "livefeed.event" else [message]
            for start in range(0, len(events), share):
                self._dispatch_share(events[start : start + share])
                await asyncio.sleep(0)

    def _dispatch_share(self, events: list[dict[str, Any]]) -> None:
        """Dispatch a packed message's events in order; each run of unstored ones fans out as one."""
        for joinable, group in itertools.groupby(events, _joinable):
            run = list(group)
            if joinable and len(run) > 1:
                self._fan_out_run(run)
            else:
                for event in run:
                    self.dispatch(event)

    def dispatch(self, message: dict[str, Any]) -> None:
        """Queue a layer message for every local reader of its channel, in log-id order."""
        if message.get("type") == "livefeed.close":  # that session signed out
            revocation.forget_tickets(session=message["session"])  # and so do its tickets, here
            for reader in self.readers.get(message["channel"], ()):
                if reader.session == message["session"]:
                    reader.end()
        elif message.get("type") == "livefeed.reauthorize":  # that user's password, activity or groups changed
            channel = message.get("channel", "")
            if channel.startswith("user."):  # tickets issued before now take the session path here
                revocation.forget_tickets(user_pk=channel.removeprefix("user."))
            if channel in self.readers:
                revocation.wake(self)
        else:
            for event in unpacked(message):
                if event.get("id") is None:
                    self._fan_out(event)  # not stored (store=False): no place in the log's order
                else:
                    self.order.push(event)  # even with no reader here: its id moves the order on

    def _fan_out(self, message: dict[str, Any]) -> None:
        """Encode an event once and queue it for every local reader of its channel."""
        readers = self.readers.get(message["channel"])
        if not readers:
            return
        instruments.delivered.inc(len(readers))  # once per event: cheap at any fan-out
        if message["event"] == htmx.EVENT and message["data"].startswith(language.MARK):
            language.fan_out(readers, self.html_readers, message)  # once per reader language
            return
        event_id = message.get("id")
        item = (event_id, sse.encode(message["data"], event=message["event"], id=event_id))
        if self.html_readers and message["event"] == htmx.EVENT:
            htmx.fan_out(readers, self.html_readers, item, message)
            return
        for reader in readers:
            reader.push(item)

    def _fan_out_run(self, events: list[dict[str, Any]]) -> None:
        """Queue unstored events of one channel for its local readers: a waiting stream gets them in one write.

        One write per event would cost a burst (a packed layer message) one
        system call per event per stream, where a woken stream wrote each
        share of the burst at once (docs/performance.md#live-chunks-straight-to-the-socket).
        """
        readers = self.readers.get(events[0]["channel"])
        if not readers:
            return
        instruments.delivered.inc(len(readers) * len(events))
        items = [(None, sse.encode(event["data"], event=event["event"])) for event in events]
        joined = b"".join(payload for _, payload in items)
        for reader in readers:
            reader.push_run(items, joined)

    async def _tick(self) -> None:
        # One ticker for all streams instead of a sleeping task per stream. It
        # runs _TICKS times per HEARTBEAT and gives a heartbeat only to streams
        # that wrote nothing for about HEARTBEAT seconds: streams that receive
        # events need none. An idle stream gets one every HEARTBEAT; a stream
        # is never silent for more than HEARTBEAT * (1 + 1 / (2 * _TICKS)).
        while True:
            heartbeat = conf.get("HEARTBEAT")
            await asyncio.sleep(heartbeat / _TICKS)
            self._turn(time.monotonic(), heartbeat)
            await self._refresh_groups()

    async def _leave_idle_forever(self) -> None:
        # Not on the ticker: leaving waits for the hub's lock, behind any
        # subscribe, and a subscribe that hangs must not hold back heartbeats.
        while True:
            await asyncio.sleep(LINGER / 10)
            await self.leave_idle(time.monotonic())

    def _turn(self, now: float, heartbeat: float) -> None:
        """One tick: end the streams past MAX_AGE, give a heartbeat to those quiet since about HEARTBEAT ago."""
        quiet_since = now - heartbeat + heartbeat / _TICKS / 2
        for reader in self.live:
            if reader.expires and reader.expires < now:
                reader.expires = None
                reader.end()  # reconnect, and so sign in again
            elif reader.written <= quiet_since:
                reader.keep_alive()

    async def _recover(self) -> None:
        # The pub/sub layer is at-most-once (docs/design.md#trap-6): what it lost
        # during a Redis restart is in the log. Dispatch it late, not never.
        while True:
            interval = conf.get("RECOVERY_INTERVAL")
            await asyncio.sleep(interval)
            try:
                settled = await eventlog.settled_after(self.order.floor, older_than=interval)
                # Through the sequencer, in id order with what came live; a
                # late live copy is then dropped as released already.
                missing = await self.order.fill(settled[-1][0], settled=True) if settled else 0
                if missing:
                    instruments.recovered.inc(missing)
                    if isinstance(self.layer, InMemoryChannelLayer):
                        # One process's memory: events from other processes (a shell, a worker) come this way.
                        logger.debug("Delivering %d event(s) from the log", missing)
                    else:
                        logger.warning("Recovering %d event(s) the channel layer lost", missing)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Could not read the event log to recover lost events")

    async def _due(self) -> None:
        # Every process runs it; livefeed.due makes each row come back (or go) once.
        from livefeed import due  # it publishes, and publishing imports this module

        while interval := conf.get("DUE_INTERVAL"):
            await asyncio.sleep(interval)
            try:
                await due.arun_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Could not bring back snoozed or remove expired notifications")

    async def _reauthorize(self) -> None:
        # A sign-in revoked elsewhere (password, session, group) ends its streams.
        await revocation.sweep_forever(self)

    async def _refresh_groups(self) -> None:
        # The core Redis layer silently drops members after group_expiry
        # (docs/design.md#trap-7): join again well before that.
        expiry = getattr(self.layer, "group_expiry", None)
        if not expiry or time.monotonic() - self._joined_at < expiry / 2:
            return
        self._joined_at = time.monotonic()
        async with self._lock:
            for channel in [*self.readers, *self.idle]:
                try:
                    await self.layer.group_add(group_name(channel), self.channel_name)
                except Exception:
                    logger.exception("Could not refresh channel group %s", channel)

    def _shut_down(self) -> None:
        self.closing = True
        logger.info("Shutting down: ending %d stream(s) with spread-out retry delays", len(self.streams))
        for reader in list(self.streams):
            reader.end()
        # The channels nobody reads now; those of the streams just ended go as they end (remove).
        self._tasks.append(self.loop.create_task(self.leave_idle(math.inf), context=contextvars.Context()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


def unpacked(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the events of a layer message, one message each, in order.

    A publisher packs a run of events on one channel into one layer message:
    the first event's fields, the others as [id, event, data] under "more"
    (livefeed.publishing). A process that predates packing delivers the first
    and finds the others' ids missing: its sequencer reads them from the log.
    """
    more = message.get("more")
    if not more:
        return [message]
    channel = message["channel"]
    first = {key: value for key, value in message.items() if key != "more"}
    return [first] + [
        {"type": "livefeed.event", "channel": channel, "event": event, "data": data, "id": event_id}
        for event_id, event, data in more
    ]


def _joinable(event: dict[str, Any]) -> bool:
    # Unstored (no place in the log's order) and the same bytes for every reader: not a notification's HTML.
    return event.get("type") == "livefeed.event" and event.get("id") is None and event["event"] != htmx.EVENT


def get_hub() -> Hub:
    """Return the hub of the running event loop, creating it on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(get_channel_layer(conf.get("CHANNEL_LAYER")))
    return hub


def running_loop() -> asyncio.AbstractEventLoop | None:
    """Return the loop of a hub serving streams in this process, if any."""
    if not _hubs:  # a shell or worker: asked on every publish, so without copying the dict
        return None
    for loop in list(_hubs):
        if loop.is_running() and not loop.is_closed():
            return loop
    return None


def open_streams() -> int:
    """Return how many streams this process holds open, on every loop."""
    return sum(len(hub.streams) for hub in list(_hubs.values()))
