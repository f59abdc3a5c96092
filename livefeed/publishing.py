"""publish() and apublish(): an event to every stream reading a channel (DESIGN §3).

publish() appends to the event log, then sends on the channel layer.

The log row is written in its own short transaction once the caller's
transaction has committed, under a lock on PostgreSQL, so event ids become
visible in increasing order: a stream that replays "everything after id N"
can then never skip an event that commits late (see docs/reliability.md).
"""

import json
import logging
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction

from livefeed import conf, instruments, sse
from livefeed.bridge import refuse_async_context, run
from livefeed.channels import group_name, session_tag, user_channel, validate

__all__ = ["apublish", "publish"]

logger = logging.getLogger("livefeed")

# Any constant shared by all publishers: the key of PostgreSQL's advisory lock.
_LOG_LOCK = 0x6C697665  # "live"


def publish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, once the current transaction commits.

    store=False skips the event log: for high-rate ephemeral events (ticks,
    tokens) that a reconnecting client does not need to replay.
    """
    refuse_async_context()
    message = message_for(channel, event, data)
    transaction.on_commit(lambda: _deliver(message, store), using=_db())


async def apublish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, now (async code has no transactions)."""
    message = message_for(channel, event, data)
    with instruments.publish_seconds.time():
        if store:
            message["id"] = await sync_to_async(_record)(message)
        await _send(message, store)


def message_for(channel: str, event: str, data: Any) -> dict[str, Any]:
    """Return the layer message for an event; raise ValueError for a bad name or oversized data."""
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
    with instruments.publish_seconds.time():
        if store:
            message["id"] = _record(message)
        run(_send(message, store))


async def _send(message: dict[str, Any], store: bool) -> None:
    instruments.published.inc()
    try:
        await _layer().group_send(group_name(message["channel"]), message)
    except Exception:
        if not store:
            raise
        # Committed to the log: every hub recovers it from there (Hub._recover),
        # so a Redis outage must not fail the caller's request.
        logger.warning("Channel layer send failed; event %s will be recovered from the log", message["id"])


def close_session_streams(user: Any, session_key: str | None) -> None:
    """End the open streams of one signed-in session, on every process (called at logout)."""
    if not session_key:
        return
    channel = user_channel(user)
    message = {"type": "livefeed.close", "channel": channel, "session": session_tag(session_key)}
    try:
        run(_layer().group_send(group_name(channel), message))
    except Exception:
        logger.warning("Could not close the streams of a signed-out session", exc_info=True)


def _layer() -> Any:
    return get_channel_layer(conf.get("CHANNEL_LAYER"))
