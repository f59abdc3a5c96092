"""notify() and anotify(): notifications saved for their readers and announced live (docs/design.md#contracts).

Group and everyone notifications go out as ONE event on the group/"users"
channel (never "broadcast", which anonymous streams read), so it cannot carry per-reader counts: its unread_count and
unseen_count are null, meaning "yours went up by one" (the widget counts
locally; the inbox API answers the exact numbers). Events to single users
carry their exact counts.
"""

import datetime
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import router
from django.db.models.signals import m2m_changed
from django.utils import timezone
from django.utils.functional import Promise

from livefeed import folding, language
from livefeed.actions import clean_actions
from livefeed.bridge import refuse_async_context
from livefeed.categories import GENERAL, check_category, has_muted, without_muted
from livefeed.channels import BROADCAST, USERS, group_channel, user_channel
from livefeed.publishing import atomic, message_for, publish, publish_messages

if TYPE_CHECKING:
    from livefeed.models import Notification

__all__ = ["announce", "announce_read", "anotify", "notify"]


def notify(
    recipient: Any = None,
    *,
    group: Any = None,
    everyone: bool = False,
    title: str | Promise,
    body: str | Promise = "",
    level: str = "info",
    url: str = "",
    data: Any = None,
    actor: Any = None,
    group_key: str | None = None,
    actions: list[dict[str, str]] | None = None,
    expires_at: datetime.datetime | None = None,
    category: str = GENERAL,
    params: dict[str, Any] | None = None,
) -> "Notification":
    """Save a notification for one user (or several), a group or everyone; it goes live on commit.

    The delivery rows and the live event come from livefeed.signals, so a
    Notification saved any other way (admin, shell) reaches its readers alike.
    With a group_key it folds into each recipient's unread one of that key
    (livefeed.folding). Raises TypeError unless exactly one audience is given
    (or for a recipient that is not a user),
    ValueError for an empty audience, oversized data, a bad group_key, actions
    or expires_at, an unknown category, ValidationError for a bad field.
    Users with in-app off for the category get no row and no event.
    A lazy title or body (gettext_lazy) reaches each reader in their language,
    params filled in (livefeed.language): ValueError for params without one or
    missing a key, TypeError for params that are not a dict of JSON values.
    """
    from livefeed.models import Notification

    refuse_async_context("notify")
    check_category(category)
    users = without_muted(category, _recipients(recipient, group, everyone))
    notification = Notification(
        **language.fields(title, body, params),
        level=level,
        url=url,
        data={} if data is None else data,
        actor=actor,
        category=category,
        **_workflow_fields(group_key, actions, expires_at),
    )
    if group is not None:
        notification.audience, notification.group = Notification.Audience.GROUP, group
    elif everyone:
        notification.audience = Notification.Audience.EVERYONE
    notification.clean_fields(exclude=["actor", "group"])
    message_for(BROADCAST, "notification", _stored(notification, notification.event_data()))  # size check first
    using = router.db_for_write(Notification)
    with atomic(using):  # its events commit with it, in one commit
        notification.save()
        if users and group_key:
            folding.deliver(notification, users, using)
        elif users:
            _add_recipients(notification, users)
    return notification


async def anotify(
    recipient: Any = None,
    *,
    group: Any = None,
    everyone: bool = False,
    title: str | Promise,
    body: str | Promise = "",
    level: str = "info",
    url: str = "",
    data: Any = None,
    actor: Any = None,
    group_key: str | None = None,
    actions: list[dict[str, str]] | None = None,
    expires_at: datetime.datetime | None = None,
    category: str = GENERAL,
    params: dict[str, Any] | None = None,
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
        group_key=group_key,
        actions=actions,
        expires_at=expires_at,
        category=category,
        params=params,
    )


def announce(notification: "Notification", users: Iterable[Any] | None = None) -> None:
    """Publish a saved notification to its audience, or to these user ids only."""
    if notification.group_key:  # each reader's row and count differ (livefeed.folding)
        folding.announce_folded(notification, router.db_for_write(type(notification)), users)
        return
    _publish_to_readers(notification, "notification", notification.event_data, users, notification.translated)


def announce_read(notification: "Notification") -> None:
    """Tell every reader of notification that it is now read (after a "mark read for all")."""
    _publish_to_readers(
        notification,
        "read",
        lambda **counts: {"ids": [notification.pk], **counts},
        None,
    )


