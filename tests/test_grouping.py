"""Grouping (docs/design.md#the-notification-workflow):
notify(group_key=...) folds into each recipient's unread notification of that key."""

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import Client

import livefeed
from livefeed.models import Delivery, Event
from tests.streams import run
from tests.test_notify import watch

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/livefeed/api/notifications/"


def inbox(user, **params):
    client = Client()
    client.force_login(user)
    return client.get(URL, params).json()


def comment(recipient=None, n=1, **audience):
    return livefeed.notify(
        recipient,
        **audience,
        title="{count} new comments on Q3 plan",
        body=f"comment {n}",
        url=f"/posts/7#c{n}",
        group_key="post-7:comments",
    )


def test_a_fold_keeps_the_id_counts_up_and_shows_the_newest(alice):
    first = comment(alice, 1)
    livefeed.notify(alice, title="something else")

    [events] = watch([alice], lambda: comment(alice, 2))

    body = inbox(alice)
    top = body["results"][0]
    assert [item["id"] for item in body["results"]][0] == first.pk  # moved to the top
    assert len(body["results"]) == 2 and body["unread_count"] == 2  # no new row, badge unchanged
    assert (top["count"], top["title"], top["body"], top["url"]) == (
        2,
        "2 new comments on Q3 plan",
        "comment 2",
        "/posts/7#c2",
    )
    assert top["group_key"] == "post-7:comments" and top["updated_at"] > top["created_at"]
    [(kind, data)] = events
    assert (kind, data["id"], data["count"], data["title"], data["unread_count"]) == (
        "notification",
        first.pk,
        2,
        "2 new comments on Q3 plan",
        2,
    )
    assert {key: data[key] for key in top if key != "read_at"} == {
        key: top[key] for key in top if key not in ("read_at", "unread_count", "unseen_count")
    } | {"unread_count": 2, "unseen_count": 2}


def test_count_shows_one_before_any_fold(alice):
    comment(alice)

    assert inbox(alice)["results"][0]["title"] == "1 new comments on Q3 plan"


def test_a_read_or_archived_one_takes_no_fold(alice):
    first = comment(alice, 1)
    Delivery.objects.filter(user=alice).mark_read()
    second = comment(alice, 2)
    Delivery.objects.filter(notification=second).archive()
    third = comment(alice, 3)

    results = inbox(alice)["results"]
    assert [(item["id"], item["count"]) for item in results] == [(third.pk, 1), (first.pk, 1)]


def test_other_keys_and_other_users_do_not_fold(alice, bob):
    comment(alice, 1)
    livefeed.notify(alice, title="x", group_key="post-8:comments")
    comment(bob, 2)

    assert [item["count"] for item in inbox(alice)["results"]] == [1, 1]
    assert [item["count"] for item in inbox(bob)["results"]] == [1]


def test_a_group_send_folds_for_some_readers_and_adds_a_row_for_others(alice, bob):
    staff = Group.objects.create(name="staff")
    staff.user_set.add(alice, bob)
    earlier = comment(alice, 1)  # alice's is unread; bob's is read
    comment(bob, 1)
    Delivery.objects.filter(user=bob).mark_read()

    to_alice, to_bob = watch([alice, bob], lambda: comment(group=staff, n=2))

    sent = Event.objects.filter(event="notification").latest("id")
    group_send = Delivery.objects.get(user=bob, count=1, read_at=None).notification_id
    assert [(d["id"], d["count"], d["unread_count"], d["body"]) for _, d in to_alice] == [
        (earlier.pk, 2, 1, "comment 2")
    ]
    assert [(d["id"], d["count"], d["unread_count"], d["body"]) for _, d in to_bob] == [(group_send, 1, 1, "comment 2")]
    assert sent.channel.startswith("user.")  # per reader, never one group event with the wrong id
    assert [(i["id"], i["count"]) for i in inbox(alice)["results"]] == [(earlier.pk, 2)]
    assert [i["count"] for i in inbox(bob)["results"]] == [1, 1]


