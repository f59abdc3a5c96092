"""Actions (docs/design.md#the-notification-workflow):
up to three buttons, checked when sent, carried as given with `method` filled in."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

import livefeed
from livefeed.models import Notification
from tests.test_notify import watch

pytestmark = pytest.mark.django_db(transaction=True)
APPROVE = {"label": "Approve", "url": "/orders/7/approve/", "method": "post"}
OPEN = {"label": "Open", "url": "https://shop.example/orders/7"}


def test_actions_reach_the_event_and_the_inbox_with_their_method(alice):
    [events] = watch([alice], lambda: livefeed.notify(alice, title="Order 7", actions=[APPROVE, OPEN]))

    client = Client()
    client.force_login(alice)
    expected = [APPROVE, OPEN | {"method": "get"}]
    assert events[0][1]["actions"] == expected
    assert client.get("/livefeed/api/notifications/").json()["results"][0]["actions"] == expected


@pytest.mark.parametrize(
    "actions",
    [
        [OPEN] * 4,
        "Approve",
        [{"label": "Approve"}],
        [{"url": "/x"}],
        [{"label": "", "url": "/x"}],
        [{"label": "   ", "url": "/x"}],
        [{"label": "x" * 41, "url": "/x"}],
        [{"label": "Go", "url": "javascript:alert(1)"}],
        [{"label": "Go", "url": "/x", "method": "delete"}],
        [{"label": "Go", "url": "https://elsewhere.example/x", "method": "post"}],
        [{"label": "Go", "url": "//elsewhere.example/x", "method": "post"}],
        [{"label": "Go", "url": "/\\elsewhere.example/x", "method": "post"}],
        [{"label": "Go", "url": "/x", "target": "_blank"}],
        ["Approve"],
    ],
)
def test_bad_actions_are_a_value_error_before_saving(alice, actions):
    with pytest.raises(ValueError):
        livefeed.notify(alice, title="x", actions=actions)
    assert not Notification.objects.exists()


def test_a_label_of_forty_characters_and_a_get_to_another_site_are_fine(alice):
    note = livefeed.notify(alice, title="x", actions=[{"label": "x" * 40, "url": "https://elsewhere.example/"}])

    assert note.actions == [{"label": "x" * 40, "url": "https://elsewhere.example/", "method": "get"}]


def test_the_actor_is_named_in_events(alice):
    boss = User.objects.create_user("boss", first_name="Ada", last_name="Boss")

    [events] = watch([alice], lambda: livefeed.notify(alice, title="x", actor=boss))

    assert events[0][1]["actor"] == {"id": boss.pk, "name": "Ada Boss", "avatar": ""}
