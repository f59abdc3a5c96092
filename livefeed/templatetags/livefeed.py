"""Template tags of the widget: `{% load livefeed %}{% livefeed_state as lf %}`."""

import json
from typing import Any

from django import template
from django.conf import settings
from django.db.models import Count, Max, Q
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext, ngettext

from livefeed.language import ui_language

register = template.Library()

# The badge says "99+" past this; the widget's script gets it from the page (data-badge-max).
BADGE_MAX = 99


@register.simple_tag(takes_context=True)
def livefeed_stream_state(context: template.Context) -> dict[str, Any]:
    """Return what the stream alone needs (livefeed/stream.html): its URL and where to resume."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"enabled": False}
    # An empty log is position 0: the page's stream then replays from the start.
    return {"enabled": True, "stream_url": reverse("livefeed:stream"), "last_event_id": _last_event_id() or 0}


@register.simple_tag(takes_context=True)
def livefeed_state(context: template.Context) -> dict[str, Any]:
    """Return what the widget renders on the server: URLs, counts and strings."""
    # The log position first, then the counts: an event committed in between
    # is replayed to the page, whose counts it carries, and never missed.
    state = livefeed_stream_state(context)
    if not state["enabled"]:
        return state
    user = context["request"].user
    unread, unseen, newest = _inbox_state(user)
    # `{% include "livefeed/widget.html" with livefeed_badge="unseen" %}`: the badge counts
    # what arrived since the dropdown was last opened; anything else counts unread.
    counts_unseen = context.get("livefeed_badge") == "unseen"
    shown = unseen if counts_unseen else unread
    reads_in = ui_language(user)  # the user's choice wins over the page's; widget.html renders in it too
    with translation.override(reads_in):
        return state | {
            "language": reads_in,
            "api_url": reverse("livefeed:notifications"),
            # Where the widget sends someone whose session ended (a 401 on the stream).
            "login_url": resolve_url(settings.LOGIN_URL),
            "unread_count": unread,
            "unseen_count": unseen,
            "newest_id": newest or 0,
            "badge_kind": "unseen" if counts_unseen else "unread",
            "badge_count": shown,
            "badge_max": BADGE_MAX,
            "badge": badge_text(shown),
            "unread_label": _unread_label(unread),
            "badge_label": _new_label(unseen) if counts_unseen else _unread_label(unread),
            "strings": json.dumps(_strings(), ensure_ascii=False),
        }


def badge_text(count: int) -> str:
    """Return the badge's text: the count, or "99+" past BADGE_MAX (livefeed-rows.js badgeText agrees)."""
    return f"{BADGE_MAX}+" if count > BADGE_MAX else str(max(0, count))


def _last_event_id() -> int | None:
    from livefeed.models import Event

    return Event.objects.aggregate(high=Max("id"))["high"]


def _inbox_state(user: Any) -> tuple[int, int, int | None]:
    """Return the user's unread and unseen counts and their newest notification's id, in one query."""
    from livefeed.models import Delivery

    state = (
        Delivery.objects.inbox(user)
        .order_by()
        .aggregate(
            unread=Count("pk", filter=Q(read_at__isnull=True)),
            unseen=Count("pk", filter=Q(seen_at__isnull=True)),
            newest=Max("notification_id"),
        )
    )
    return state["unread"], state["unseen"], state["newest"]


def _unread_label(count: int) -> str:
    if not count:
        return gettext("No unread notifications")
    return ngettext("%(count)s unread notification", "%(count)s unread notifications", count) % {"count": count}


def _new_label(count: int) -> str:
    if not count:
        return gettext("No new notifications")
    # The msgid the script's "new" strings use too: one translation for both.
    return ngettext("{count} new notification", "{count} new notifications", count).replace("{count}", str(count))


def _strings() -> dict[str, str]:
    """Return the strings the script shows; {count} is filled in by the script."""
    return {
        "unread_zero": gettext("No unread notifications"),
        "unread_one": ngettext("{count} unread notification", "{count} unread notifications", 1),
        "unread_other": ngettext("{count} unread notification", "{count} unread notifications", 2),
        "storm_other": ngettext("{count} new notification", "{count} new notifications", 2),
        # The badge's spoken label when it counts unseen (livefeed_badge="unseen").
        "new_zero": gettext("No new notifications"),
        "new_one": ngettext("{count} new notification", "{count} new notifications", 1),
        "new_other": ngettext("{count} new notification", "{count} new notifications", 2),
        "show": gettext("Show"),
        "dismiss": gettext("Dismiss"),
        "mark_read": gettext("Mark as read"),
        "load_error": gettext("Could not load notifications."),
        "open": gettext("Live"),
        "connecting": gettext("Connecting…"),
        "offline": gettext("Offline, retrying…"),
        "reconnecting": gettext("Reconnecting…"),
        "signed-out": gettext("Signed out — sign in again"),
        "retry": gettext("Retry"),
        "action_error": gettext("Could not reach the server: nothing was changed."),
        "mark_read_named": gettext("Mark as read: {title}"),
        "opens": gettext("Opens a link"),
        "info": gettext("Info"),
        "success": gettext("Success"),
        "warning": gettext("Warning"),
        "error": gettext("Error"),
        # The notification workflow: folds, actions and snooze.
        "grouped_one": ngettext("{count} grouped notification", "{count} grouped notifications", 1),
        "grouped_other": ngettext("{count} grouped notification", "{count} grouped notifications", 2),
        "action_done": gettext("Done"),
        # Translators: {status} is an HTTP status code such as 403, or "no answer".
        "action_failed": gettext("Failed ({status})"),
        "no_answer": gettext("no answer"),
        "snooze": gettext("Snooze"),
        "snooze_hour": gettext("1 hour"),
        "snooze_morning": gettext("Tomorrow morning"),
        "snooze_failed": gettext("Could not snooze."),
        # Per row in the dropdown: archive and mark unread; the list's sections.
        "archive": gettext("Archive"),
        "mark_unread": gettext("Mark as unread"),
        "mark_unread_named": gettext("Mark as unread: {title}"),
        "today": gettext("Today"),
        "earlier": gettext("Earlier"),
    }
