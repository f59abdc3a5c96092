"""The buttons of a notification (docs/design.md#the-notification-workflow): checked once, when it is sent.

A "get" action is a link; a "post" action is a same-origin POST the widget
sends with the CSRF token, so its url must be a path: a POST to another origin
would carry no token and could be a way to make a reader's browser act elsewhere.
"""

from typing import Any

from django.core.exceptions import ValidationError

MAX_ACTIONS = 3
MAX_LABEL = 40
METHODS = ("get", "post")


def clean_actions(actions: Any) -> list[dict[str, str]]:
    """Return actions with `method` filled in; raise ValueError saying what to fix."""
    if actions is None:
        return []
    if not isinstance(actions, list | tuple):
        raise ValueError(f"actions must be a list of dicts, not {type(actions).__name__}.")
    if len(actions) > MAX_ACTIONS:
        raise ValueError(f"A notification has at most {MAX_ACTIONS} actions, not {len(actions)}.")
    return [_clean_action(action) for action in actions]


def validate_actions(value: Any) -> None:
    """Refuse, as a form error, the actions notify() would refuse (the model field's validator)."""
    try:
        clean_actions(value)
    except ValueError as error:
        raise ValidationError(str(error), code="invalid_actions") from None


def _clean_action(action: Any) -> dict[str, str]:
    if not isinstance(action, dict):
        raise ValueError(f"Each action is a dict with label and url, not {action!r:.60}.")
    if unknown := set(action) - {"label", "url", "method"}:
        raise ValueError(f"Unknown action keys {sorted(unknown)}: use label, url and method.")
    label, url, method = action.get("label"), action.get("url"), action.get("method", "get")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
        raise ValueError(f"An action's label is 1-{MAX_LABEL} characters of text, not {label!r:.60}.")
    if method not in METHODS:
        raise ValueError(f"An action's method is 'get' or 'post', not {method!r:.20}.")
    if not isinstance(url, str) or not url or len(url) > 500:
        raise ValueError(f"Action {label!r} needs a url: a path or an http(s):// URL.")
    from livefeed.models import validate_link

    try:
        validate_link(url)
    except ValidationError:
        raise ValueError(f"Action {label!r} has url {url!r:.60}: use a path or an http(s):// URL.") from None
    # "//host" and "/\\host" are other origins to a browser.
    if method == "post" and (not url.startswith("/") or url.startswith(("//", "/\\"))):
        raise ValueError(f"Action {label!r} posts, so its url must be a path on this site, not {url!r:.60}.")
    return {"label": label, "url": url, "method": method}
