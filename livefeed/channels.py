"""Channel names and who may read them.

A channel maps to the Channels group "livefeed.<name>". Built-in channels:
"user.<pk>" (one user), "group.<pk>" (members of an auth group), "users"
(every signed-in user: notify(everyone=True)) and "broadcast" (every stream,
anonymous ones too under ALLOW_ANONYMOUS). Any other name is a custom channel, readable only when a
registered pattern or the AUTHORIZE setting says so; denied by default.
"""

import hashlib
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router
from django.utils.module_loading import import_string

from livefeed import conf
from livefeed.exceptions import InvalidChannel

logger = logging.getLogger("livefeed")

BROADCAST = "broadcast"
USERS = "users"
GROUP_PREFIX = "livefeed."
# Channels group names: ASCII letters, digits, "-", "_", "." and under 100 chars.
_MAX_NAME = 99 - len(GROUP_PREFIX)
_NAME = re.compile(rf"[A-Za-z0-9_.\-]{{1,{_MAX_NAME}}}")
_PART = re.compile(r"\{(\w+)\}")

# pattern as registered -> (its regex, its authorize function, its specificity)
_patterns: dict[str, tuple[re.Pattern[str], Callable[..., Any], tuple[tuple[int, int], ...]]] = {}


def validate(name: str) -> str:
    """Return name if Channels can use it as a group name, else raise InvalidChannel."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidChannel(
            f"Invalid channel name {name!r}: use 1-{_MAX_NAME} ASCII letters, digits, '-', '_' or '.'."
        )
    return name


def group_name(channel: str) -> str:
    return GROUP_PREFIX + channel


def user_channel(user_or_pk: Any) -> str:
    return f"user.{getattr(user_or_pk, 'pk', user_or_pk)}"


def group_channel(group_or_pk: Any) -> str:
    return f"group.{getattr(group_or_pk, 'pk', group_or_pk)}"


def session_tag(session_key: str | None) -> str | None:
    """Return a stand-in for a session key that is safe to send through the layer."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:24] if session_key else None


def register(pattern: str, authorize: Callable[..., Any] | None = None) -> Any:
    """Make channels matching pattern ("job.{id}") readable when authorize(user, **parts) is true.

    authorize may be sync or async. Parts match letters, digits, "-" and "_",
    so "job.{owner}.{id}" has two. When several patterns match a channel, the
    most specific decides, whatever the order they were registered in (see
    specificity()). Registering a pattern again replaces its check, so a
    reloaded module does not stack checks. Without authorize, return a
    decorator: `@register("job.{id}")`.
    """
    if authorize is None:

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            register(pattern, function)
            return function

        return decorator
    regex = "".join(
        f"(?P<{piece}>[A-Za-z0-9_\\-]+)" if index % 2 else re.escape(piece)
        for index, piece in enumerate(_PART.split(pattern))
    )
    _patterns[pattern] = (re.compile(regex), authorize, specificity(pattern))
    return None


def specificity(pattern: str) -> tuple[tuple[int, int], ...]:
    """Return how specific pattern is; of two patterns matching a channel, the greater decides.

    Parts hold no ".", so both split into the same dot-separated segments.
    Compared segment by segment from the left, the first difference decides:
    a literal segment ("answer") beats one mixing text and parts ("team{id}"),
    which beats a bare part ("{owner}"); between two mixed segments, more
    literal characters win. So an exact name beats any pattern, and a longer
    literal prefix beats a shorter one.
    """
    ranks = []
    for segment in pattern.split("."):
        literal = len(_PART.sub("", segment))
        kind = 0 if not literal else 1 if _PART.search(segment) else 2
        ranks.append((kind, literal))
    return tuple(ranks)


def unregister(pattern: str) -> None:
    """Forget a registered pattern (tests, or features switched off at runtime)."""
    _patterns.pop(pattern, None)


def default_channels(user: Any) -> list[str]:
    """Return the channels every stream of this user reads (runs a query: call from sync code)."""
    if not user.is_authenticated:
        return [BROADCAST]
    return [user_channel(user), *(group_channel(pk) for pk in _group_ids(user)), USERS, BROADCAST]


def _group_ids(user: Any) -> list[Any]:
    # user.groups.values_list("pk") in plain SQL on the join table: every
    # connect without a ticket asks it (docs/design.md#trap-16).
    from django.contrib.auth.models import Group
    from django.db.models import ManyToManyField

    from livefeed.models import per_user

    try:
        groups = user._meta.get_field("groups")
    except FieldDoesNotExist:  # a user model without PermissionsMixin: no group channels
        return []
    through = groups.remote_field.through
    if not (isinstance(groups, ManyToManyField) and groups.related_model is Group and through._meta.auto_created):
        return list(user.groups.values_list("pk", flat=True))  # another shape of "groups": Django's own query
    rows = through._default_manager.db_manager(router.db_for_read(through, instance=user)).all()
    column = connections[rows.db].ops.quote_name(groups.m2m_reverse_name())
    return [pk for _, (pk,) in per_user(rows, [user.pk], column, field=groups.m2m_field_name())]


def can_read(user: Any, channel: str, defaults: list[str]) -> bool:
    """Tell whether user may read channel; defaults are the user's built-in channels."""
    if channel in defaults:
        return True
    if channel == USERS or channel.startswith(("user.", "group.")):
        return False  # built-in: a stream has them by who it is, or not at all
    matches = [
        (rank, pattern, authorize, match)
        for pattern, (regex, authorize, rank) in _patterns.items()
        if (match := regex.fullmatch(channel))
    ]
    if matches:
        best = max(rank for rank, *_ in matches)
        deciders = [(pattern, authorize, match) for rank, pattern, authorize, match in matches if rank == best]
        if len(deciders) > 1:
            # Equally specific: neither may decide alone, and guessing could open a channel.
            names = [pattern for pattern, *_ in deciders]
            logger.warning("Channel %r matches equally specific patterns %s: denied", channel, names)
            return False
        _, authorize, match = deciders[0]
        return _call(authorize, user, **match.groupdict())
    hook = conf.get("AUTHORIZE")
    if hook:
        return _call(import_string(hook) if isinstance(hook, str) else hook, user, channel)
    return False


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    if inspect.iscoroutinefunction(function):
        return bool(async_to_sync(function)(*args, **kwargs))
    return bool(function(*args, **kwargs))
