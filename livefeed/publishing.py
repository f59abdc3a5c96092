"""publish() and apublish(): an event to every stream reading a channel (docs/design.md#contracts).

publish() appends to the event log, then sends on the channel layer.

Inside a transaction the event is held in the outbox and commits with the
caller's data; right after the commit it moves into the log, where event ids
become visible in increasing order (livefeed.outbox, docs/reliability.md);
if another publisher holds the log's lock, the process's mover makes that move
(livefeed.mover) and the caller returns. The layer send then runs in the
background: once the event is committed, neither a slow nor a failing Redis
may stall or fail the caller, and every hub recovers a lost send from the log.

Sends are batched per event loop: a publish queues its messages and only the
first of a run hops to the loop; one send task takes everything queued by then
and packs each channel's events into one layer message (the first event, plus
the others under "more"). A burst of publishes then costs a few layer round
trips, not one each (docs/performance.md#publish-throughput).
"""

import asyncio
import functools
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from livefeed import conf, instruments, mover, outbox, sse
from livefeed.bridge import refuse_async_context, submit, target_loop
from livefeed.channels import group_name, session_tag, user_channel, validate

__all__ = ["apublish", "publish"]

logger = logging.getLogger("livefeed")
_json = DjangoJSONEncoder(separators=(",", ":"), ensure_ascii=False)  # one, not one per publish
_own = threading.local()  # held: (database, outbox rows) of the transaction atomic() opened on this thread


def publish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, once the current transaction commits.

    store=False skips the event log: for high-rate ephemeral events (ticks,
    tokens) that a reconnecting client does not need to replay.
    """
    refuse_async_context()
    publish_messages([message_for(channel, event, data)], store=store)


async def apublish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, now (async code has no transactions)."""
    messages = [message_for(channel, event, data)]
    if store:
        using = outbox.database()
        _send_moved(await sync_to_async(outbox.record)(messages, using), using)
    else:
        _queue(messages, asyncio.get_running_loop())


def publish_messages(messages: list[dict[str, Any]], *, store: bool = True) -> None:
    """Publish messages from message_for() together: one log write for all, then their sends."""
    using = outbox.database()
    atomic = transaction.get_connection(using).in_atomic_block
    if not store:
        if atomic:
            transaction.on_commit(lambda: _queue(messages), using=using, robust=True)
        else:
            _queue(messages)
    elif atomic:
        held = outbox.hold(messages, using)  # commits with the caller's transaction
        own = getattr(_own, "held", None)
        if own is not None and own[0] == using:
            own[1].update(held)  # moved before livefeed's own transaction commits (atomic())
        else:
            # robust: if the move fails, the hubs' sweep moves the rows and the caller's other hooks still run.
            transaction.on_commit(lambda: _send_moved(outbox.try_move(held, using), using), using=using, robust=True)
    else:
        _send_moved(outbox.record(messages, using), using)


@contextmanager
def atomic(using: str) -> Iterator[None]:
    """transaction.atomic() for a write livefeed makes whole (notify()): its events need one commit, not two.

    A publish in a caller's transaction holds its events in the outbox and moves
    them into the log after the commit: that transaction may run on for long, and
    must not hold the log's lock meanwhile. In a transaction of livefeed's own,
    only the commit comes after its last statement, so the move runs inside it,
    if the lock is free (livefeed.outbox.move_held); else after the commit as
    usual. Inside a caller's transaction (or with autocommit off, where the
    caller commits) this is plain transaction.atomic().
    """
    connection = transaction.get_connection(using)
    if connection.in_atomic_block or not connection.get_autocommit() or not outbox.moves_held(using):
        with transaction.atomic(using=using):
            yield
        return
    held: dict[int, dict[str, Any]] = {}
    moved: list[dict[str, Any]] = []

    def send() -> None:
        if moved or not held:
            _queue(moved)
        else:
            _send_moved(outbox.try_move(held, using), using)

    outer, _own.held = getattr(_own, "held", None), (using, held)
    try:
        with transaction.atomic(using=using):
            # The first of the commit's hooks: the app's own, slow or failing, do not hold the events back.
            transaction.on_commit(send, using=using, robust=True)
            yield
            _own.held = outer  # what the commit's hooks publish is theirs to move
            if not connection.needs_rollback:
                moved += outbox.move_held(held, using)
    finally:
        _own.held = outer


def _send_moved(result: tuple[list[dict[str, Any]], bool], using: str) -> None:
    """Send what a move took; if it left rows (the log's lock was taken), have the mover move and send them."""
    moved, left = result
    _queue(moved)
    if left:
        # The loop is found (a script's private one started) here: at exit, the mover could start no thread.
        mover.move_soon(using, functools.partial(_queue, loop=target_loop()))