def _stored(notification: "Notification", data: dict[str, Any]) -> dict[str, Any]:
    """Return a group or everyone event's data as published: marked for the hub when it needs translating."""
    return language.marked(notification, data) if notification.translated else data


@functools.cache
def _add_extra() -> dict[str, Any]:
    """The arguments add() gives m2m_changed beyond the usual ones in this Django (`raw` in newer ones)."""
    from livefeed.models import Notification

    add = Notification.recipients.related_manager_cls._add_items  # type: ignore[attr-defined]
    return {"raw": False} if "raw" in inspect.signature(add).parameters else {}


def _add_recipients(notification: "Notification", users: list[Any]) -> None:
    """notification.recipients.add(*users) for a notification saved in this transaction.

    Django's add() first asks which users already have a row; a notification
    saved a moment ago has none, and that question was one of the dearest
    statements of a send (docs/design.md#trap-16). The
    m2m_changed signals go out as add() sends them: livefeed.signals announces
    the notification on post_add, and any other receiver hears the same. A
    post_save receiver of Notification that adds rows itself would make this
    insert fail on the unique constraint, where add() skipped them.
    """
    from livefeed.models import Delivery, insert

    using = router.db_for_write(Delivery, instance=notification)  # as add() picks it
    pk_set = {user.pk for user in users}
    signal = {
        "sender": Delivery,
        "instance": notification,
        "reverse": False,
        "model": type(notification).recipients.field.related_model,
        "pk_set": pk_set,
        "using": using,
        **_add_extra(),
    }
    m2m_changed.send(action="pre_add", **signal)
    created, expires = notification.created_at, notification.expires_at
    insert(
        Delivery,
        using,
        ["notification", "user", "updated_at", "expires_at", "count", "fold_key"],
        [(notification.pk, pk, created, expires, 1, "") for pk in pk_set],
    )
    m2m_changed.send(action="post_add", **signal)


def _workflow_fields(group_key: Any, actions: Any, expires_at: Any) -> dict[str, Any]:
    """Return notify()'s grouping, actions and expiry as model fields; raise ValueError for bad ones."""
    folding.validate_group_key(group_key)
    if expires_at is not None and (not isinstance(expires_at, datetime.datetime) or timezone.is_naive(expires_at)):
        raise ValueError(f"expires_at must be an aware datetime, not {expires_at!r:.60}.")
    return {"group_key": group_key or "", "actions": clean_actions(actions), "expires_at": expires_at}


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
    user_model = get_user_model()
    for user in users:  # add() refused anything else; the rows are written by pk (_add_recipients)
        if not isinstance(user, user_model):
            raise TypeError(f"notify(recipient=...): {user_model.__name__} instance expected, got {user!r:.60}.")
    return users


def _publish_to_readers(
    notification: "Notification",
    event: str,
    data: Callable[..., Any],
    users: Iterable[Any] | None,
    translated: bool = False,
) -> None:
    from livefeed.models import Delivery, Notification

    # Readers with in-app off must not hear a group event: then each reader hears their own.
    if users is None and notification.audience != Notification.Audience.USERS and not has_muted(notification.category):
        unknown = {"unread_count": None, "unseen_count": None}  # one event, many readers
        shared = data(**unknown)
        if translated:  # each process's hub renders it once per reader language (livefeed.language)
            shared = language.marked(notification, shared)
        if notification.audience == Notification.Audience.EVERYONE:
            publish(USERS, event, shared)  # signed-in readers only
        elif notification.group_id is not None:  # its group may have been deleted since
            publish(group_channel(notification.group_id), event, shared)
        return
    if users is None:
        users = notification.deliveries.values_list("user_id", flat=True)
    # One log write and one background send for all these users' events, however many there are.
    counts = Delivery.objects.counts(users)
    if translated:  # each reader's own event, in their language
        languages = language.of_users(counts)
        messages = [
            message_for(user_channel(user_id), event, data(**own, language=languages.get(user_id)))
            for user_id, own in counts.items()
        ]
    else:
        messages = [message_for(user_channel(user_id), event, data(**own)) for user_id, own in counts.items()]
    publish_messages(messages)
