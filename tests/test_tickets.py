"""Stream tickets: a returning browser's stream opens without the database (issue 14).

A stream opened by the session hands its browser a ticket cookie; the browser's
reconnect shows it and is let in without a session, user or groups query. What
a ticket must never do is let in more than the session would.
"""

import asyncio
import json
from http.cookies import SimpleCookie

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.core import signing
from django.db.backends.utils import CursorWrapper
from django.test import RequestFactory, override_settings

import livefeed
from livefeed import tickets
from tests.streams import Stream, publish_notifications, run, session_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # No background query may fall into a counted window: the hub's periodic jobs wait an hour.
    pytest.mark.usefixtures("quiet_hub"),
]


@pytest.fixture
def quiet_hub():
    with override_settings(LIVEFEED={"RECOVERY_INTERVAL": 3600, "REAUTHORIZE_INTERVAL": 3600, "DUE_INTERVAL": None}):
        yield


@pytest.fixture
def queries(monkeypatch):
    """Every SQL statement run from now on, in any thread."""
    ran: list[str] = []
    original = CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]

    def counting(self, sql, *args, **kwargs):
        ran.append(sql)
        return original(self, sql, *args, **kwargs)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", counting)
    return ran


def ticket_of(stream: Stream) -> str:
    """Return the ticket the stream handed out ("" when none)."""
    cookie = SimpleCookie(stream.headers.get("set-cookie", ""))
    return cookie[tickets.COOKIE].value if tickets.COOKIE in cookie else ""


def with_ticket(ticket: str) -> list[tuple[str, str]]:
    return [("cookie", f"{tickets.COOKIE}={ticket}")]


def test_the_first_stream_hands_out_a_ticket_and_the_reconnect_with_it_runs_no_query(queries):
    alice = User.objects.create_user("alice", password="x")
    alice.groups.add(Group.objects.create(name="staff"))
    key = session_for(alice)

    async def scenario():
        first = await (await Stream(session_key=key).open()).connected()  # a plain curl: the session
        ticket = ticket_of(first)
        queries.clear()
        again = await (await Stream(session_key=key, headers=with_ticket(ticket)).open()).connected()
        by_ticket = list(queries)
        queries.clear()
        plain = await (await Stream(session_key=key).open()).connected()
        by_session = list(queries)
        await sync_to_async(livefeed.publish)(f"user.{alice.pk}", "notification", {"for": "alice"})
        events = await again.events(1)
        for stream in (first, again, plain):
            await stream.close()
        return first, ticket, by_ticket, by_session, events

    first, ticket, by_ticket, by_session, events = run(scenario)
    assert first.status == 200 and ticket
    assert "httponly" in first.headers["set-cookie"].lower()
    assert by_session, "the session path runs queries: the counter sees them"
    assert by_ticket == []
    assert json.loads(events[0].data) == {"for": "alice"}


def test_a_ticket_never_opens_another_sessions_stream():
    alice = User.objects.create_user("alice", password="x")
    bob = User.objects.create_user("bob", password="x")
    alices, bobs = session_for(alice), session_for(bob)

    async def scenario():
        first = await (await Stream(session_key=alices).open()).connected()
        ticket = ticket_of(first)
        await first.close()
        alone = await Stream(headers=with_ticket(ticket)).open()  # the ticket without its session
        other = await (await Stream(session_key=bobs, headers=with_ticket(ticket)).open()).connected()
        await publish_notifications((f"user.{alice.pk}", {"for": "alice"}), (f"user.{bob.pk}", {"for": "bob"}))
        events = await other.events(1)
        await other.close()
        return alone.status, events

    status, events = run(scenario)
    assert status == 401
    assert [json.loads(e.data) for e in events] == [{"for": "bob"}]  # bob's session decides, not alice's ticket


def _sign_out(user, key):
    session = SessionStore(key)
    session.load()
    request = RequestFactory().post("/logout/")
    request.session, request.user = session, user
    logout(request)


def _deactivate(user, key):
    user.is_active = False
    user.save()


