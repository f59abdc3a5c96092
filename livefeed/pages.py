"""The full-page inbox (docs/design.md#contracts): the inbox API's first page as HTML, then live.

For phones and for people who want more than a dropdown. Every action is a
plain form POST that works without JavaScript; livefeed-inbox.js turns them
into fetch() calls and keeps the page live. The POSTs run the API's own views,
so a change here publishes the same events and answers the same refusals.
"""

from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_http_methods

from livefeed import inbox as api
from livefeed.language import ui_language

ACTIONS: dict[str, Callable[..., HttpResponse]] = {
    "read": api.mark_read,
    "unread": api.mark_unread,
    "archive": api.archive,
}


@require_http_methods(["GET", "HEAD", "POST"])
def inbox(request: HttpRequest) -> HttpResponse:
    """Show the signed-in user's inbox page; a POST runs one row's action, then shows the page again."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST":
        return _act(request)
    items, has_more, counts = api.page(request)
    for item in items:
        item["when"] = datetime.fromisoformat(item["updated_at"])
    context = {
        "items": items,
        "has_more": has_more,
        "next_before": items[-1]["id"] if items else None,
        "api_url": reverse("livefeed:notifications"),
        **counts,
    }
    with translation.override(ui_language(request.user)):  # the user's choice wins over the site's
        return render(request, "livefeed/inbox.html", context)


def _act(request: HttpRequest) -> HttpResponse:
    """Run the API view of the form's action; back to the same page on success (post/redirect/get)."""
    action, pk = request.POST.get("action", ""), request.POST.get("id", "")
    if action not in ACTIONS or not (pk.isascii() and pk.isdigit() and len(pk) <= 18):
        raise BadRequest("Send action=read, unread or archive and a notification id.")
    answer = ACTIONS[action](request, int(pk))
    if answer.status_code != 200:
        return answer  # the API's JSON refusal (CSRF, not yours) says what went wrong
    return HttpResponseRedirect(request.get_full_path(), status=303)
