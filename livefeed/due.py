"""Snoozes that come due and notifications that expire, each handled exactly once.

See docs/design.md#the-notification-workflow.

Every process's hub runs run_due() each DUE_INTERVAL seconds and `manage.py
livefeed_due` runs it from cron, so several runs may overlap. Each claims its
rows with one UPDATE … RETURNING whose WHERE no longer holds once a row is
changed: PostgreSQL makes a second concurrent UPDATE wait for the first and
re-check the WHERE against the committed row, SQLite runs one writer at a time.
So exactly one run gets each row back, and only that run announces it.
"""

import datetime
import json
from collections import defaultdict
from typing import Any

from django.core.exceptions import BadRequest
from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from livefeed import folding
from livefeed.channels import user_channel
from livefeed.publishing import publish

# Ids in one `removed` event, as for `read` events.
_MAX_IDS = 500
# The furthest a snooze may reach.
MAX_SNOOZE = datetime.timedelta(days=30)


def snooze_until(body: bytes) -> datetime.datetime:
    """Return the time in a snooze request's JSON {"until": ISO 8601}; raise BadRequest (400) unless it is
    in the future and at most MAX_SNOOZE ahead. A time without an offset is in the current time zone."""
    try:
        value = json.loads(body or b"{}").get("until")
    except (ValueError, AttributeError):
        raise BadRequest('Send JSON {"until": "<ISO 8601 time>"}.') from None
    try:
        until = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        until = None
    if until is None:
        raise BadRequest(f'"until" must be an ISO 8601 time such as "2026-11-24T08:00:00Z", not {value!r:.40}.')
    if timezone.is_naive(until):
        until = timezone.make_aware(until)
    now = timezone.now()
    if not now < until <= now + MAX_SNOOZE:
        raise BadRequest(f'"until" must be in the future and at most {MAX_SNOOZE.days} days ahead.')
    return until


def run_due() -> tuple[int, int]:
    """Bring back due snoozes unread at the top, remove expired notifications; return how many of each."""
    from livefeed.models import Delivery

    using = router.db_for_write(Delivery)
    now = connections[using].ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic(using=using):
        woken = _claim(
            using,
            "snoozed_until = NULL, read_at = NULL, seen_at = NULL, updated_at = %s",
            "snoozed_until <= %s AND archived_at IS NULL AND (expires_at IS NULL OR expires_at > %s)",
            [now, now, now],
        )
        expired = _claim(using, "archived_at = %s", "expires_at <= %s AND archived_at IS NULL", [now, now])
        _announce_woken(using, [pk for pk, _, _ in woken])
        _announce_removed(using, [(user_id, notification_id) for _, user_id, notification_id in expired])
    return len(woken), len(expired)


async def arun_due() -> tuple[int, int]:
    """Async twin of run_due(), in a worker thread that closes its DB connection (for the hub)."""
    from livefeed.eventlog import in_thread

    return await in_thread(run_due, thread_sensitive=False)()


def _claim(using: str, assignments: str, where: str, params: list[Any]) -> list[tuple[int, int, int]]:
    """Run UPDATE delivery SET … WHERE … RETURNING id, user_id, notification_id."""
    from livefeed.models import Delivery

    connection = connections[using]
    quote = connection.ops.quote_name
    returning = ", ".join(quote(column) for column in ("id", "user_id", "notification_id"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Delivery._meta.db_table)} SET {assignments} WHERE {where} RETURNING {returning}", params
        )
        return list(cursor.fetchall())


def _announce_woken(using: str, pks: list[int]) -> None:
    from livefeed.models import Delivery

    rows = list(Delivery.objects.using(using).filter(pk__in=pks).select_related("notification__actor", "latest__actor"))
    folding.announce_rows(rows, using)


def _announce_removed(using: str, removed: list[tuple[int, int]]) -> None:
    from livefeed.models import Delivery

    ids: dict[int, list[int]] = defaultdict(list)
    for user_id, notification_id in removed:
        ids[user_id].append(notification_id)
    counts = Delivery.objects.using(using).counts(ids)
    for user_id, notification_ids in ids.items():
        for start in range(0, len(notification_ids), _MAX_IDS):
            chunk = sorted(notification_ids)[start : start + _MAX_IDS]
            publish(user_channel(user_id), "removed", {"ids": chunk, **counts[user_id]})
