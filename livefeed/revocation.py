"""Re-authorization of open streams: a revoked sign-in stops streaming within REAUTHORIZE_INTERVAL.

A stream is authorized once, when it opens; a sign-out elsewhere, a password
change, a deactivated user, a deleted or expired session or a group the user
left would otherwise keep an open stream receiving until TCP dies. Each
stream of a signed-in user records the grant it was opened with (user, session
key, session auth hash, group channels); every REAUTHORIZE_INTERVAL seconds
each process checks the grants of all its streams at once, in a few queries
whatever their number, and ends the streams whose grant no longer holds. The
browser reconnects and is authenticated again: 401, or a stream without the
group it left. How a stream was opened does not matter here: only its grant.
A password, activity or group change and every sign-out wake the sweep at
once (livefeed.signals sends a "livefeed.reauthorize" message to each process).
"""

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import BooleanField, F, Func, QuerySet, Value
from django.utils import timezone

from livefeed import conf, eventlog

if TYPE_CHECKING:
    from livefeed.hub import Hub, Reader

logger = logging.getLogger("livefeed")

# Seconds between looks at the setting while re-authorization is off.
_IDLE = 60
# What computes a session auth hash in Django: a user model that replaces either has rules of its own.
_DJANGOS_HASH = ("get_session_auth_hash", "_get_session_auth_hash")
# Ids per IN (...) list: well under SQLite's parameter limit (PostgreSQL takes one array).
_BATCH = 2000


@dataclass(frozen=True, slots=True)
class Grant:
    """What a stream was authorized with; it is revoked once any part stops holding."""

    user_pk: Any
    session_key: str | None  # None: opened without a session; the other checks still apply
    auth_hash: str | None  # digest() of the user's get_session_auth_hash() at connect
    groups: frozenset[str]  # pks of the groups whose channels the stream reads


# reader -> its grant; weak, so a finished stream's entry goes with its reader
_grants: "weakref.WeakKeyDictionary[Reader, Grant]" = weakref.WeakKeyDictionary()
# ("user", pk) or ("session", tag) -> when this process learnt its sign-ins were
# revoked: stream tickets issued before then are not honoured (livefeed.tickets)
_revoked_at: dict[tuple[str, Any], float] = {}
# user pk -> (password column, digest of its session auth hash) as the last sweep or a connect found them
_known: dict[Any, tuple[str, str | None]] = {}
# hub -> the event that runs its next sweep at once
_wakers: "weakref.WeakKeyDictionary[Hub, asyncio.Event]" = weakref.WeakKeyDictionary()


def grant_for(user: Any, session_key: str | None, channels: Iterable[str]) -> Grant | None:
    """Return the grant of a stream opened by user with channels (None for anonymous streams)."""
    if not user.is_authenticated:
        return None
    groups = frozenset(name.removeprefix("group.") for name in channels if name.startswith("group."))
    auth = _auth_digest(user)
    if _columns(user.__class__) is not None:
        # The user is loaded whole here: the next sweep need not hash this password again.
        _known[user.pk] = (user.password, auth)
    return Grant(user.pk, session_key, auth, groups)


def digest(auth_hash: str) -> str:
    """Return a stand-in for a session auth hash, safe to hand to the browser in a ticket."""
    return hashlib.sha256(auth_hash.encode()).hexdigest()[:24]


def _auth_digest(user: Any) -> str | None:
    return digest(user.get_session_auth_hash()) if hasattr(user, "get_session_auth_hash") else None


def forget_tickets(*, user_pk: Any = None, session: str | None = None) -> None:
    """Stop honouring the stream tickets issued until now to user_pk, or to session (a session_tag)."""
    now = time.time()
    lifetime = conf.get("TICKET_LIFETIME") or 0
    # Past its lifetime a ticket is refused anyway: the entry has done its job.
    for key in [key for key, when in _revoked_at.items() if when < now - lifetime]:
        _revoked_at.pop(key, None)
    if user_pk is not None:
        _revoked_at[("user", str(user_pk))] = now
    if session:
        _revoked_at[("session", session)] = now


def honours(user_pk: Any, session: str, issued: float) -> bool:
    """Tell whether a ticket issued then to user_pk and session predates no revocation heard here."""
    revoked = max(_revoked_at.get(("user", str(user_pk)), 0.0), _revoked_at.get(("session", session), 0.0))
    return issued > revoked


def track(reader: "Reader", grant: Grant | None) -> None:
    """Check reader's grant on every sweep from now on."""
    if grant is not None:
        _grants[reader] = grant


def wake(hub: "Hub") -> None:
    """Run hub's next sweep now: a user's password, activity or groups just changed."""
    _wakers.setdefault(hub, asyncio.Event()).set()


async def sweep_forever(hub: "Hub") -> None:
    """End, every REAUTHORIZE_INTERVAL seconds or when woken, the streams of hub whose grant was revoked."""
    woken = _wakers.setdefault(hub, asyncio.Event())
    while True:
        interval = conf.get("REAUTHORIZE_INTERVAL")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), interval or _IDLE)
        # Wakes during the sweep below are kept for the next one: the change
        # they announce may have committed after its queries.
        if not (interval or woken.is_set()):
            continue  # switched off (livefeed.W006 warns): look again later
        woken.clear()
        try:
            await sweep(hub)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Could not re-authorize open streams; trying again next interval")


