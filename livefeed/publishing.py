"""publish() and apublish(): an event to every stream reading a channel (docs/design.md#contracts).

publish() appends to the event log, then sends on the channel layer.

Inside a transaction the event is held in the outbox and commits with the
caller's data; right after the commit it moves into the log, where event ids
become visible in increasing order (livefeed.outbox, docs/reliability.md).
The layer send then runs in the background: once the event is committed,
neither a slow nor a failing Redis may stall or fail the caller, and every hub
recovers a lost send from the log.
"""

import asyncio
import json
import logging
from contextlib import nullcontext
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from livefeed import conf, instruments, outbox, sse
from livefeed.bridge import refuse_async_context, submit
from livefeed.channels import group_name, session_tag, user_channel, validate

__all__ = ["apublish", "publish"]

logger = logging.getLogger("livefeed")


def publish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, once the current transaction commits.

    store=False skips the event log: for high-rate ephemeral events (ticks,
    tokens) that a reconnecting client does not need to replay.
    """
    refuse_async_context()
    publish_messages([message_for(channel, event, data)], store=store)


async def apublish(channel: str, event: str, data: Any = None, *, store: bool = True) -> None:
    """Send an event to every stream reading channel, now (async code has no transactions)."""
    message = message_for(channel, event, data)
    if store:
        await sync_to_async(outbox.record)([message], outbox.database())
    submit(_send([message], store))


def publish_messages(messages: list[dict[str, Any]], *, store: bool = True) -> None:
    """Publish messages from message_for() together: one log write for all, then a send each."""
    using = outbox.database()
    if not store:
        transaction.on_commit(lambda: submit(_send(messages, store)), using=using, robust=True)
    elif transaction.get_connection(using).in_atomic_block:
        held = outbox.hold(messages, using)  # commits with the caller's transaction
        # robust: if the move fails, the hubs' sweep moves the rows and the caller's other hooks still run.
        transaction.on_commit(lambda: submit(_send(outbox.move(held, using), store)), using=using, robust=True)
    else:
        outbox.record(messages, using)
        submit(_send(messages, store))


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


async def _send(messages: list[dict[str, Any]], store: bool) -> None:
    events = messages[0]["type"] == "livefeed.event" if messages else False  # not a close or re-check
    if events:
        instruments.published.inc(len(messages))
    try:
        async with asyncio.timeout(conf.get("SEND_TIMEOUT")):
            with instruments.publish_seconds.time() if events else nullcontext():
                for message in messages:
                    await _layer().group_send(group_name(message["channel"]), message)
    except Exception:
        if store:  # every hub recovers them from the log (Hub._recover)
            logger.warning("Channel layer send failed; %d event(s) will be recovered from the log", len(messages))
        else:
            logger.warning("Channel layer send failed; %d unstored message(s) lost", len(messages), exc_info=True)


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
    submit(_send([{**message, "channel": channel}], store=False))


def _layer() -> Any:
    return get_channel_layer(conf.get("CHANNEL_LAYER"))