@pytest.mark.parametrize("revoke", [_sign_out, _deactivate])
def test_a_revoked_sign_in_ends_its_streams_and_its_ticket_opens_no_more(revoke):
    alice = User.objects.create_user("alice", password="x")
    key = session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        ticket = ticket_of(stream)
        await sync_to_async(revoke)(alice, key)
        await stream.finish()  # the server ends it by itself
        again = await Stream(session_key=key, headers=with_ticket(ticket)).open()
        return again.status

    assert run(scenario) == 401


def staff_member() -> tuple[User, Group, str]:
    """Alice in the staff group, and the key of her session."""
    alice = User.objects.create_user("alice", password="x")
    staff = Group.objects.create(name="staff")
    alice.groups.add(staff)
    return alice, staff, session_for(alice)


def test_leaving_a_group_loses_its_channel_at_the_next_connect_even_with_a_ticket():
    alice, staff, key = staff_member()

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        ticket = ticket_of(stream)
        await sync_to_async(alice.groups.remove)(staff)
        await stream.finish()
        asked = Stream(f"/livefeed/stream/?channel=group.{staff.pk}", session_key=key, headers=with_ticket(ticket))
        return (await asked.open()).status

    assert run(scenario) == 403


def test_an_expired_ticket_falls_back_to_the_session():
    """The bound of docs/reliability.md: past TICKET_LIFETIME a ticket decides nothing."""
    alice, staff, key = staff_member()
    path = f"/livefeed/stream/?channel=group.{staff.pk}"

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        ticket = ticket_of(stream)
        await stream.close()
        # Left the group without a word to any stream (a raw delete sends no signal).
        await sync_to_async(alice.groups.through.objects.filter(user=alice).delete)()
        with override_settings(LIVEFEED={"TICKET_LIFETIME": 1, "REAUTHORIZE_INTERVAL": 3600}):
            await asyncio.sleep(2)  # signatures tell time in whole seconds
            expired = await Stream(path, session_key=key, headers=with_ticket(ticket)).open()
        return expired.status

    assert run(scenario) == 403


def _tampered(ticket: str) -> str:
    return ticket[:-3] + ("AAA" if not ticket.endswith("AAA") else "BBB")


def _forged(ticket: str) -> str:
    payload = signing.loads(ticket, salt=tickets.SALT)
    return signing.dumps(payload, key="not the site's secret", salt=tickets.SALT)


def _garbage(ticket: str) -> str:
    return "%%%not:a:ticket"


@pytest.mark.parametrize("spoil", [_tampered, _forged, _garbage])
def test_a_spoiled_ticket_is_ignored_never_a_500(spoil):
    alice = User.objects.create_user("alice", password="x")
    key = session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        spoiled = spoil(ticket_of(stream))
        await stream.close()
        alone = await Stream(headers=with_ticket(spoiled)).open()
        with_session = await (await Stream(session_key=key, headers=with_ticket(spoiled)).open()).connected()
        await with_session.close()
        return alone.status, with_session.status, ticket_of(with_session)

    alone, with_session, fresh = run(scenario)
    assert alone == 401
    assert with_session == 200 and fresh  # the session decided, and handed out a good ticket


def test_the_ticket_cookie_follows_the_session_cookies_settings():
    alice = User.objects.create_user("alice", password="x")
    key = session_for(alice)

    async def scenario():
        with override_settings(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="Strict"):
            stream = await (await Stream(session_key=key).open()).connected()
        await stream.close()
        return SimpleCookie(stream.headers["set-cookie"])[tickets.COOKIE]

    morsel = run(scenario)
    assert morsel["secure"] and morsel["samesite"] == "Strict" and morsel["path"] == "/livefeed/stream/"
    assert settings.SESSION_COOKIE_NAME != tickets.COOKIE


def test_streams_opened_by_ticket_and_by_session_share_the_users_cap():
    alice = User.objects.create_user("alice", password="x")
    key = session_for(alice)

    async def scenario():
        with override_settings(LIVEFEED={"MAX_STREAMS_PER_USER": 1, "REAUTHORIZE_INTERVAL": 3600}):
            first = await (await Stream(session_key=key).open()).connected()
            second = await Stream(session_key=key, headers=with_ticket(ticket_of(first))).open()
            await first.close()
        return second.status

    assert run(scenario) == 429
