"""Snooze and expiry (docs/design.md#the-notification-workflow):
hidden now, back (or gone) later, live, exactly once."""

import datetime
import json
import threading

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections
from django.test import Client, override_settings
from django.utils import timezone

import livefeed
from livefeed.due import run_due
from livefeed.models import Delivery, Event
from tests.streams import Stream, run, session_for
from tests.test_notify import watch

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/livefeed/api/notifications/"


@pytest.fixture
def client(alice):
    client = Client()
    client.force_login(alice)
    return client


def snooze(client, pk, until, **kwargs):
    body = json.dumps({"until": until.isoformat() if isinstance(until, datetime.datetime) else until})
    return client.post(f"{URL}{pk}/snooze/", body, content_type="application/json", **kwargs)


def in_(**delta):
    return timezone.now() + datetime.timedelta(**delta)


def make_due(notification):
    """Move a snooze's time into the past, as the clock would."""
    Delivery.objects.filter(notification=notification).update(snoozed_until=in_(seconds=-1))


def test_snoozing_hides_it_from_the_list_and_counts_and_tells_open_tabs(client, alice):
    kept = livefeed.notify(alice, title="kept")
    snoozed = livefeed.notify(alice, title="later")

    [events] = watch([alice], lambda: snooze(client, snoozed.pk, in_(hours=1)))

    body = client.get(URL).json()
    assert [item["id"] for item in body["results"]] == [kept.pk]
    assert body["unread_count"] == 1
    assert events == [("removed", {"ids": [snoozed.pk], "unread_count": 1, "unseen_count": 1})]


def test_snooze_answers_the_new_counts(client, alice):
    note = livefeed.notify(alice, title="later")

    response = snooze(client, note.pk, in_(days=1))

    assert response.status_code == 200
    assert {key: response.json()[key] for key in ("ids", "unread_count", "unseen_count")} == {
        "ids": [note.pk],
        "unread_count": 0,
        "unseen_count": 0,
    }


@pytest.mark.parametrize(
    "until",
    # Functions: times taken when the test runs, not when it is collected.
    [lambda: in_(minutes=-1), lambda: in_(days=30, minutes=1), "tomorrow", "", None, 7],
    ids=["past", "over-30-days", "not-a-time", "empty", "null", "number"],
)
def test_a_bad_time_is_a_400_and_changes_nothing(client, alice, until):
    note = livefeed.notify(alice, title="x")

    response = snooze(client, note.pk, until() if callable(until) else until)

    assert response.status_code == 400 and "until" in response.json()["error"]
    assert Delivery.objects.get(notification=note).snoozed_until is None


@pytest.mark.parametrize("body", [b"{", b"[]", b"\xff"])
def test_a_body_that_is_not_a_json_object_is_a_400(client, alice, body):
    note = livefeed.notify(alice, title="x")

    response = client.post(f"{URL}{note.pk}/snooze/", body, content_type="application/json")

    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_another_users_notification_is_a_404(client):
    bob = User.objects.create_user("bob")
    theirs = livefeed.notify(bob, title="bob's")

    assert snooze(client, theirs.pk, in_(hours=1)).status_code == 404
    assert Delivery.objects.get(notification=theirs).snoozed_until is None


def test_snooze_needs_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    note = livefeed.notify(alice, title="x")

    assert snooze(client, note.pk, in_(hours=1)).status_code == 403


def test_a_due_snooze_comes_back_unread_at_the_top_live_once(client, alice):
    snoozed = livefeed.notify(alice, title="snoozed")
    client.post(f"{URL}{snoozed.pk}/read/")
    snooze(client, snoozed.pk, in_(hours=1))
    newer = livefeed.notify(alice, title="newer")
    make_due(snoozed)

    [events] = watch([alice], lambda: (run_due(), run_due()))

    assert [(kind, data["id"], data["unread_count"]) for kind, data in events] == [("notification", snoozed.pk, 2)]
    body = client.get(URL).json()
    assert [item["id"] for item in body["results"]] == [snoozed.pk, newer.pk]
    top = body["results"][0]
    assert top["read_at"] is None and top["updated_at"] > top["created_at"]
    assert top["updated_at"] == events[0][1]["updated_at"]


def test_a_fold_after_a_snooze_starts_a_row_the_reader_sees_now(client, alice):
    first = livefeed.notify(alice, title="{count} comments", group_key="post-7")
    snooze(client, first.pk, in_(hours=1))
    second = livefeed.notify(alice, title="{count} comments", group_key="post-7")

    assert [(item["id"], item["title"]) for item in client.get(URL).json()["results"]] == [(second.pk, "1 comments")]
    make_due(first)
    run_due()  # both come back: the constraint of one open row per key holds
    assert [item["id"] for item in client.get(URL).json()["results"]] == [first.pk, second.pk]


def test_an_expired_notification_leaves_lists_and_counts_at_once(client, alice):
    kept = livefeed.notify(alice, title="kept")
    livefeed.notify(alice, title="sale ends", expires_at=in_(hours=1))
    Delivery.objects.filter(expires_at__isnull=False).update(expires_at=in_(seconds=-1))

    body = client.get(URL).json()

    assert [item["id"] for item in body["results"]] == [kept.pk]
    assert body["unread_count"] == 1


def test_expiry_reaches_results_and_events(client, alice):
    moment = in_(hours=1)

    [events] = watch([alice], lambda: livefeed.notify(alice, title="sale", expires_at=moment))

    expected = json.loads(json.dumps(moment, cls=DjangoJSONEncoder))
    assert events[0][1]["expires_at"] == client.get(URL).json()["results"][0]["expires_at"] == expected


