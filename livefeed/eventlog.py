"""Reads of the event log: replay for a reconnecting stream, recovery for the hub.

Each runs in a worker thread and closes its DB connection before returning:
streams and the hub live long and must not pin one (docs/design.md#trap-10).
"""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import Max, Min
from django.utils import timezone

from livefeed import conf, htmx, instruments, language, outbox, sse

BATCH = 5000  # rows of one read of the hub's


def in_thread(function: Callable[..., Any], *, thread_sensitive: bool = True) -> Callable[..., Any]:
    """Return an async function running function in a thread, then closing its DB connections."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            for connection in connections.all(initialized_only=True):
                if not connection.in_atomic_block:
                    connection.close()

    return sync_to_async(run, thread_sensitive=thread_sensitive)


def _replay(
    channels: list[str], last_id: int, html: bool = False, language: str | None = None
) -> tuple[list[bytes], int]:
    from livefeed.models import Event

    # The newest id before the rows: ids become visible in order, so every id
    # up to it is visible to the read below, and live events up to it are duplicates.
    high = Event.objects.aggregate(high=Max("id"))["high"] or 0
    limit = conf.get("REPLAY_LIMIT")
    rows = list(Event.objects.after(last_id, channels).values_list("id", "event", "data")[: limit + 1])
    # The oldest id after the rows: a prune that ran before they were read shows
    # here and ends in a reset, never a silent gap.
    low = Event.objects.aggregate(low=Min("id"))["low"]
    if last_id > high:
        reason = "unknown_id"  # the log was reset under the client (a restored database)
    elif last_id > 0 and (low is None or low > last_id + 1):
        reason = "expired"  # what the client missed was pruned
        # (0 is a page rendered on an empty log: it missed nothing that was pruned.)
    elif len(rows) > limit:
        reason = "too_many"
    else:
        chunks = [encode(event, data, pk, html, language) for pk, event, data in rows]
        return chunks, max(high, rows[-1][0] if rows else 0)
    instruments.resets.inc()
    # The log's newest id, never the client's: the reset's id is also the
    # stream's dedupe threshold, and a stale one above the log would drop every new event.
    return [sse.encode(json.dumps({"reason": reason}), event="reset", id=high)], high


def encode(event: str, data: str, id: int, html: bool, reader_language: str | None) -> bytes:
    """Return a log row as SSE bytes for one reader, as the hub encodes it live (also livefeed.history)."""
    if event == htmx.EVENT and data.startswith(language.MARK):
        return language.encode(data, reader_language, html, id)
    return htmx.encode(event, data, id) if html else sse.encode(data, event=event, id=id)


replay = in_thread(_replay)
replay.__doc__ = "Return the SSE chunks after last_id (or one reset) and the highest id they cover."


def _newest_id() -> int:
    from livefeed.models import Event

    return Event.objects.aggregate(newest=Max("id"))["newest"] or 0


def _settled_after(floor: int, older_than: float) -> list[tuple[int, str]]:
    # Younger events may still be on their way through the layer.
    from livefeed.models import Event

    # Events whose publisher died between its commit and the log write join the log now.
    outbox.sweep(older_than)
    cutoff = timezone.now() - timedelta(seconds=older_than)
    rows = Event.objects.filter(id__gt=floor, created_at__lt=cutoff).order_by("id")
    return list(rows.values_list("id", "channel")[:BATCH])


def _ids_after(floor: int, top: int) -> tuple[list[tuple[int, str]], int]:
    from livefeed.models import Event

    rows = list(Event.objects.filter(id__gt=floor, id__lte=top).order_by("id").values_list("id", "channel")[:BATCH])
    oldest = 0
    if rows and rows[0][0] > floor + 1:  # ids below the log's oldest were pruned or never written
        oldest = Event.objects.aggregate(oldest=Min("id"))["oldest"] or 0
    return rows, oldest


def _messages(ids: list[int]) -> list[dict[str, Any]]:
    from livefeed.models import Event

    rows = Event.objects.filter(pk__in=ids).order_by("id").values_list("id", "channel", "event", "data")
    return [{"id": pk, "channel": channel, "event": event, "data": data} for pk, channel, event, data in rows]


# The hub's reads run off the request threads: it outlives every request.
newest_id = in_thread(_newest_id, thread_sensitive=False)
settled_after = in_thread(_settled_after, thread_sensitive=False)
ids_after = in_thread(_ids_after, thread_sensitive=False)
messages = in_thread(_messages, thread_sensitive=False)
