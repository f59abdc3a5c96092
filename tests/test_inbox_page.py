"""Mark unread, and the full-page inbox at /livefeed/inbox/ without JavaScript (the Django test client)."""

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client

from livefeed.models import Delivery, Event
from tests.test_inbox import URL, read_events, send

PAGE = "/livefeed/inbox/"


@pytest.fixture
def client(alice):
    client = Client()
    client.force_login(alice)
    return client


def unread_ids(user) -> list[int]:
    return sorted(Delivery.objects.filter(user=user, read_at=None).values_list("notification_id", flat=True))


def rows(response) -> list[int]:
    return [item["id"] for item in response.context["items"]]


@pytest.mark.django_db(transaction=True)
def test_mark_unread_answers_new_counts_and_tells_the_other_tabs(client, alice):
    first, second = send(alice, 2)
    client.post(f"{URL}{first}/read/")

    response = client.post(f"{URL}{first}/unread/")

    assert response.status_code == 200
    assert response.json() == {"ids": [], "unread_ids": [first], "unread_count": 2, "unseen_count": 1}
    assert read_events(alice)[-1] == {"ids": [], "unread_ids": [first], "unread_count": 2, "unseen_count": 1}
    assert unread_ids(alice) == [first, second]
    # Already unread: nothing changes and no one is told.
    assert client.post(f"{URL}{second}/unread/").json() == {"ids": [], "unread_count": 2, "unseen_count": 1}
    assert len(read_events(alice)) == 2


@pytest.mark.django_db
def test_mark_unread_refuses_like_the_rest_of_the_api(alice, bob):
    [theirs] = send(bob, 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.post(f"{URL}{theirs}/unread/").status_code == 403  # no CSRF token
    client.get(URL)
    token = {"X-CSRFToken": client.cookies["csrftoken"].value}
    assert client.post(f"{URL}{theirs}/unread/", headers=token).status_code == 404
    assert client.get(f"{URL}{theirs}/unread/").status_code == 405
    assert Client().post(f"{URL}{theirs}/unread/").status_code == 401


@pytest.mark.django_db
def test_anonymous_is_sent_to_the_login_page_and_back():
    response = Client().get(PAGE, {"before": "7"})

    assert response.status_code == 302
    assert response["Location"] == f"{resolve_url(settings.LOGIN_URL)}?next=/livefeed/inbox/%3Fbefore%3D7"


@pytest.mark.django_db
def test_the_first_page_is_rendered_on_the_server_in_the_api_order(client, alice, bob):
    ids = send(alice, 21, body="the body", actor=bob)
    client.post(f"{URL}{ids[-1]}/read/")

    response = client.get(PAGE)

    assert response.status_code == 200
    assert rows(response) == ids[:0:-1] == [item["id"] for item in client.get(URL).json()["results"]]
    html = response.content.decode()
    assert html.count('class="livefeed-inbox-item') == 20 + 1  # and the live rows' <template>
    assert html.count('class="livefeed-inbox-item livefeed-unread"') == 19
    assert "n20" in html and "the body" in html and "bob" in html
    assert f'href="?before={ids[1]}"' in html
    assert '<span class="livefeed-inbox-count">20</span>' in html
    assert "livefeed/livefeed-inbox.js" in html and "livefeed/livefeed-stream.js" in html

    older = client.get(PAGE, {"before": ids[1]})
    assert rows(older) == [ids[0]]
    assert "?before=" not in older.content.decode()


@pytest.mark.django_db
def test_user_content_is_shown_as_text(client, alice):
    send(alice, 1, body="<img src=x onerror=alert(1)>", url="/builds/9?a=1&b=2")

    html = client.get(PAGE).content.decode()

    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="/builds/9?a=1&amp;b=2"' in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["read", "unread", "archive"])
def test_each_button_works_without_javascript(client, alice, action):
    [pk, other] = send(alice, 2)
    if action == "unread":
        client.post(f"{URL}{pk}/read/")

    response = client.post(f"{PAGE}?before={other}", {"id": pk, "action": action})

    assert (response.status_code, response["Location"]) == (303, f"{PAGE}?before={other}")
    assert unread_ids(alice) == {"read": [other], "unread": [pk, other], "archive": [pk, other]}[action]
    assert rows(client.get(PAGE)) == ([other] if action == "archive" else [other, pk])
    # The other tabs are told, as by the API: an archived row is removed, the others read or unread.
    event = "removed" if action == "archive" else "read"
    assert Event.objects.filter(channel=f"user.{alice.pk}", event=event).exists()


@pytest.mark.django_db
def test_a_page_post_refuses_another_users_row_bad_input_and_a_missing_csrf_token(client, alice, bob):
    [theirs] = send(bob, 1)
    [mine] = send(alice, 1)

    assert client.post(PAGE, {"id": theirs, "action": "read"}).status_code == 404
    assert client.post(PAGE, {"id": mine, "action": "delete"}).status_code == 400
    assert client.post(PAGE, {"id": "x", "action": "read"}).status_code == 400
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(PAGE, {"id": mine, "action": "read"}).status_code == 403
    assert unread_ids(alice) == [mine] and unread_ids(bob) == [theirs]
    assert client.get(PAGE, {"before": "abc"}).status_code == 400


@pytest.mark.django_db
def test_the_widgets_dropdown_links_to_the_page(rf, alice):
    from django.template import Context, Template

    request = rf.get("/")
    request.user = alice
    html = Template('{% include "livefeed/widget.html" %}').render(Context({"request": request}))

    assert f'<a class="livefeed-viewall" href="{PAGE}">View all</a>' in html
