"""Model signals -> live events, so every way of saving a notification delivers it alike.

Events are published inside the unit of work that saves the notification and
its delivery rows (notify() saves the row, then adds its recipients, in one
transaction): held in the outbox, they commit with those rows, so a process
that dies right after the commit still delivers them (livefeed.outbox).
"""

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import transaction

from livefeed import folding, revocation
from livefeed.channels import session_tag
from livefeed.models import Delivery, Notification
from livefeed.notifications import announce
from livefeed.publishing import close_session_streams, reauthorize_user_streams

logger = logging.getLogger("livefeed")


def notification_saved(
    sender: type, instance: Notification, created: bool, raw: bool, using: str, **kwargs: Any
) -> None:
    """Give a new group or everyone notification its delivery rows and its live event."""
    if not created or raw or instance.audience == Notification.Audience.USERS:
        return  # a users notification is announced as its recipients are added
    if instance.group_key:
        folding.deliver(instance, None, using)  # per reader: some fold, some get a new row
        return
    with transaction.atomic(using=using):
        Delivery.objects.using(using).fan_out(instance)
        _announce(instance, None)


def recipients_added(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set | None, using: str, **kwargs: Any
) -> None:
    """Announce a notification to the users just added as its recipients (inside add()'s transaction)."""
    if action != "post_add" or not pk_set:
        return
    if reverse:  # user.livefeed_notifications.add(...): instance is the user
        for notification in Notification.objects.using(using).filter(pk__in=pk_set):
            _announce(notification, [instance.pk])
    else:
        _announce(instance, sorted(pk_set))


def user_logged_out(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    """Stop streaming to a session as soon as it signs out, not at its next reconnect."""
    if user is not None and request is not None and hasattr(request, "session"):
        # This process hears of it at once, whether or not it holds one of the session's streams.
        revocation.forget_tickets(user_pk=user.pk, session=session_tag(request.session.session_key))
        close_session_streams(user, request.session.session_key)
        # Streams opened under an earlier key of this session (rotated by
        # login() or update_session_auth_hash()) are not named by the close.
        reauthorize_user_streams(user)


def user_saved(sender: type, instance: Any, created: bool, raw: bool, using: str, **kwargs: Any) -> None:
    """Re-check the user's open streams on commit when a save may have revoked their sign-in."""
    # set_password() leaves the raw password in _password until save() is over:
    # no extra query to tell a password change from a last_login update.
    if not (created or raw) and (
        getattr(instance, "_password", None) is not None or not getattr(instance, "is_active", True)
    ):
        transaction.on_commit(partial(reauthorize_user_streams, instance.pk), using=using, robust=True)


def user_groups_changed(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set | None, using: str, **kwargs: Any
) -> None:
    """Re-check the open streams of users who left a group, on commit, for that group's channel."""
    if action not in {"post_remove", "post_clear"}:
        return
    if not reverse:  # user.groups.remove(...) / .clear()
        users = [instance.pk]
    elif pk_set:  # group.user_set.remove(...)
        users = sorted(pk_set)
    else:  # group.user_set.clear(): who left is unknown now; the periodic check ends their streams
        return
    for pk in users:
        transaction.on_commit(partial(reauthorize_user_streams, pk), using=using, robust=True)


def _announce(notification: Notification, users: Iterable[Any] | None) -> None:
    try:
        announce(notification, users)
    except ValueError:
        # Data over MAX_PAYLOAD, saved some way other than notify() (which refuses
        # it first): keep the saved rows, go without the live event.
        logger.exception("Notification %s is saved but too large to send live", notification.pk)
