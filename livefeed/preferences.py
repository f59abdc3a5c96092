"""How notifications reach a user: the preferences JSON API, its page, and one-click unsubscribe.

See docs/notifications.md. The API answers like the inbox API (livefeed.inbox):
JSON errors, 401 when anonymous, 403 without the CSRF token. The unsubscribe
URL of an email (RFC 8058) works with no session: its signature names the user.
"""

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt

from livefeed import categories, tickets
from livefeed.digest import read_unsubscribe_token
from livefeed.inbox import _endpoint
from livefeed.language import ui_language


def state(user: Any) -> dict[str, Any]:
    """Return the user's preferences as the API shows them."""
    return {
        "language": categories.language(user),
        "languages": categories.languages(),
        "categories": categories.effective(user),
    }


@_endpoint("GET")
def preferences(request: HttpRequest) -> HttpResponse:
    """Show the caller's preferences."""
    return JsonResponse(state(request.user))


@_endpoint("POST")
def change_preferences(request: HttpRequest) -> HttpResponse:
    """Change one category's in_app/email, or the language; answer the whole new state."""
    try:
        change = json.loads(request.body or b"{}")
    except ValueError:
        raise BadRequest("Send a JSON object.") from None
    if not isinstance(change, dict) or not change:
        raise BadRequest('Send {"category": …, "in_app": bool, "email": bool} or {"language": …}.')
    try:
        _apply(request.user, change)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    response = JsonResponse(state(request.user))
    if "language" in change:
        tickets.drop(response)
    return response


def _apply(user: Any, change: dict[str, Any]) -> None:
    unknown = set(change) - {"category", "in_app", "email", "language"}
    if unknown:
        raise ValueError(f"Unknown field(s): {', '.join(sorted(unknown))[:100]}.")
    if "language" in change:
        categories.choose_language(user, change["language"])
    if "category" in change:
        flags = {channel: change[channel] for channel in categories.CHANNELS if channel in change}
        categories.choose(user, change["category"], **flags)
    elif "in_app" in change or "email" in change:
        raise ValueError("Name the category to change.")


@csrf_exempt  # change_preferences checks CSRF itself and answers a rejection in JSON
def api(request: HttpRequest) -> HttpResponse:
    """Route GET and POST of /livefeed/api/preferences/."""
    return change_preferences(request) if request.method == "POST" else preferences(request)


@login_required
def page(request: HttpRequest) -> HttpResponse:
    """The preferences page for people: a row per category and the language, posted normally (CSRF-protected)."""
    saved = error = False
    if request.method == "POST":
        for entry in categories.effective(request.user):
            if entry["required"]:
                continue
            flags = {channel: f"{entry['key']}:{channel}" in request.POST for channel in categories.CHANNELS}
            categories.choose(request.user, entry["key"], **flags)
        try:
            if "language" in request.POST:
                categories.choose_language(request.user, request.POST["language"])
            saved = True
        except ValueError:
            error = True
    # In the language just chosen: the page answers in the words the reader asked for.
    with translation.override(ui_language(request.user)):
        context = {
            "categories": categories.effective(request.user),
            "languages": categories.languages(),
            "language": _offered(categories.language(request.user)),
            "saved": saved,
            "error": error,
        }
        response = render(request, "livefeed/preferences.html", context, status=400 if error else 200)
    if saved and "language" in request.POST:
        tickets.drop(response)
    return response


def _offered(code: str) -> str:
    """Return the entry of LANGUAGES the select shows for code: "en" for LANGUAGE_CODE "en-us"."""
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return code


@csrf_exempt  # no session to protect: the signed URL is the credential (RFC 8058)
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: ask to confirm (mail scanners follow links); POST: turn email off for the message's categories."""
    try:
        user_pk, kinds = read_unsubscribe_token(token)
        user = get_user_model()._default_manager.get(pk=user_pk)
    except (signing.BadSignature, KeyError, TypeError, ValueError, get_user_model().DoesNotExist):
        return render(request, "livefeed/unsubscribe.html", {"invalid": True}, status=400)
    known = categories.categories()
    labels = [str(known[kind]["label"]) for kind in kinds if kind in known]
    done = request.method == "POST"
    if done:
        for kind in kinds:
            if kind in known and not known[kind]["required"]:
                categories.choose(user, kind, email=False)
    with translation.override(ui_language(user)):  # the reader of the email, with no session
        return render(request, "livefeed/unsubscribe.html", {"labels": labels, "done": done})