def test_an_everyone_send_folds_per_reader_too(alice, bob):
    earlier = comment(alice, 1)

    to_alice, to_bob = watch([alice, bob], lambda: comment(everyone=True, n=2))

    assert [(d["id"], d["count"]) for _, d in to_alice] == [(earlier.pk, 2)]
    assert [d["count"] for _, d in to_bob] == [1] and to_bob[0][1]["id"] != earlier.pk


def test_resending_an_old_one_as_unread_never_makes_two_open_rows(alice):
    old = comment(alice, 1)
    Delivery.objects.filter(user=alice).mark_read()
    comment(alice, 2)  # the open one now

    Delivery.objects.filter(notification=old).mark_unread()  # the admin's resend
    comment(alice, 3)

    assert sorted(item["count"] for item in inbox(alice)["results"]) == [1, 2]


@pytest.mark.parametrize("group_key", ["", "x" * 101, 7])
def test_a_bad_group_key_is_refused_before_saving(alice, group_key):
    with pytest.raises(ValueError, match="group_key"):
        livefeed.notify(alice, title="x", group_key=group_key)
    assert not Delivery.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_sends_of_one_key_make_one_unread_row(alice):
    threads_count = 8
    start = threading.Barrier(threads_count)
    errors = []

    def send():
        try:
            start.wait()
            comment(alice)
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    [row] = Delivery.objects.filter(user=alice, read_at=None)
    assert row.count == threads_count


def test_pages_follow_the_order_of_last_update(alice):
    folded = comment(alice, 1)
    middle = livefeed.notify(alice, title="middle")
    newest = livefeed.notify(alice, title="newest")
    comment(alice, 2)  # moves the oldest id to the top

    first = inbox(alice, limit=1)
    second = inbox(alice, limit=1, before=first["results"][0]["id"])
    third = inbox(alice, limit=2, before=second["results"][0]["id"])

    pages = [[item["id"] for item in page["results"]] for page in (first, second, third)]
    assert pages == [[folded.pk], [newest.pk], [middle.pk]]
    assert [page["has_more"] for page in (first, second, third)] == [True, True, False]


def test_before_an_id_outside_the_inbox_is_a_400(alice, bob):
    theirs = livefeed.notify(bob, title="bob's")
    client = Client()
    client.force_login(alice)

    response = client.get(URL, {"before": theirs.pk})

    assert response.status_code == 400 and "before" in response.json()["error"]


def test_read_all_reads_a_folded_one_at_the_top_and_everything_below(alice):
    comment(alice, 1)
    livefeed.notify(alice, title="newer id")
    comment(alice, 2)  # the oldest id is now the top of the inbox
    client = Client()
    client.force_login(alice)

    answer = client.post(f"{URL}read-all/").json()

    assert answer["unread_count"] == 0 and len(answer["ids"]) == 2
    assert inbox(alice, unread=1)["results"] == []


def test_resending_a_grouped_group_send_reaches_each_reader_under_their_own_row(alice, bob):
    from livefeed.notifications import announce

    staff = Group.objects.create(name="staff")
    staff.user_set.add(alice, bob)
    earlier = comment(alice, 1)
    sent = comment(group=staff, n=2)  # folds into alice's; a new row for bob
    Delivery.objects.mark_read()

    def resend():
        Delivery.objects.filter(notification=sent).mark_unread()
        announce(sent)

    to_alice, to_bob = watch([alice, bob], resend)

    assert [(d["id"], d["count"]) for _, d in to_alice] == [(earlier.pk, 2)]
    assert [(d["id"], d["count"], d["unread_count"]) for _, d in to_bob] == [(sent.pk, 1, 1)]
    assert not Event.objects.filter(channel=f"group.{staff.pk}").exists()


def test_anotify_folds_too(alice):
    first = comment(alice, 1)

    async def scenario():
        return await livefeed.anotify(alice, title="{count} new", group_key="post-7:comments")

    run(scenario)
    [row] = Delivery.objects.filter(user=alice)
    assert (row.notification_id, row.count) == (first.pk, 2)
