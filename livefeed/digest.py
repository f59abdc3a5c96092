"""The email fallback: unread notifications that waited EMAIL_DELAY seconds, one digest per user.

See docs/notifications.md#email. `livefeed_deliver` runs it from cron; runs may
overlap (a slow SMTP server, two hosts' crons): each row is claimed by one
conditional UPDATE that re-checks "not emailed since its last update" under the
row's write lock, so only one run owns it, and only the owner emails it.
"""

import datetime
import email.policy
import inspect
import logging
from collections import defaultdict
from typing import Any
from urllib.parse import urljoin

from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import models
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import ngettext

from livefeed import conf, language
from livefeed.categories import categories, opted
from livefeed.models import Delivery

logger = logging.getLogger("livefeed")

UNSUBSCRIBE_SALT = "livefeed.unsubscribe"
# Users whose rows are claimed and emailed together: bounds one claim's memory.
_USERS_PER_BATCH = 100


def _email_on() -> models.Q:
    """Return the condition "this row's category has email on for its reader"."""
    wanted = models.Q(pk__in=[])
    for key, options in categories().items():
        if options["required"]:
            on = models.Q() if options["email"] else None
        elif options["email"]:
            on = ~models.Q(user__in=opted(key, "email", False))
        else:
            on = models.Q(user__in=opted(key, "email", True))
        if on is not None:
            wanted |= models.Q(notification__category=key) & on
    return wanted


# Not emailed since it last changed: never, or before a fold or un-snooze.
_UNSENT = models.Q(emailed_at__isnull=True) | models.Q(emailed_at__lt=models.F("updated_at"))


def due(delay: float) -> models.QuerySet:
    """Return the deliveries to email now: unread, listed, unsent, quiet for delay seconds, email on."""
    cutoff = timezone.now() - datetime.timedelta(seconds=delay)
    return (
        Delivery.objects.listed()
        .filter(_UNSENT, _email_on(), read_at__isnull=True, updated_at__lte=cutoff, user__is_active=True)
        .exclude(user__email="")
    )


def deliver(delay: float | None = None) -> int:
    """Email every user their due notifications, one message each; return how many were sent."""
    delay = conf.get("EMAIL_DELAY") if delay is None else delay
    users = list(due(delay).values_list("user", flat=True).distinct().order_by("user"))
    if not users:
        return 0  # no connection to the mail server on a quiet minute
    sent = 0
    with _mailer() as connection:
        for start in range(0, len(users), _USERS_PER_BATCH):
            for rows in _claim(delay, users[start : start + _USERS_PER_BATCH]).values():
                sent += _send(rows, connection)
    return sent


def _mailer() -> Any:
    """Return the default mailer, opened once for the whole run."""
    from django.core import mail

    mailers = getattr(mail, "mailers", None)  # Django 6.1 (EMAIL_BACKEND or MAILERS["default"])
    return mailers.default if mailers is not None else get_connection()


def _claim(delay: float, users: list[Any]) -> dict[Any, list[Delivery]]:
    """Take these users' due rows for this run; return them by user, oldest first."""
    ids = _candidates(delay, users)
    stamp = timezone.now()
    # The UPDATE re-checks _UNSENT: of two overlapping runs only one sets each row.
    Delivery.objects.filter(_UNSENT, pk__in=ids).update(emailed_at=stamp)
    mine = Delivery.objects.filter(pk__in=ids, emailed_at=stamp).select_related("user", "notification", "latest")
    by_user: dict[Any, list[Delivery]] = defaultdict(list)
    for row in mine.order_by("updated_at", "pk"):
        by_user[row.user_id].append(row)
    return by_user


def _candidates(delay: float, users: list[Any]) -> list[int]:
    # Another run may take any of these before our UPDATE: only the UPDATE decides.
    return list(due(delay).filter(user__in=users).values_list("pk", flat=True))


def _send(rows: list[Delivery], connection: Any) -> int:
    try:
        return message(rows, connection).send()
    except Exception:
        # Due again next run: this one sent nothing.
        logger.exception("Could not email %d notification(s) to user %s", len(rows), rows[0].user_id)
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(emailed_at=None)
        return 0


def message(rows: list[Delivery], connection: Any = None) -> EmailMultiAlternatives:
    """Return one user's digest of these deliveries, text and HTML, with RFC 8058 unsubscribe headers."""
    user = rows[0].user
    reads_in = language.of_user(user)
    with translation.override(reads_in):  # the digest's own words too, in the reader's language
        return _message(rows, user, reads_in, connection)


def _message(rows: list[Delivery], user: Any, reads_in: str, connection: Any) -> EmailMultiAlternatives:
    site = conf.get("SITE_URL")
    items = [_item(row.event_data(language=reads_in), site) for row in rows]
    kinds = sorted({row.notification.category for row in rows})
    unsubscribe = urljoin(site, reverse("livefeed:unsubscribe", args=[unsubscribe_token(user, kinds)]))
    context = {
        "user": user,
        "notifications": items,
        "site_url": site,
        "preferences_url": urljoin(site, reverse("livefeed:preferences_page")),
        "unsubscribe_url": unsubscribe,
    }
    count = len(items)
    subject = (
        items[0]["title"] if count == 1 else ngettext("%d new notification", "%d new notifications", count) % count
    )
    digest = _Digest(
        " ".join(subject.split()),  # a header: no line breaks
        render_to_string("livefeed/email/digest.txt", context),
        to=[user.email],
        connection=connection,
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    digest.attach_alternative(render_to_string("livefeed/email/digest.html", context), "text/html")
    return digest


class _Digest(EmailMultiAlternatives):
    """A message whose long List-Unsubscribe URL stays one raw line.

    The email package folds a line over 78 characters, and a URL has no space
    to fold at, so it would become an RFC 2047 encoded word that mail clients
    do not read as a URL. RFC 5322 allows lines up to 998 characters.
    """

    def message(self, **kwargs: Any) -> Any:
        if "policy" in inspect.signature(super().message).parameters:  # Django 6: the modern email API
            kwargs["policy"] = kwargs.get("policy", email.policy.default).clone(max_line_length=998)
            return super().message(**kwargs)
        # Django 5.2 builds the message with the compat32 policy, which the
        # generator reads from the message itself when it writes it out.
        message = super().message(**kwargs)
        message.policy = message.policy.clone(max_line_length=998)
        return message


def _item(data: dict[str, Any], site: str) -> dict[str, Any]:
    return data | {"link": urljoin(site, data["url"]) if data["url"] else ""}


def unsubscribe_token(user: Any, kinds: list[str]) -> str:
    """Return the signed token naming this user and the categories of one message."""
    return signing.dumps({"u": user.pk, "c": kinds}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[Any, list[str]]:
    """Return (user id, categories) of a token; raise signing.BadSignature for a forged one."""
    payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    return payload["u"], list(payload["c"])