def test_expired_ones_are_removed_from_open_widgets_once(alice):
    staff_wide = livefeed.notify(everyone=True, title="sale", expires_at=in_(hours=1))
    mine = livefeed.notify(alice, title="coupon", expires_at=in_(hours=1))
    livefeed.notify(alice, title="kept")
    Delivery.objects.filter(expires_at__isnull=False).update(expires_at=in_(seconds=-1))

    [events] = watch([alice], lambda: (run_due(), run_due()))

    assert events == [("removed", {"ids": sorted([staff_wide.pk, mine.pk]), "unread_count": 1, "unseen_count": 1})]


def test_an_expired_snooze_never_comes_back(client, alice):
    note = livefeed.notify(alice, title="sale", expires_at=in_(hours=2))
    snooze(client, note.pk, in_(hours=1))
    Delivery.objects.filter(notification=note).update(snoozed_until=in_(seconds=-2), expires_at=in_(seconds=-1))

    [events] = watch([alice], run_due)

    assert [kind for kind, _ in events] == ["removed"]
    assert client.get(URL).json()["results"] == []


@pytest.mark.parametrize("expires_at", ["2026-01-01", datetime.datetime(2030, 1, 1)])
def test_expires_at_must_be_an_aware_datetime(alice, expires_at):
    with pytest.raises(ValueError, match="aware datetime"):
        livefeed.notify(alice, title="x", expires_at=expires_at)
    assert not Delivery.objects.exists()


def test_the_command_runs_the_job_for_cron(client, alice, capsys):
    note = livefeed.notify(alice, title="x")
    snooze(client, note.pk, in_(hours=1))
    make_due(note)

    call_command("livefeed_due")

    assert capsys.readouterr().out.strip() == "Brought back 1 snoozed, removed 0 expired."
    assert Event.objects.filter(event="notification", data__contains=f'"id":{note.pk},').count() == 2


@override_settings(LIVEFEED={"DUE_INTERVAL": 0.05})
def test_each_servers_hub_runs_the_job(client, alice):
    note = livefeed.notify(alice, title="back soon")
    snooze(client, note.pk, in_(hours=1))
    make_due(note)
    key = session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        [event] = await stream.events(1)
        await stream.close()
        return event

    event = run(scenario)
    assert (event.type, json.loads(event.data)["id"]) == ("notification", note.pk)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_overlapping_runs_bring_each_one_back_once(client, alice):
    notes = [livefeed.notify(alice, title=f"n{n}") for n in range(20)]
    for note in notes:
        snooze(client, note.pk, in_(hours=1))
    Delivery.objects.update(snoozed_until=in_(seconds=-1))
    start = threading.Barrier(4)
    woken = []

    def job():
        try:
            start.wait()
            woken.append(run_due()[0])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sum(woken) == 20
    assert Event.objects.filter(event="notification", channel=f"user.{alice.pk}").count() == 40  # sent, back


def test_the_counts_are_of_the_rows_the_inbox_lists(alice, bob, monkeypatch):
    """Delivery.objects.counts() (SQL of its own) counts exactly listed()'s rows, for each user asked."""
    from livefeed import models
    from livefeed.models import Notification

    now = timezone.now()
    hour = datetime.timedelta(hours=1)
    states = [
        {},
        {"read_at": now, "seen_at": now},
        {"seen_at": now},
        {"archived_at": now},
        {"snoozed_until": now + hour},
        {"expires_at": now - hour},
        {"expires_at": now + hour},
        {"read_at": now, "seen_at": now, "archived_at": now},
    ]
    for state in states:
        Delivery.objects.create(notification=Notification.objects.create(title="x"), user=alice, **state)
    Delivery.objects.create(notification=Notification.objects.create(title="y"), user=bob)
    carol = User.objects.create_user("carol")
    monkeypatch.setattr(models, "_PER_USER_BATCH", 2)  # three users: two statements

    counts = Delivery.objects.counts([alice.pk, bob.pk, carol.pk])

    assert counts == {
        alice.pk: {"unread_count": 3, "unseen_count": 2},
        bob.pk: {"unread_count": 1, "unseen_count": 1},
        carol.pk: {"unread_count": 0, "unseen_count": 0},
    }
    for user in (alice, bob, carol):
        listed = Delivery.objects.filter(user=user).listed()
        expected = {
            "unread_count": listed.filter(read_at=None).count(),
            "unseen_count": listed.filter(seen_at=None).count(),
        }
        assert counts[user.pk] == expected


def test_the_plain_sql_splits_what_the_database_takes_in_one_statement(alice, bob, monkeypatch):
    """insert() and per_user() stay within the backend's limit on parameters (SQLite's 999 on Django 5.2)."""
    from django.test.utils import CaptureQueriesContext

    from livefeed.models import Notification, insert

    carol = User.objects.create_user("carol")
    users = [alice, bob, carol]
    notification = Notification.objects.create(title="x")
    fields = ["notification", "user", "updated_at", "expires_at", "count", "fold_key"]
    rows = [(notification.pk, user.pk, timezone.now(), None, 1, "") for user in users]

    def limit(parameters):  # a property on some backends, a cached one on others
        monkeypatch.setattr(type(connection.features), "max_query_params", parameters)
        monkeypatch.delitem(connection.features.__dict__, "max_query_params", raising=False)

    limit(13)  # two rows of six per statement

    with CaptureQueriesContext(connection) as queries:
        pks = insert(Delivery, "default", fields, rows, returning=True)
    limit(3)  # two users (and `now`) per statement
    with CaptureQueriesContext(connection) as counted:
        counts = Delivery.objects.counts([user.pk for user in users])

    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT", "INSERT"]
    assert [Delivery.objects.get(pk=pk).user for pk in pks] == users  # every row, in order
    assert len(counted.captured_queries) == 2
    assert counts == {user.pk: {"unread_count": 1, "unseen_count": 1} for user in users}