def message_for(channel: str, event: str, data: Any) -> dict[str, Any]:
    """Return the layer message for an event; raise ValueError for a bad name or oversized data."""
    validate(channel)
    sse.check_field("event", event)
    if not event or len(event) > 100:
        raise ValueError(f"Event name must be 1-100 characters, not {event!r}")
    text = _json.encode(data)
    limit = conf.get("MAX_PAYLOAD")
    # A character is at most 4 bytes of UTF-8: most payloads need no encoding to be measured.
    if len(text) * 4 > limit and len(text.encode()) > limit:
        raise ValueError(
            f"Event data is {len(text.encode())} bytes, over LIVEFEED['MAX_PAYLOAD'] "
            f"({limit}): send an id and let the page fetch the rest."
        )
    return {"type": "livefeed.event", "channel": channel, "event": event, "data": text, "id": None}


class _Outgoing:
    """The messages queued for one event loop's next layer send."""

    __slots__ = ("messages", "sending")

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.sending = False  # a send task runs, and will take what is queued


_outgoing: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outgoing]" = weakref.WeakKeyDictionary()
_outgoing_lock = threading.Lock()  # publishers on many threads queue for one loop
# Events per layer message, and their data's bytes: a batch is one Redis
# PUBLISH and one msgpack blob that every process decodes whole.
_PACK_EVENTS = 256
_PACK_BYTES = 128 * 1024


def _queue(messages: list[dict[str, Any]], loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Queue messages for the layer; start a send task on the loop unless one will take them."""
    if not messages:
        return
    loop = loop or target_loop()
    with _outgoing_lock:
        outgoing = _outgoing.get(loop)
        if outgoing is None:
            outgoing = _outgoing[loop] = _Outgoing()
        outgoing.messages.extend(messages)
        start = not outgoing.sending
        outgoing.sending = True
    if start:
        try:
            submit(_send_queued(outgoing), loop)
        except BaseException:  # a loop that is closing: the next publish tries again
            with _outgoing_lock:
                outgoing.sending = False
            raise


async def _send_queued(outgoing: _Outgoing) -> None:
    # One task per loop at a time sends in queue order; what is queued while
    # it awaits Redis leaves in its next round, packed.
    try:
        while True:
            with _outgoing_lock:
                messages, outgoing.messages = outgoing.messages, []
                if not messages:
                    outgoing.sending = False
                    return
            await _send(messages)
    except BaseException:  # cancelled with its loop: a later publish starts a new task
        with _outgoing_lock:
            outgoing.sending = False
        raise


async def _send(messages: list[dict[str, Any]]) -> None:
    """Send messages on the layer, each channel's events packed; log, never raise, a failure."""
    events = sum(1 for message in messages if message["type"] == "livefeed.event")
    instruments.published.inc(events)
    try:
        async with asyncio.timeout(conf.get("SEND_TIMEOUT")):
            with instruments.publish_seconds.time() if events else nullcontext():
                for message in _packed(messages):
                    await _layer().group_send(group_name(message["channel"]), message)
    except Exception:
        stored = sum(1 for message in messages if message.get("id") is not None)
        if stored:  # every hub recovers them from the log (Hub._recover)
            logger.warning("Channel layer send failed; %d event(s) will be recovered from the log", stored)
        if len(messages) > stored:
            logger.warning(
                "Channel layer send failed; %d unstored message(s) lost", len(messages) - stored, exc_info=True
            )


def _packed(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the layer messages for messages: each run of events on one channel packed (hub.unpacked).

    Only consecutive events share a message: across channels the order stays
    that of the ids, so no process sees a gap the next message fills.
    """
    out: list[dict[str, Any]] = []
    events = size = 0
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and message["type"] == last["type"] == "livefeed.event"
            and message["channel"] == last["channel"]
            and events < _PACK_EVENTS
            and size + len(message["data"]) <= _PACK_BYTES
        ):
            last.setdefault("more", []).append([message["id"], message["event"], message["data"]])
            events, size = events + 1, size + len(message["data"])
        else:
            out.append({**message})
            events, size = 1, len(message["data"]) if message["type"] == "livefeed.event" else 0
    return out


def close_session_streams(user: Any, session_key: str | None) -> None:
    """End the open streams of one signed-in session, on every process (called at logout)."""
    if not session_key:
        return
    _tell_streams(user, {"type": "livefeed.close", "session": session_tag(session_key)})


def reauthorize_user_streams(user: Any) -> None:
    """Have every process re-check its streams' sign-ins now (the user's password, activity or groups changed)."""
    _tell_streams(user, {"type": "livefeed.reauthorize"})


def _tell_streams(user: Any, message: dict[str, Any]) -> None:
    # Best effort, in the background: if the layer is down, the periodic
    # re-authorization (livefeed.revocation) ends those streams a little later.
    channel = user_channel(user)
    _queue([{**message, "channel": channel}])


def _layer() -> Any:
    return get_channel_layer(conf.get("CHANNEL_LAYER"))
