"""A sign-in revoked anywhere ends its open streams, and their reconnect is refused (issue 11, item 8).

The sweep interval is made tiny here; each test waits for the server to end
the stream by itself, with no timed assertion.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import logout
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

import livefeed
from livefeed import revocation
from tests.streams import Stream, publish_notifications, run, session_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_sweep"),
]


@pytest.fixture
def fast_sweep():
    with override_settings(LIVEFEED={"REAUTHORIZE_INTERVAL": 0.05}):
        yield


def _change_password(user, session_key):
    user.set_password("changed on another device")
    user.save()


def _deactivate(user, session_key):
    user.is_active = False
    user.save()


def _delete_session(user, session_key):
    Session.objects.filter(session_key=session_key).delete()


def _rotate_key(user, session_key):
    # What update_session_auth_hash() and login() do: the same sign-in under a
    # new key; the old key is deleted, so signing out later cannot name it.
    session = SessionStore(session_key)
    session.load()
    session.cycle_key()


@pytest.mark.parametrize("revoke", [_change_password, _deactivate, _delete_session, _rotate_key])
def test_a_revoked_sign_in_ends_its_stream_and_the_reconnect_is_refused(revoke):
    alice = User.objects.create_user("alice", password="x")
    bob = User.objects.create_user("bob", password="x")
    stolen, bystander = session_for(alice), session_for(bob)

    async def scenario():
        victim = await (await Stream(session_key=stolen).open()).connected()
        other = await (await Stream(session_key=bystander).open()).connected()
        await sync_to_async(revoke)(alice, stolen)
        await victim.finish()  # the server ends it by itself
        again = await Stream(session_key=stolen).open()
        # Meanwhile the sweep ran many times: a stream whose sign-in holds keeps streaming.
        await sync_to_async(livefeed.publish)(f"user.{bob.pk}", "notification", {"still": "here"})
        events = await other.events(1)
        await other.close()
        return again.status, events

    status, events = run(scenario)
    assert status == 401
    assert json.loads(events[0].data) == {"still": "here"}


def test_leaving_a_group_ends_the_stream_and_the_reconnect_loses_that_group():
    alice = User.objects.create_user("alice", password="x")
    staff = Group.objects.create(name="staff")
    alice.groups.add(staff)
    key = session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        await sync_to_async(alice.groups.remove)(staff)
        await stream.finish()
        asked = await Stream(f"/livefeed/stream/?channel=group.{staff.pk}", session_key=key).open()
        again = await (await Stream(session_key=key).open()).connected()
        await publish_notifications((f"group.{staff.pk}", {"for": "staff"}), (f"user.{alice.pk}", {"for": "alice"}))
        events = await again.events(1)
        await again.close()
        return asked.status, events

    status, events = run(scenario)
    assert status == 403
    assert [json.loads(e.data) for e in events] == [{"for": "alice"}]  # the group's event never came


def test_one_sweep_checks_any_number_of_streams_in_the_same_few_queries():
    staff = Group.objects.create(name="staff")

    def grants(count):
        found = set()
        for n in range(count):
            user = User.objects.create_user(f"user{count}-{n}", password="x")
            user.groups.add(staff)
            found.add(revocation.grant_for(user, session_for(user), [f"group.{staff.pk}"]))
        return found

    few, many = grants(2), grants(20)
    with CaptureQueriesContext(connection) as for_few:
        assert revocation.revoked(few) == set()
    with CaptureQueriesContext(connection) as for_many:
        assert revocation.revoked(many) == set()
    assert len(for_many) == len(for_few) <= 3


def test_a_stream_opened_without_a_session_is_judged_by_the_rest_of_its_grant():
    """However a stream was opened (a session, or some signed ticket), its user's state still counts."""
    alice = User.objects.create_user("alice", password="x")
    grant = revocation.grant_for(alice, None, [])
    assert grant is not None
    assert revocation.revoked({grant}) == set()
    alice.set_password("changed")
    alice.save()
    assert revocation.revoked({grant}) == {grant}


@pytest.mark.parametrize("change", [{"password": "pbkdf2_sha256$1$other$hash"}, {"is_active": False}])
def test_a_change_made_without_signals_is_found_by_the_next_sweep(change):
    # What the periodic sweep is for: an UPDATE, a script or another
    # application changed the user and no process heard of it.
    alice = User.objects.create_user("alice", password="x")
    grant = revocation.grant_for(alice, session_for(alice), [])
    assert grant is not None
    assert revocation.revoked({grant}) == set()  # this sweep remembers alice's password
    User.objects.filter(pk=alice.pk).update(**change)
    assert revocation.revoked({grant}) == {grant}


class OwnHashUser(User):
    """A user model whose session auth hash has rules of its own: the username counts too."""

    class Meta:
        proxy = True
        app_label = "tests"

    def get_session_auth_hash(self):
        return f"{self.username}:{super().get_session_auth_hash()}"


def test_a_user_model_with_its_own_session_hash_is_judged_by_it():
    # Django's own hash depends on the password column alone, which the sweep
    # reads instead of whole users; any other rules need the whole user.
    alice = OwnHashUser.objects.get(pk=User.objects.create_user("alice", password="x").pk)
    own = revocation.digest(alice.get_session_auth_hash())
    assert revocation._standing(OwnHashUser, {alice.pk}) == {alice.pk: (True, own)}
    assert revocation._standing(User, {alice.pk}) != {alice.pk: (True, own)}


def _remove_from_group(user, session_key):
    user.groups.remove(Group.objects.get(name="staff"))


def _group_drops_user(user, session_key):
    Group.objects.get(name="staff").user_set.remove(user)


def _rotate_then_sign_out(user, session_key):
    # The stream's key is gone, so the sign-out's close message cannot name it.
    session = SessionStore(session_key)
    session.load()
    session.cycle_key()
    request = RequestFactory().post("/logout/")
    request.session, request.user = session, user
    logout(request)


@override_settings(LIVEFEED={"REAUTHORIZE_INTERVAL": 3600})
@pytest.mark.parametrize(
    "revoke", [_change_password, _deactivate, _remove_from_group, _group_drops_user, _rotate_then_sign_out]
)
def test_changes_that_revoke_a_sign_in_end_its_streams_at_once_not_at_the_next_check(revoke):
    alice = User.objects.create_user("alice", password="x")
    alice.groups.add(Group.objects.create(name="staff"))
    key = session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        await sync_to_async(revoke)(alice, key)
        await stream.finish()  # an hour before the periodic check

    run(scenario)


def test_the_first_sweep_after_a_connect_does_not_hash_its_password_again(alice, monkeypatch):
    """A connect loads the user whole and hashes once; the sweep after it reuses that (one HMAC per change)."""
    revocation.grant_for(alice, None, [])
    hashed = []
    monkeypatch.setattr(revocation, "_auth_digest", lambda user: hashed.append(user.pk))

    standing = revocation._standing(User, {alice.pk})

    assert hashed == []
    assert standing == {alice.pk: (True, revocation.digest(alice.get_session_auth_hash()))}
