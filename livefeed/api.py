"""publish() and notify(), with their async twins: the public Python API (DESIGN §3).

publish() appends to the event log, then sends on the channel layer.

The log row is written in its own short transaction once the caller's
transaction has committed, under a lock on PostgreSQL, so event ids become
visible in increasing order: a stream that replays "everything after id N"
can then never skip an event that commits late (see docs/reliability.md).
"""

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction

from livefeed import conf, hub, sse
from livefeed.channels import BROADCAST, group_channel, group_name, session_tag, user_channel, validate

if TYPE_CHECKING:
    from livefeed.models import Notification

__all__ = ["announce", "announce_read", "anotify", "apublish", "notify", "publish"]

logger = logging.getLogger("livefeed")

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
    await _send(message, store)


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
    _run(_send(message, store))


async def _send(message: dict[str, Any], store: bool) -> None:
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
        _run(_layer().group_send(group_name(channel), message))
    except Exception:
        logger.warning("Could not close the streams of a signed-out session", exc_info=True)


def _layer() -> Any:
    return get_channel_layer(conf.get("CHANNEL_LAYER"))


# Sync callers -----------------------------------------------------------------
# In a server process the send runs on the loop that serves the streams (the
# in-memory layer only works there). Elsewhere (shell, management commands,
# workers) it runs on one private loop kept for the process, so every call
# reuses one Redis connection instead of opening a new one (DESIGN §6 trap 8).

_sender_loop: asyncio.AbstractEventLoop | None = None
_sender_lock = threading.Lock()


def _refuse_async_context(name: str = "publish") -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() was called from async code: use 'await livefeed.a{name}(...)'.")


def _run(coroutine: Any) -> None:
    asyncio.run_coroutine_threadsafe(coroutine, sender_loop()).result(timeout=10)


def sender_loop() -> asyncio.AbstractEventLoop:
    """Return the loop sync code should run livefeed coroutines on (see above)."""
    return hub.running_loop() or _private_loop()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _sender_loop
    with _sender_lock:
        if _sender_loop is None:
            _sender_loop = asyncio.new_event_loop()
            threading.Thread(target=_sender_loop.run_forever, name="livefeed-sender", daemon=True).start()
        return _sender_loop


# Notifications ------------------------------------------------------------------
# Group and everyone notifications go out as ONE event on the group/broadcast
# channel, so it cannot carry per-reader counts: its unread_count and
# unseen_count are null, meaning "yours went up by one" (the widget counts
# locally; the inbox API answers the exact numbers). Events to single users
# carry their exact counts.


def notify(
    recipient: Any = None,
    *,
    group: Any = None,
    everyone: bool = False,
    title: str,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: Any = None,
    actor: Any = None,
) -> "Notification":
    """Save a notification for one user (or several), a group or everyone; it goes live on commit.

    The delivery rows and the live event come from livefeed.signals, so a
    Notification saved any other way (admin, shell) reaches its readers alike.
    Raises TypeError unless exactly one audience is given, ValueError for an
    empty audience or oversized data, ValidationError for a bad field.
    """
    from livefeed.models import Notification

    _refuse_async_context("notify")
    users = _recipients(recipient, group, everyone)
    notification = Notification(
        title=title, body=body, level=level, url=url, data={} if data is None else data, actor=actor
    )
    if group is not None:
        notification.audience, notification.group = Notification.Audience.GROUP, group
    elif everyone:
        notification.audience = Notification.Audience.EVERYONE
    notification.clean_fields(exclude=["actor", "group"])
    _message(BROADCAST, "notification", notification.event_data())  # size check before saving
    with transaction.atomic(using=router.db_for_write(Notification)):
        notification.save()
        if users:
            notification.recipients.add(*users)
    return notification


async def anotify(
    recipient: Any = None,
    *,
    group: Any = None,
    everyone: bool = False,
    title: str,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: Any = None,
    actor: Any = None,
) -> "Notification":
    """Async twin of notify(): the database work and its commit run in a thread."""
    return await sync_to_async(notify)(
        recipient,
        group=group,
        everyone=everyone,
        title=title,
        body=body,
        level=level,
        url=url,
        data=data,
        actor=actor,
    )


def announce(notification: "Notification", users: Iterable[Any] | None = None) -> None:
    """Publish a saved notification to its audience, or to these user ids only."""
    _publish_to_readers(notification, "notification", notification.event_data, users)


def announce_read(notification: "Notification") -> None:
    """Tell every reader of notification that it is now read (after a "mark read for all")."""
    _publish_to_readers(
        notification,
        "read",
        lambda **counts: {"ids": [notification.pk], **counts},
        None,
    )


def _recipients(recipient: Any, group: Any, everyone: bool) -> list[Any]:
    chosen = [name for name, value in (("recipient", recipient), ("group", group)) if value is not None]
    if everyone is True:
        chosen.append("everyone")
    if len(chosen) != 1:
        raise TypeError(
            "notify() needs exactly one audience: recipient=user (or a list of users), "
            f"group=group or everyone=True; got {', '.join(chosen) or 'none'}."
        )
    if recipient is None:
        return []
    users = [recipient] if hasattr(recipient, "pk") else list(recipient)  # one user, or many
    if not users:
        raise ValueError("notify(recipient=...) got no users: pass a user or a non-empty list.")
    if any(user.pk is None for user in users):
        raise ValueError("notify(recipient=...) needs saved users; an anonymous or unsaved user has no inbox.")
    return users


def _publish_to_readers(
    notification: "Notification", event: str, data: Callable[..., Any], users: Iterable[Any] | None
) -> None:
    from livefeed.models import Delivery, Notification

    if users is None and notification.audience != Notification.Audience.USERS:
        unknown = {"unread_count": None, "unseen_count": None}  # one event, many readers
        if notification.audience == Notification.Audience.EVERYONE:
            publish(BROADCAST, event, data(**unknown))
        elif notification.group_id is not None:  # its group may have been deleted since
            publish(group_channel(notification.group_id), event, data(**unknown))
        return
    if users is None:
        users = notification.deliveries.values_list("user_id", flat=True)
    for user_id, counts in Delivery.objects.counts(users).items():
        publish(user_channel(user_id), event, data(**counts))
