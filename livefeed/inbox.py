"""The JSON inbox API (docs/design.md#contracts): list, mark read or unread, mark all read or seen, archive, snooze.

Session auth. Every answer is JSON, errors too: 401 for an anonymous caller
(never a login redirect), 403 for a missing CSRF token, 404 for a notification
that is not in the caller's inbox, 400 for bad input, 405 for a wrong method.
Every change publishes a `read` event on the caller's channel (an archive or a
snooze a `removed` one), so all their open tabs update at once.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.core.exceptions import BadRequest
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.shortcuts import get_object_or_404
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt

from livefeed import language
from livefeed.categories import categories
from livefeed.channels import user_channel
from livefeed.due import snooze_until
from livefeed.models import Delivery
from livefeed.publishing import publish

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Ids listed in one `read` event: more than a widget shows, far under MAX_PAYLOAD.
MAX_READ_IDS = 500


class _JsonCsrfMiddleware(CsrfViewMiddleware):
    """Django's CSRF check, answering a rejection in JSON instead of an HTML page."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        return _error(403, f"CSRF check failed: {reason}. Send the csrftoken cookie's value in X-CSRFToken.")


_csrf_protect = decorator_from_middleware(_JsonCsrfMiddleware)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _endpoint(method: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Wrap a view in the API's method, auth, CSRF and JSON error handling."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        checked = _csrf_protect(view) if method == "POST" else view

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                response = _error(405, f"Use {method}.")
                response["Allow"] = method
                return response
            if not request.user.is_authenticated:
                return _error(401, "Sign in to use the notification inbox.")
            try:
                return cast(HttpResponse, checked(request, *args, **kwargs))
            except Http404:
                return _error(404, "No such notification in your inbox.")
            except BadRequest as error:
                return _error(400, str(error))

        # The site-wide middleware would answer a rejection in HTML: ours checks instead.
        return csrf_exempt(wrapper)

    return decorator


@_endpoint("GET")
def notification_list(request: HttpRequest) -> HttpResponse:
    """List the caller's inbox newest first; `before` pages by id, `unread=1` and `category` filter."""
    limit = _integer(request, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}.")
    results, has_more, counts = page(request, limit, unread=_flag(request, "unread"))
    get_token(request)  # sets the CSRF cookie, so the widget can POST from any page
    return JsonResponse({"results": results, "has_more": has_more, **counts})


def page(
    request: HttpRequest, limit: int = DEFAULT_LIMIT, *, unread: bool = False
) -> tuple[list[dict[str, Any]], bool, dict[str, int]]:
    """Return one page of the caller's inbox after `?before=ID`: (items, has_more, counts).

    The full-page inbox (livefeed.pages) renders the same page the API lists.
    """
    deliveries = Delivery.objects.inbox(request.user).select_related("notification__actor", "latest__actor")
    before = _optional_integer(request, "before")
    if before is not None:
        deliveries = deliveries.filter(_after(request, before))
    if unread:
        deliveries = deliveries.filter(read_at__isnull=True)
    category = request.GET.get("category")
    if category is not None:
        if category not in categories():
            raise BadRequest(f"Unknown category {category[:50]!r}.")
        deliveries = deliveries.filter(notification__category=category)
    rows = list(deliveries[: limit + 1])
    counts = _counts(request)
    shown = rows[:limit]
    reads_in = language.of_rows(shown).get(request.user.pk)  # no query unless one is to translate
    return [delivery.item(**counts, language=reads_in) for delivery in shown], len(rows) > limit, counts


@_endpoint("POST")
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notification read."""
    changed = _mine(request, pk).mark_read()
    return _changed(request, [pk] if changed else [])


@_endpoint("POST")
def mark_unread(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notification unread again; it stays seen (the reader has seen it)."""
    # It stops taking folds, as a resend does: a newer unread one of its key may exist.
    changed = _mine(request, pk).exclude(read_at=None).update(read_at=None, fold_key="")
    return _changed(request, [], unread_ids=[pk] if changed else [])


@_endpoint("POST")
def mark_all_read(request: HttpRequest) -> HttpResponse:
    """Mark every notification in the inbox read (those listed so far, not any arriving meanwhile)."""
    unread = Delivery.objects.inbox(request.user).filter(read_at__isnull=True)
    rows = list(unread.values_list("notification_id", "updated_at")[:MAX_READ_IDS])
    if rows:
        # Up to the top one as listed: a fold moves an old id to the top, so not by id.
        unread.filter(updated_at__lte=rows[0][1]).mark_read()
    return _changed(request, [pk for pk, _ in rows])


@_endpoint("POST")
def mark_all_seen(request: HttpRequest) -> HttpResponse:
    """Mark the inbox seen (the dropdown was opened): the unseen count drops to 0."""
    changed = Delivery.objects.inbox(request.user).mark_seen()
    return _changed(request, [], publish_anyway=bool(changed))


@_endpoint("POST")
def archive(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove one notification from the inbox and its counts; open inboxes drop it (a `removed` event)."""
    changed = _mine(request, pk).archive()
    return _changed(request, [pk] if changed else [], event="removed")


@_endpoint("POST")
def snooze(request: HttpRequest, pk: int) -> HttpResponse:
    """Hide one notification until a time given as JSON {"until": ISO 8601}; it then comes back unread."""
    until = snooze_until(request.body)
    # It stops taking folds: later ones of its key start a row the reader sees now.
    changed = _mine(request, pk).filter(archived_at__isnull=True).update(snoozed_until=until, fold_key="")
    data = {"ids": [pk] if changed else [], **_counts(request)}
    if changed:
        publish(user_channel(request.user), "removed", data)
    return JsonResponse(data | {"snoozed_until": until})


def _after(request: HttpRequest, pk: int) -> Q:
    """Return the filter for the page after the caller's notification pk (in the inbox order)."""
    anchor = Delivery.objects.filter(user_id=cast(int, request.user.pk), notification_id=min(pk, 2**63 - 1)).first()
    if anchor is None:
        raise BadRequest(f"before={pk} is not a notification in your inbox.")
    moment = anchor.updated_at
    return Q(updated_at__lt=moment) | Q(updated_at=moment, notification_id__lt=pk)


def _mine(request: HttpRequest, pk: int) -> Any:
    """Return the queryset of the caller's delivery of notification pk, or raise Http404."""
    if pk > 2**63 - 1:  # past any id, and past what SQLite can bind
        raise Http404
    deliveries = Delivery.objects.filter(user_id=cast(int, request.user.pk), notification_id=pk)
    get_object_or_404(deliveries.only("pk"))
    return deliveries


def _changed(
    request: HttpRequest,
    ids: list[int],
    *,
    unread_ids: list[int] | None = None,
    publish_anyway: bool = False,
    event: str = "read",
) -> HttpResponse:
    """Answer a change with the new counts and tell the caller's other tabs."""
    data: dict[str, Any] = {"ids": ids, **_counts(request)}
    if unread_ids:
        data["unread_ids"] = unread_ids
    if ids or unread_ids or publish_anyway:
        publish(user_channel(request.user), event, data)
    return JsonResponse(data)


def _counts(request: HttpRequest) -> dict[str, int]:
    return Delivery.objects.counts([request.user.pk])[request.user.pk]


def _integer(request: HttpRequest, name: str, default: int) -> int:
    value = _optional_integer(request, name)
    return default if value is None else value


def _optional_integer(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    if value == "":
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise BadRequest(f"{name} must be a non-negative integer, not {value[:20]!r}.")
    return int(value)


def _flag(request: HttpRequest, name: str) -> bool:
    value = request.GET.get(name, "").lower()
    if value not in {"", "0", "1", "false", "true"}:
        raise BadRequest(f"{name} must be 1 or 0, not {value[:20]!r}.")
    return value in {"1", "true"}
