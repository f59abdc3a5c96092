"""The JSON inbox API: listing, paging, marking read/seen, archiving, and its refusals."""

import json

import pytest
from django.test import Client

import livefeed
from livefeed.models import Event

URL = "/livefeed/api/notifications/"


@pytest.fixture
def client(alice):
    client = Client()
    client.force_login(alice)
    return client


def send(user, count, **kwargs):
    return [livefeed.notify(user, title=f"n{index}", **kwargs).pk for index in range(count)]


def read_events(user):
    rows = Event.objects.filter(channel=f"user.{user.pk}", event="read").order_by("id")
    return [json.loads(row.data) for row in rows]


@pytest.mark.django_db
def test_list_is_newest_first_with_counts_and_event_fields(client, alice):
    ids = send(alice, 3, body="b", level="warning", url="/x", data={"k": 1})

    body = client.get(URL).json()

    assert [item["id"] for item in body["results"]] == ids[::-1]
    assert (body["unread_count"], body["unseen_count"], body["has_more"]) == (3, 3, False)
    first = body["results"][0]
    assert {key: first[key] for key in ("title", "body", "level", "url", "data", "read_at")} == {
        "title": "n2",
        "body": "b",
        "level": "warning",
        "url": "/x",
        "data": {"k": 1},
        "read_at": None,
    }
    assert first["created_at"].endswith("Z")


@pytest.mark.django_db
def test_keyset_pages_cover_everything_once(client, alice):
    ids = send(alice, 5)

    first = client.get(URL, {"limit": 2}).json()
    second = client.get(URL, {"limit": 2, "before": first["results"][-1]["id"]}).json()
    third = client.get(URL, {"limit": 2, "before": second["results"][-1]["id"]}).json()

    pages = [[item["id"] for item in page["results"]] for page in (first, second, third)]
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert [page["has_more"] for page in (first, second, third)] == [True, True, False]


@pytest.mark.django_db
def test_unread_filter_and_other_users_notifications_are_not_listed(client, alice, bob):
    read, unread = send(alice, 2)
    send(bob, 1)
    client.post(f"{URL}{read}/read/")

    assert [item["id"] for item in client.get(URL, {"unread": "1"}).json()["results"]] == [unread]
    listed = client.get(URL).json()["results"]
    assert [item["id"] for item in listed] == [unread, read]
    assert listed[1]["read_at"] is not None


@pytest.mark.django_db
def test_a_group_notification_has_each_members_own_read_state(client, alice, bob):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="team")
    team.user_set.add(alice, bob)
    pk = livefeed.notify(group=team, title="standup").pk

    client.post(f"{URL}{pk}/read/")

    bobs = Client()
    bobs.force_login(bob)
    assert client.get(URL).json()["unread_count"] == 0
    assert bobs.get(URL).json()["unread_count"] == 1
    assert [item["title"] for item in bobs.get(URL, {"unread": "1"}).json()["results"]] == ["standup"]


@pytest.mark.django_db(transaction=True)
def test_mark_one_read_answers_and_publishes_new_counts(client, alice):
    first, second = send(alice, 2)

    response = client.post(f"{URL}{first}/read/")

    assert response.status_code == 200
    assert response.json() == {"ids": [first], "unread_count": 1, "unseen_count": 1}
    assert read_events(alice) == [{"ids": [first], "unread_count": 1, "unseen_count": 1}]
    # Reading it again changes nothing and tells no one.
    assert client.post(f"{URL}{first}/read/").json()["ids"] == []
    assert len(read_events(alice)) == 1