async def sweep(hub: "Hub") -> None:
    """Check the grants of all of hub's streams at once; end the revoked ones."""
    tracked = [(reader, grant) for reader in list(hub.streams) if (grant := _grants.get(reader)) is not None]
    if not tracked:
        return
    revoked = await _revoked_in_thread({grant for _, grant in tracked})
    ended = [(reader, grant) for reader, grant in tracked if grant in revoked]
    for reader, grant in ended:
        _grants.pop(reader, None)
        forget_tickets(user_pk=grant.user_pk)  # so its reconnect's ticket is not honoured here
        reader.end()  # the client reconnects and is authenticated again
    if ended:
        logger.info("Ended %d stream(s) whose sign-in was revoked", len(ended))


def revoked(grants: set[Grant]) -> set[Grant]:
    """Return the grants that no longer hold: a few queries for any number of grants."""
    live = _live_sessions({grant.session_key for grant in grants if grant.session_key})
    standing = _standing(get_user_model(), {grant.user_pk for grant in grants})
    memberships = _memberships({grant.user_pk for grant in grants if grant.groups})
    gone = set()
    for grant in grants:
        active, auth_hash = standing.get(grant.user_pk, (False, None))  # a deleted user: revoked
        if (
            not active
            or (grant.session_key is not None and live is not None and grant.session_key not in live)
            or (grant.auth_hash is not None and grant.auth_hash != auth_hash)
            or not grant.groups <= memberships.get(grant.user_pk, frozenset())
        ):
            gone.add(grant)
    return gone


# Off the request threads, closing its DB connection after (docs/design.md#trap-10).
_revoked_in_thread = eventlog.in_thread(revoked, thread_sensitive=False)


class _Any(Func):
    """`column = ANY(array)`: the values as one array parameter (PostgreSQL).

    An IN list binds one parameter per value, and psycopg parses such a long
    statement afresh every time (it caches only short ones): with thousands of
    streams that was a large part of each sweep
    (docs/performance.md#the-sweeps-lists-as-one-array-postgresql).
    """

    arg_joiner = " = ANY("
    template = "%(expressions)s)"
    conditional = True
    output_field = BooleanField()


def _among(rows: QuerySet, field: str, values: set[Any]) -> Iterable[QuerySet]:
    """Yield querysets that together hold the rows whose field is one of values."""
    if not values:
        return
    connection = connections[rows.db]
    if connection.vendor == "postgresql":
        meta = rows.model._meta
        column = meta.pk if field == "pk" else meta.get_field(field)
        array = [column.get_db_prep_value(value, connection) for value in values]
        yield rows.filter(_Any(F(field), Value(array)))
        return
    ordered = list(values)
    for start in range(0, len(ordered), _BATCH):
        yield rows.filter(**{f"{field}__in": ordered[start : start + _BATCH]})


def _live_sessions(keys: set[str]) -> set[str] | None:
    """Return which of keys are unexpired sessions; None when the engine cannot tell."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if hasattr(store, "get_model_class"):  # the db and cached_db engines: one table
        model, now = store.get_model_class(), timezone.now()
        live: set[str] = set()
        for rows in _among(model.objects.filter(expire_date__gt=now), "session_key", keys):
            live.update(rows.values_list("session_key", flat=True))
        return live
    if settings.SESSION_ENGINE.endswith("signed_cookies"):
        return None  # the session lives in the browser: nothing on the server to delete
    return {key for key in keys if store().exists(key)}  # cache and custom engines


def _standing(model: Any, pks: set[Any]) -> dict[Any, tuple[bool, str | None]]:
    """Return whether each user of pks is active, and the digest of their session auth hash; deleted ones are absent.

    Under Django's own rules the hash is an HMAC of the password column alone:
    a sweep reads that column, not whole users, and computes the HMAC again
    only for a password that changed since the last sweep (docs/performance.md).
    """
    global _known
    columns = _columns(model)
    users = model._default_manager.all()
    standing: dict[Any, tuple[bool, str | None]] = {}
    if columns is None:  # a user model with rules of its own: ask each user
        for rows in _among(users, "pk", pks):
            standing.update((user.pk, (getattr(user, "is_active", True), _auth_digest(user))) for user in rows)
        return standing
    known: dict[Any, tuple[str, str | None]] = {}
    for rows in _among(users, "pk", pks):
        for pk, password, *active in rows.values_list(*columns):
            hashed = _known.get(pk)
            if hashed is None or hashed[0] != password:
                hashed = (password, _auth_digest(model(pk=pk, password=password)))
            known[pk] = hashed
            standing[pk] = (active[0] if active else True, hashed[1])
    _known = known  # only the users of this sweep's streams
    return standing


@functools.cache  # a model's rules do not change; every connect asks (grant_for)
def _columns(model: Any) -> tuple[str, ...] | None:
    """Return the columns that decide a user's standing when the model keeps Django's rules; None: it has its own."""
    from django.contrib.auth.base_user import AbstractBaseUser  # a model: not importable before the apps load

    if any(getattr(model, name, None) is not vars(AbstractBaseUser).get(name) for name in _DJANGOS_HASH):
        return None
    try:
        model._meta.get_field("is_active")
    except FieldDoesNotExist:
        return ("pk", "password") if model.is_active is True else None  # AbstractBaseUser's constant
    return ("pk", "password", "is_active")


def _memberships(pks: set[Any]) -> dict[Any, frozenset[str]]:
    """Return the group pks (as text, like channel names) of each user in pks."""
    if not pks:
        return {}
    try:
        field: Any = get_user_model()._meta.get_field("groups")
    except FieldDoesNotExist:
        return {}
    memberships = field.remote_field.through._default_manager.all()
    user_id, group_id = f"{field.m2m_field_name()}_id", f"{field.m2m_reverse_field_name()}_id"
    found: dict[Any, set[str]] = {}
    for rows in _among(memberships, user_id, pks):
        for user, group in rows.values_list(user_id, group_id):
            found.setdefault(user, set()).add(str(group))
    return {user: frozenset(groups) for user, groups in found.items()}
