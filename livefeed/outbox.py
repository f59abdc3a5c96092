"""Writes of the event log: the outbox a transaction publishes into, and the ordered log after it.

Ids are taken at insert but become visible at commit, so two publishers can
commit out of order and a replay of "everything after id N" would skip the
one that commits late. Every log write therefore runs in a short transaction
of its own under one PostgreSQL advisory lock (SQLite has one writer anyway):
when id N is visible, so is every id below it.

Taking that lock inside the caller's transaction would serialise all
publishers behind the slowest. Instead publish() writes an outbox row there,
which commits or rolls back with the caller's data, and moves it into the log
right after the commit (move()). A publisher that dies in between leaves the
row behind, and any process's hub moves it on its recovery sweep (sweep(),
called by eventlog.settled_after). A move deletes the outbox rows in the same
transaction that appends them to the log, so each event reaches the log
exactly once (docs/reliability.md).
"""

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

logger = logging.getLogger("livefeed")

# Any constant shared by all publishers: the key of PostgreSQL's advisory lock.
_LOG_LOCK = 0x6C697665  # "live"
_BATCH = 1000

Message = dict[str, Any]


def database() -> str:
    """Return the alias of the database the event log lives in."""
    from livefeed.models import Event

    return router.db_for_write(Event)


def hold(messages: list[Message], using: str) -> dict[int, Message]:
    """Write messages to the outbox in the current transaction; return them by outbox id."""
    from livefeed.models import OutboxEvent

    rows = [OutboxEvent(channel=m["channel"], event=m["event"], data=m["data"]) for m in messages]
    _insert(rows, using)
    return {row.pk: message for row, message in zip(rows, messages, strict=True)}


def move(held: dict[int, Message], using: str) -> list[Message]:
    """Move held messages from the outbox to the log, giving each its id; return those moved.

    A message the hub's sweep moved first (its publisher was slow) is left out.
    """
    from livefeed.models import OutboxEvent

    with _log_transaction(using):
        outbox = OutboxEvent.objects.using(using)
        present = sorted(outbox.filter(pk__in=held).values_list("pk", flat=True))
        outbox.filter(pk__in=present).delete()
        moved = [held[pk] for pk in present]
        _append(moved, using)
    return moved


def record(messages: list[Message], using: str) -> None:
    """Append messages to the log now (no transaction to wait for), giving each its id."""
    with _log_transaction(using):
        _append(messages, using)


def sweep(older_than: float) -> int:
    """Move outbox rows older than older_than seconds into the log; return how many."""
    from livefeed.models import OutboxEvent

    using = database()
    cutoff = timezone.now() - datetime.timedelta(seconds=older_than)
    stale = OutboxEvent.objects.using(using).filter(created_at__lt=cutoff)
    if not stale.exists():  # the usual answer, without taking the log's lock
        return 0
    with _log_transaction(using):
        oldest = stale.select_for_update(skip_locked=True).order_by("pk")
        rows = list(oldest.values_list("pk", "channel", "event", "data")[:_BATCH])
        OutboxEvent.objects.using(using).filter(pk__in=[row[0] for row in rows]).delete()
        _append([{"channel": c, "event": e, "data": d, "id": None} for _, c, e, d in rows], using)
    if rows:
        logger.warning("Moved %d event(s) a publisher left in the outbox (it died after its commit)", len(rows))
    return len(rows)


@contextmanager
def _log_transaction(using: str) -> Iterator[None]:
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            # Held until commit: ids then commit in the order they were taken.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOG_LOCK])
        yield


def _append(messages: list[Message], using: str) -> None:
    from livefeed.models import Event

    rows = [Event(channel=m["channel"], event=m["event"], data=m["data"]) for m in messages]
    _insert(rows, using)
    for row, message in zip(rows, messages, strict=True):
        message["id"] = row.pk


def _insert(rows: list[Any], using: str) -> None:
    # One statement where the database returns the new ids (PostgreSQL, SQLite).
    if not rows:
        return
    if connections[using].features.can_return_rows_from_bulk_insert:
        type(rows[0])._default_manager.using(using).bulk_create(rows)
    else:  # MySQL
        for row in rows:
            row.save(using=using)
