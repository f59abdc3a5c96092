"""Grouping: a notification with a group_key folds, per recipient, into their open one.

See docs/design.md#the-notification-workflow.

The content is the Notification (one per send, whatever its audience); what a
fold changes is per reader, so it lives on their Delivery row: the row keeps
its notification (the id every client knows), points `latest` at the newest
notification, counts up and moves to the top. In one group send some readers
fold and others get a new row, so such a send is announced per reader, each
event with that reader's id, count and counts, never as one group event.

Concurrent sends of one key must not give a user two open rows: the partial
unique constraint livefeed_delivery_one_open_fold refuses a second one (on
PostgreSQL the second insert waits for the first send to commit, then fails),
and the losing send tries again, now folding into the row that won.
"""

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from livefeed import language
from livefeed.channels import user_channel
from livefeed.publishing import publish

if TYPE_CHECKING:
    from livefeed.models import Notification

# A send retries at most once per concurrent send that added a row first.
_ATTEMPTS = 10


def validate_group_key(group_key: Any) -> None:
    """Raise ValueError unless group_key is None or 1-100 characters of text."""
    if group_key is not None and (not isinstance(group_key, str) or not 1 <= len(group_key) <= 100):
        raise ValueError(f"group_key must be 1-100 characters of text, not {group_key!r:.120}.")


def deliver(notification: "Notification", users: list[Any] | None, using: str) -> None:
    """Fold notification into each reader's open row of its key, or give them a new one; announce on commit."""
    for attempt in range(_ATTEMPTS):
        try:
            with transaction.atomic(using=using):
                _fold_or_add(notification, users, using)
            break
        except IntegrityError:
            # Another send of this key committed a new row first: fold into it.
            if attempt == _ATTEMPTS - 1:
                raise
    transaction.on_commit(partial(announce_folded, notification, using), using=using, robust=True)


def _fold_or_add(notification: "Notification", users: list[Any] | None, using: str) -> None:
    from livefeed.models import Delivery

    audience: Any = [user.pk for user in users] if users is not None else notification.audience_users().values("pk")
    deliveries = Delivery.objects.using(using)
    # FOR UPDATE: a reader marking one read meanwhile waits, or is seen to have done it.
    open_rows = deliveries.select_for_update().filter(
        user__in=audience, fold_key=notification.group_key, read_at__isnull=True, archived_at__isnull=True
    )
    folded = dict(open_rows.values_list("user_id", "pk"))
    deliveries.filter(pk__in=list(folded.values())).update(
        count=models.F("count") + 1,
        latest=notification,
        updated_at=timezone.now(),
        expires_at=notification.expires_at,
    )
    if users is None:
        audience = list(notification.audience_users().values_list("pk", flat=True))
    added = [
        Delivery(
            notification=notification,
            user_id=user_id,
            fold_key=notification.group_key,
            updated_at=notification.created_at,
            expires_at=notification.expires_at,
        )
        for user_id in audience
        if user_id not in folded
    ]
    deliveries.bulk_create(added, batch_size=1000)


def announce_folded(notification: "Notification", using: str, users: Iterable[Any] | None = None) -> None:
    """Send each reader of notification (or these user ids) their own `notification` event: their row,
    count and counts."""
    from livefeed.models import Delivery

    readers = Delivery.objects.using(using).filter(models.Q(notification=notification) | models.Q(latest=notification))
    if users is not None:
        readers = readers.filter(user__in=list(users))
    announce_rows(list(readers.select_related("notification__actor", "latest__actor")), using)


def announce_rows(rows: list[Any], using: str) -> None:
    """Send each of these Delivery rows to its reader as a `notification` event: their count, counts and language."""
    from livefeed.models import Delivery

    counts = Delivery.objects.using(using).counts({row.user_id for row in rows})
    languages = language.of_rows(rows)  # {} unless a row is a message to translate
    for row in rows:
        data = row.event_data(**counts[row.user_id], language=languages.get(row.user_id))
        publish(user_channel(row.user_id), "notification", data)
