"""publish() and apublish(): append to the event log, then send on the channel layer.

The log row is written in its own short transaction once the caller's
transaction has committed, under a lock on PostgreSQL, so event ids become
visible in increasing order: a stream that replays "everything after id N"
can then never skip an event that commits late (see docs/reliability.md).
"""

import asyncio
import json
import threading
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction

from livefeed import conf, hub, sse
from livefeed.channels import group_name, validate

__all__ = ["apublish", "publish"]

# Any constant shared by all publishers: the key of PostgreSQL's advisory lock.
_LOG_LOCK = 0x6C697665  # "live"


def publish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, once the current transaction commits.

    store=False skips the event log: for high-rate ephemeral events (ticks,
    tokens) that a reconnecting client does not need to replay.
    """
    _refuse_async_context()
    message = _message(channel, event, data)
    transaction.on_commit(lambda: _deliver(message, store), using=_db())


async def apublish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, now (async code has no transactions)."""
    message = _message(channel, event, data)
    if store:
        message["id"] = await sync_to_async(_record)(message)
    await _layer().group_send(group_name(channel), message)


def _message(channel: str, event: str, data: Any) -> dict[str, Any]:
    validate(channel)
    sse.encode("", event=event)  # raises ValueError for CR, LF or NUL in the name
    if not event or len(event) > 100:
        raise ValueError(f"Event name must be 1-100 characters, not {event!r}")
    text = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > conf.get("MAX_PAYLOAD"):
        raise ValueError(
            f"Event data is {len(text.encode())} bytes, over LIVEFEED['MAX_PAYLOAD'] "
            f"({conf.get('MAX_PAYLOAD')}): send an id and let the page fetch the rest."
        )
    return {"type": "livefeed.event", "channel": channel, "event": event, "data": text, "id": None}


def _db() -> str:
    from livefeed.models import Event

    return router.db_for_write(Event)


def _record(message: dict[str, Any]) -> int:
    from livefeed.models import Event

    using = _db()
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            # Held until commit: ids then commit in the order they were taken.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOG_LOCK])
        row = Event.objects.using(using).create(
            channel=message["channel"], event=message["event"], data=message["data"]
        )
    return row.pk


def _deliver(message: dict[str, Any], store: bool) -> None:
    if store:
        message["id"] = _record(message)
    _run(_layer().group_send(group_name(message["channel"]), message))


def _layer() -> Any:
    return get_channel_layer(conf.get("CHANNEL_LAYER"))


# Sync callers -----------------------------------------------------------------
# In a server process the send runs on the loop that serves the streams (the
# in-memory layer only works there). Elsewhere (shell, management commands,
# workers) it runs on one private loop kept for the process, so every call
# reuses one Redis connection instead of opening a new one (DESIGN §6 trap 8).

_sender_loop: asyncio.AbstractEventLoop | None = None
_sender_lock = threading.Lock()


def _refuse_async_context() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("publish() was called from async code: use 'await livefeed.apublish(...)'.")


def _run(coroutine: Any) -> None:
    loop = hub.running_loop() or _private_loop()
    asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)


def _private_loop() -> asyncio.AbstractEventLoop:
    global _sender_loop
    with _sender_lock:
        if _sender_loop is None:
            _sender_loop = asyncio.new_event_loop()
            threading.Thread(target=_sender_loop.run_forever, name="livefeed-sender", daemon=True).start()
        return _sender_loop
