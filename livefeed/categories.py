"""Categories of notifications and each user's choice of how those of a category reach them.

See docs/notifications.md. LIVEFEED["CATEGORIES"] gives each category's
defaults; a Preference row overrides them for one user, except for a required
category, which always reaches everyone as its defaults say. "general" always
exists: it is the category of every notification sent without one.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import get_language_info, gettext_lazy

from livefeed import conf, revocation
from livefeed.publishing import reauthorize_user_streams

GENERAL = "general"
CHANNELS = ("in_app", "email")
_DEFAULTS = {"in_app": True, "email": False, "required": False}


def categories() -> dict[str, dict[str, Any]]:
    """Return {key: {"label", "in_app", "email", "required"}}, general first, from the settings."""
    configured = conf.get("CATEGORIES") or {}
    result = {GENERAL: {"label": gettext_lazy("General"), **_DEFAULTS}}
    for key, options in configured.items():
        result[key] = {"label": key.replace("_", " ").capitalize(), **_DEFAULTS, **result.get(key, {}), **options}
    return result


def validate_category(value: Any) -> None:
    """Raise ValidationError (a ValueError for notify()) unless value is a configured category."""
    if not isinstance(value, str) or value not in categories():
        known = ", ".join(categories())
        raise ValidationError(
            f"Unknown category {value!r:.60}: add it to LIVEFEED['CATEGORIES'] or use one of {known}.",
            code="invalid_category",
        )


def check_category(value: Any) -> None:
    """Raise ValueError unless value is a configured category (notify()'s check)."""
    try:
        validate_category(value)
    except ValidationError as error:
        raise ValueError(error.messages[0]) from None


def _preferences() -> Any:
    from livefeed.models import Preference

    return Preference.objects


def opted(category: str, channel: str, on: bool) -> models.QuerySet:
    """Return the ids of users who turned channel on (or off) for category, as a subquery."""
    return _preferences().filter(category=category, **{channel: on}).values("user")


def _in_app_default(category: str) -> bool | None:
    """Return category's in-app default, or None when nobody can turn it off (required, or unknown)."""
    options = categories().get(category, {})
    return None if options.get("required") or not options else bool(options["in_app"])


def muted_users(category: str) -> Any:
    """Return the users who get no inbox row or live event of category: a subquery of user ids, or []."""
    default = _in_app_default(category)
    if default is None:
        return []
    if default:
        return opted(category, "in_app", False)
    from django.contrib.auth import get_user_model

    return get_user_model()._default_manager.exclude(pk__in=opted(category, "in_app", True)).values("pk")


def has_muted(category: str) -> bool:
    """Return whether any user has in-app off for category (its sends then go live per reader)."""
    muted = muted_users(category)
    return muted != [] and muted.exists()


def effective(user: Any) -> list[dict[str, Any]]:
    """Return the user's choices per category: the contract's "categories" list."""
    chosen = {row.category: row for row in _preferences().filter(user=user).exclude(category="")}
    result = []
    for key, options in categories().items():
        entry = {"key": key, "label": str(options["label"]), "required": bool(options["required"])}
        for channel in CHANNELS:
            mine = getattr(chosen.get(key), channel, None)
            entry[channel] = bool(options[channel] if mine is None or options["required"] else mine)
        result.append(entry)
    return result


def language(user: Any) -> str:
    """Return the user's language: their choice, else LANGUAGE_CODE."""
    row = _preferences().filter(user=user, category="").first()
    return (row.language if row else "") or settings.LANGUAGE_CODE


def languages() -> list[list[str]]:
    """Return [[code, name in that language], …] of settings.LANGUAGES."""
    return [[code, str(_local_name(code, name))] for code, name in settings.LANGUAGES]


def _local_name(code: str, name: Any) -> Any:
    try:
        return get_language_info(code)["name_local"]
    except KeyError:  # a language Django does not know: the site's own name for it
        return name


def choose(user: Any, category: str, **flags: bool) -> None:
    """Save the user's in_app/email choice for category; raise ValueError for a bad one."""
    options = categories().get(category)
    if options is None:
        raise ValueError(f"Unknown category {category!r:.60}.")
    for channel, on in flags.items():
        if channel not in CHANNELS or not isinstance(on, bool):
            raise ValueError(f"{channel} must be true or false.")
        if options["required"] and not on:
            raise ValueError(f"{options['label']} notifications are required: {channel} cannot be turned off.")
    if flags:
        _preferences().update_or_create(user=user, category=category, defaults=flags)


def choose_language(user: Any, code: Any) -> None:
    """Save the user's language; raise ValueError unless it is one of settings.LANGUAGES."""
    if code not in {code for code, _ in settings.LANGUAGES}:
        raise ValueError(f"Unknown language {code!r:.20}.")
    _preferences().update_or_create(user=user, category="", defaults={"language": code})
    # A stream ticket carries the language it was issued in (livefeed.tickets): void the
    # user's tickets here and in every process with a stream of theirs open, so the next
    # connect reads the new one (the preferences views also make the browser drop it).
    revocation.forget_tickets(user_pk=user.pk)
    reauthorize_user_streams(user)


def without_muted(category: str, users: list[Any]) -> list[Any]:
    """Return users less those with in-app off for category (notify(recipient=...)'s readers)."""
    default = _in_app_default(category)
    if default is None:
        return users
    from livefeed.models import per_user

    # These users' own rows, in plain SQL: notify() asks on every send (docs/design.md#trap-16).
    rows = per_user(_preferences().all(), {user.pk for user in users}, "in_app", "category = %s", [category])
    chosen = {pk: in_app for pk, (in_app,) in rows}
    return [user for user in users if (default if chosen.get(user.pk) is None else chosen[user.pk])]


def category_choices() -> list[tuple[str, str]]:
    """Return (key, label) of every category, for a form's select."""
    return [(key, str(options["label"])) for key, options in categories().items()]
