"""livefeed.notify(): who gets a notification, what the live event carries, and when it leaves."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.signals import m2m_changed
from django.test.utils import CaptureQueriesContext

import livefeed
from livefeed.models import Delivery, Event, Notification
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def watch(users, action):
    """Open a stream per user, run the sync action, and return the events each stream got.

    A broadcast marker published after the action closes each list: events arrive
    in order, so whatever a stream has not received before it, it never will.
    """

    keys = [session_for(user) for user in users]

    async def scenario():
        streams = [await Stream(session_key=key).open() for key in keys]
        for stream in streams:
            await stream.connected()  # subscribed: every later event reaches it
        await sync_to_async(action)()
        await sync_to_async(livefeed.publish)("broadcast", "marker", {})
        received = []
        for stream in streams:
            while not stream.parser.events or stream.parser.events[-1].type != "marker":
                await stream.chunk()
            received.append([(e.type, json.loads(e.data)) for e in stream.parser.events[:-1]])
            await stream.close()
        return received

    return run(scenario)


def test_notify_a_user_reaches_their_stream_only(alice, bob):
    def send():
        livefeed.notify(alice, title="Build finished", body="All green", level="success", url="/builds/9")

    to_alice, to_bob = watch([alice, bob], send)

    notification = Notification.objects.get()
    assert to_bob == []
    assert to_alice == [
        (
            "notification",
            {
                "id": notification.pk,
                "title": "Build finished",
                "body": "All green",
                "level": "success",
                "url": "/builds/9",
                "created_at": notification.event_data()["created_at"],
                "unread_count": 1,
                "unseen_count": 1,
                "data": {},
                "count": 1,
                "group_key": None,
                "actions": [],
                "expires_at": None,
                "updated_at": notification.event_data()["created_at"],
                "actor": None,
                "category": "general",
            },
        )
    ]
    assert to_alice[0][1]["created_at"].endswith("Z")


def test_counts_in_the_event_are_the_users_own(alice):
    livefeed.notify(alice, title="old, read")
    Delivery.objects.filter(user=alice).mark_read()
    livefeed.notify(alice, title="old, unread")

    [events] = watch([alice], lambda: livefeed.notify(alice, title="new", data={"build": 9}))

    assert [(e[1]["title"], e[1]["unread_count"], e[1]["unseen_count"]) for e in events] == [("new", 2, 2)]
    assert events[0][1]["data"] == {"build": 9}


def test_several_users_each_get_their_own_event(alice, bob):
    to_alice, to_bob = watch([alice, bob], lambda: livefeed.notify([alice, bob], title="Hello both"))

    assert [e[1]["title"] for e in to_alice] == [e[1]["title"] for e in to_bob] == ["Hello both"]
    assert Notification.objects.get().recipients.count() == 2


def test_notifying_many_users_takes_as_many_statements_as_notifying_two():
    """One delivery insert and one log insert for all recipients, not a lock, insert and commit per user."""
    users = [User.objects.create_user(f"user{n}", password="x") for n in range(12)]

    def statements(recipients):
        with CaptureQueriesContext(connection) as queries:
            livefeed.notify(recipients, title="Deploy finished")
        return [query["sql"] for query in queries.captured_queries]

    assert len(statements(users)) == len(statements(users[:2]))
    events = Event.objects.filter(event="notification").order_by("id")
    assert [event.channel for event in events] == [f"user.{user.pk}" for user in users + users[:2]]


def test_notify_tells_m2m_changed_receivers_what_recipients_add_would(alice, bob):
    """notify() adds its rows without asking which exist (none can), yet announces them as add() does."""
    heard = []

    extras = []

    def receiver(sender, action, instance, reverse, model, pk_set, using, **kwargs):
        rows = Delivery.objects.filter(notification=instance).count()
        heard.append((action, sender, instance.pk, reverse, model, pk_set, using, rows))
        extras.append(sorted(kwargs))

    m2m_changed.connect(receiver, sender=Delivery)
    try:
        with CaptureQueriesContext(connection) as queries:
            notification = livefeed.notify([alice, bob, alice], title="Hello both")
    finally:
        m2m_changed.disconnect(receiver, sender=Delivery)

    pks = {alice.pk, bob.pk}
    assert heard == [
        ("pre_add", Delivery, notification.pk, False, User, pks, "default", 0),
        ("post_add", Delivery, notification.pk, False, User, pks, "default", 2),
    ]
    existing = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "livefeed_delivery"."user_id"')
    ]
    assert existing == []  # Django's add() asks this; a notification saved a moment ago has no rows

    m2m_changed.connect(receiver, sender=Delivery)
    try:
        Notification.objects.create(title="by hand").recipients.add(alice)  # Django's own add()
    finally:
        m2m_changed.disconnect(receiver, sender=Delivery)
    assert extras[0] == extras[1] == extras[2] == extras[3]  # the other arguments are add()'s


def test_group_notification_is_one_event_for_the_members_only(alice, bob):
    staff = Group.objects.create(name="staff")
    carol = User.objects.create_user("carol")
    staff.user_set.add(alice, carol)

    to_alice, to_bob = watch([alice, bob], lambda: livefeed.notify(group=staff, title="Staff meeting"))

    assert [(kind, data["title"], data["unread_count"]) for kind, data in to_alice] == [
        ("notification", "Staff meeting", None)
    ]
    assert to_bob == []
    notification = Notification.objects.get()
    assert sorted(notification.recipients.values_list("username", flat=True)) == ["alice", "carol"]
    assert list(Event.objects.filter(event="notification").values_list("channel", flat=True)) == [f"group.{staff.pk}"]


def test_everyone_is_one_event_to_signed_in_users_and_a_delivery_per_active_user(alice, bob):
    User.objects.create_user("gone", is_active=False)

    to_alice, to_bob = watch([alice, bob], lambda: livefeed.notify(everyone=True, title="Maintenance"))

    assert [data["title"] for _, data in to_alice] == [data["title"] for _, data in to_bob] == ["Maintenance"]
    assert list(Event.objects.filter(event="notification").values_list("channel", flat=True)) == ["users"]
    assert sorted(Delivery.objects.values_list("user__username", flat=True)) == ["alice", "bob"]


def test_rolled_back_notify_sends_nothing_and_leaves_no_rows(alice):
    def send_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            livefeed.notify(alice, title="rolled back")
            livefeed.notify(everyone=True, title="rolled back too")
            raise RuntimeError

    [events] = watch([alice], send_then_fail)

    assert events == []
    assert not Notification.objects.exists() and not Delivery.objects.exists()
    assert not Event.objects.filter(event="notification").exists()


def test_inside_a_transaction_the_event_waits_for_commit(alice):
    with transaction.atomic():
        livefeed.notify(alice, title="later")
        assert not Event.objects.exists()
    assert Event.objects.filter(channel=f"user.{alice.pk}", event="notification").count() == 1


def test_saving_a_notification_anywhere_delivers_it(alice, bob):
    def from_the_shell():
        Notification.objects.create(title="to all", audience=Notification.Audience.EVERYONE)
        note = Notification.objects.create(title="to alice")
        note.recipients.add(alice)

    to_alice, to_bob = watch([alice, bob], from_the_shell)

    assert [data["title"] for _, data in to_alice] == ["to all", "to alice"]
    assert [data["title"] for _, data in to_bob] == ["to all"]
    assert Event.objects.filter(event="notification").count() == 2


def test_a_notification_too_large_to_send_live_is_still_saved(alice, caplog):
    note = Notification.objects.create(title="huge", body="x" * 70_000)  # over MAX_PAYLOAD
    note.recipients.add(alice)

    assert Delivery.objects.get().user == alice
    assert not Event.objects.exists()
    assert "too large to send live" in caplog.text


def test_adding_a_recipient_from_the_user_side_delivers_too(alice, bob):
    note = livefeed.notify(bob, title="first bob's, now alice's too")

    [events] = watch([alice], lambda: alice.livefeed_notifications.add(note))

    assert [(data["id"], data["unread_count"]) for _, data in events] == [(note.pk, 1)]


def test_anotify_is_the_async_twin(alice):
    key = session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        notification = await livefeed.anotify(alice, title="from async code")
        [event] = await stream.events(1)
        await stream.close()
        return notification, event

    notification, event = run(scenario)
    assert json.loads(event.data)["id"] == notification.pk
    assert json.loads(event.data)["unread_count"] == 1


def test_notify_from_async_code_names_the_async_twin(alice):
    async def scenario():
        with pytest.raises(RuntimeError, match=r"await livefeed\.anotify"):
            livefeed.notify(alice, title="x")

    run(scenario)
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "audience",
    [{}, {"everyone": False}, {"group": "g", "everyone": True}, {"recipient": "u", "group": "g"}],
)
def test_exactly_one_audience_is_required(audience):
    with pytest.raises(TypeError, match="exactly one audience"):
        livefeed.notify(title="x", **audience)


def test_bad_input_is_refused_before_anything_is_saved(alice):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(ValueError, match="no users"):
        livefeed.notify([], title="x")
    with pytest.raises(ValueError, match="saved users"):
        livefeed.notify(AnonymousUser(), title="x")
    with pytest.raises(ValidationError, match="level"):
        livefeed.notify(alice, title="x", level="shouting")
    with pytest.raises(ValidationError, match="url"):
        livefeed.notify(alice, title="x", url="javascript:alert(1)")
    with pytest.raises(ValueError, match="MAX_PAYLOAD"):
        livefeed.notify(alice, title="x", data={"blob": "x" * 70_000})
    staff = Group.objects.create(pk=alice.pk, name="staff")  # the same pk as alice's
    with pytest.raises(TypeError, match="User instance expected"):
        livefeed.notify(staff, title="x")  # a group passed as the recipient, not group=
    with pytest.raises(TypeError, match="User instance expected"):
        livefeed.notify([alice, staff], title="x")
    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()


def test_import_livefeed_loads_no_models():
    import subprocess
    import sys

    code = "import livefeed, sys; print('livefeed.models' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
