"""Stream tickets: a returning browser's stream opens without a database query.

A stream that the session let in hands its browser a ticket, an HttpOnly
cookie scoped to the stream's path, signed with the site's secret (salted):
the user's pk, a hash of the session key, a hash of the user's session auth
hash, the channels the stream was allowed, the user's language (livefeed.language)
and when it was issued. EventSource
sends it back on every reconnect, so a deploy's or a network blip's reconnect
storm is let in by checking a signature, not by the session, user and groups
queries (the way Mercure and Centrifugo admit connections with signed tokens).

A ticket never lets in more than its session would, for longer than the bound
of docs/reliability.md#stream-tickets:
- it opens only the stream of the session it was issued to (the session
  cookie must hash to the ticket's), and only channels it lists;
- it is honoured for at most TICKET_LIFETIME seconds;
- a process that heard of a sign-out, a password, activity, group or language change, or
  whose sweep found one (livefeed.revocation), no longer honours the tickets
  issued before it: those reconnects take the session path and are judged anew;
- a stream it opened is re-authorized like any other (livefeed.revocation).
A ticket that is absent, forged, tampered with, expired or not this session's
is ignored: the session decides, as for a plain `curl -H "Cookie: sessionid=…"`.
"""

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.http import http_date

from livefeed import conf, revocation
from livefeed.channels import session_tag

logger = logging.getLogger("livefeed")

COOKIE = "livefeed_ticket"
SALT = "livefeed.stream-ticket"


@dataclass(frozen=True, slots=True)
class Ticket:
    user_pk: Any
    session: str  # session_tag() of the session key it was issued to
    auth_digest: str  # revocation.digest() of the user's session auth hash
    defaults: tuple[str, ...]  # the user's built-in channels (own, groups, users, broadcast)
    extra: tuple[str, ...]  # custom channels it was allowed
    issued: float  # time.time() when issued
    language: str  # the user's language when issued ("" for none): translated events are rendered in it

    def grant(self, session_key: str) -> revocation.Grant:
        """Return the grant its stream is re-authorized with, as if the session had let it in."""
        groups = frozenset(name.removeprefix("group.") for name in self.defaults if name.startswith("group."))
        return revocation.Grant(self.user_pk, session_key, self.auth_digest, groups)


def issue(
    response: HttpResponseBase,
    request: HttpRequest,
    user: Any,
    channels: list[str],
    defaults: list[str],
    language: str | None = None,
) -> None:
    """Give the browser of a stream the session let in a ticket for its next connects."""
    lifetime = conf.positive("TICKET_LIFETIME")  # None: tickets are off
    tag = session_tag(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    if not lifetime or not tag or not user.is_authenticated:
        return
    grant = revocation.grant_for(user, None, channels)
    extra = [name for name in channels if name not in defaults]
    # The pk as text: JSON has no UUID; read() turns it back into the user model's pk type.
    payload = [
        str(user.pk),
        tag,
        grant.auth_hash if grant else "",
        defaults,
        extra,
        round(time.time(), 3),
        language or "",
    ]
    value = signing.dumps(payload, salt=SALT, compress=True)
    # A header, not response.cookies: the response lives as long as the stream, and a
    # Morsel per open stream would cost more memory than the ticket saves anything.
    jar: SimpleCookie = SimpleCookie()
    jar[COOKIE] = value
    morsel = jar[COOKIE]
    seconds = math.ceil(lifetime)
    morsel["max-age"], morsel["expires"] = seconds, http_date(time.time() + seconds)
    morsel["path"], morsel["httponly"] = request.path, True
    if settings.SESSION_COOKIE_DOMAIN:
        morsel["domain"] = settings.SESSION_COOKIE_DOMAIN
    if settings.SESSION_COOKIE_SECURE or request.is_secure():
        morsel["secure"] = True
    if settings.SESSION_COOKIE_SAMESITE:
        morsel["samesite"] = settings.SESSION_COOKIE_SAMESITE
    response.headers["Set-Cookie"] = morsel.OutputString()


def read(request: HttpRequest) -> Ticket | None:
    """Return the request's ticket if it is good for this session now, else None (the session decides)."""
    value = request.COOKIES.get(COOKIE)
    lifetime = conf.positive("TICKET_LIFETIME")  # None: tickets are off
    if not value or not lifetime:
        return None
    try:
        payload = signing.loads(value, salt=SALT, max_age=timedelta(seconds=lifetime))
        user_pk, tag, auth_digest, defaults, extra, issued, language = payload
        # The same pk as the session path's, so per-user stream caps count both alike.
        user_pk = get_user_model()._meta.pk.to_python(user_pk)
        ticket = Ticket(
            user_pk, str(tag), str(auth_digest), tuple(defaults), tuple(extra), float(issued), str(language)
        )
    except (signing.BadSignature, ValidationError, ValueError, TypeError):
        # Forged, tampered, expired or from an older format: worth no more than its absence.
        logger.debug("Ignoring a stream ticket that does not verify")
        return None
    if ticket.session != session_tag(request.COOKIES.get(settings.SESSION_COOKIE_NAME)):
        return None  # another session's, or a signed-out browser's
    if not revocation.honours(ticket.user_pk, ticket.session, ticket.issued):
        return None
    return ticket


def channels(ticket: Ticket, requested: list[str]) -> list[str] | None:
    """Return the stream's channels when the ticket allows all of requested, else None."""
    found = list(ticket.defaults)
    for name in requested:
        if name in found:
            continue
        if name not in ticket.extra:
            return None
        found.append(name)
    return found


def drop(response: HttpResponseBase) -> None:
    """Have this browser drop its ticket from any page's response (its language just changed).

    The ticket carries the language its stream renders translated events in; without
    it the next connect takes the session path and reads the new one.
    """
    response.delete_cookie(COOKIE, path=reverse("livefeed:stream"), domain=settings.SESSION_COOKIE_DOMAIN)


def forget(response: HttpResponseBase, request: HttpRequest) -> None:
    """Drop a ticket the session no longer backs, so the browser stops sending it."""
    if COOKIE in request.COOKIES:
        response.delete_cookie(COOKIE, path=request.path, domain=settings.SESSION_COOKIE_DOMAIN)