@pytest.mark.django_db(transaction=True)
def test_read_all_seen_all_and_archive(client, alice):
    ids = send(alice, 3)

    assert client.post(f"{URL}seen-all/").json() == {"ids": [], "unread_count": 3, "unseen_count": 0}
    assert client.post(f"{URL}{ids[0]}/archive/").json() == {
        "ids": [ids[0]],
        "unread_count": 2,
        "unseen_count": 0,
    }
    assert client.post(f"{URL}read-all/").json() == {"ids": ids[:0:-1], "unread_count": 0, "unseen_count": 0}

    assert [item["id"] for item in client.get(URL).json()["results"]] == ids[:0:-1]
    assert [event["ids"] for event in read_events(alice)] == [[], ids[:0:-1]]
    # Archived is gone from every open inbox, as snoozed is: a `removed` event, not a `read` one.
    removed = Event.objects.filter(channel=f"user.{alice.pk}", event="removed").values_list("data", flat=True)
    assert [json.loads(data) for data in removed] == [{"ids": [ids[0]], "unread_count": 2, "unseen_count": 0}]


@pytest.mark.django_db
def test_another_users_notification_is_404(client, alice, bob):
    [theirs] = send(bob, 1)

    for action in ("read", "archive"):
        response = client.post(f"{URL}{theirs}/{action}/")
        assert response.status_code == 404
        assert "error" in response.json()
    assert client.post(f"{URL}{2**64}/read/").status_code == 404
    assert bob.livefeed_notifications.filter(deliveries__read_at__isnull=True).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [{"limit": "x"}, {"limit": "0"}, {"limit": "101"}, {"limit": "-1"}, {"before": "abc"}, {"unread": "maybe"}],
)
def test_bad_input_is_400_json(client, query):
    response = client.get(URL, query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert next(iter(query)) in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"), [("get", "read-all/"), ("get", "1/read/"), ("post", ""), ("delete", "seen-all/")]
)
def test_wrong_method_is_405(client, alice, method, path):
    send(alice, 1)

    response = getattr(client, method)(URL + path)

    assert response.status_code == 405
    assert "error" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), [("get", ""), ("post", "read-all/"), ("post", "1/read/")])
def test_anonymous_gets_401_json_never_a_login_redirect(method, path):
    response = getattr(Client(), method)(URL + path)

    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.django_db
def test_posts_need_the_csrf_token(alice):
    [pk] = send(alice, 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    refused = client.post(f"{URL}{pk}/read/")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    assert client.get(URL).json()["unread_count"] == 1

    token = client.cookies["csrftoken"].value
    accepted = client.post(f"{URL}{pk}/read/", headers={"X-CSRFToken": token})
    assert accepted.status_code == 200
    assert accepted.json()["unread_count"] == 0


@pytest.mark.django_db(transaction=True)
def test_reading_in_one_tab_updates_the_users_other_open_streams(client, alice):
    from tests.test_notify import watch

    [pk] = send(alice, 1)

    [events] = watch([alice], lambda: client.post(f"{URL}{pk}/read/"))

    assert events == [("read", {"ids": [pk], "unread_count": 0, "unseen_count": 0})]


def picture_of(user) -> str:
    """The AVATAR hook of the test below: a site's URL of the user's picture."""
    if user.username == "broken":
        raise RuntimeError("the avatar service is down")
    return f"/avatars/{user.username}.png"


@pytest.mark.django_db
@pytest.mark.parametrize("hook", [None, "tests.test_inbox.picture_of", picture_of])
def test_the_actor_carries_the_avatar_the_sites_hook_gives(client, alice, bob, hook, settings, caplog):
    settings.LIVEFEED = {"AVATAR": hook}
    broken = type(bob).objects.create_user("broken")
    livefeed.notify(alice, title="By bob", actor=bob)
    livefeed.notify(alice, title="By broken", actor=broken)
    actors = {item["title"]: item["actor"] for item in client.get(URL).json()["results"]}
    assert actors["By bob"] == {"id": bob.pk, "name": "bob", "avatar": "/avatars/bob.png" if hook else ""}
    # A hook that fails costs the picture (logged), never the notification.
    assert actors["By broken"]["avatar"] == ""
    assert ("avatar service is down" in caplog.text) == bool(hook)
