"""Categories (docs/notifications.md): notify(category=...), the inbox filter, and in-app off."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

import livefeed
from livefeed.models import Delivery, Notification, Preference
from tests.test_notify import watch

pytestmark = pytest.mark.django_db(transaction=True)
CATEGORIES = {"billing": {"label": "Billing", "email": True}, "security": {"required": True}}


@pytest.fixture(autouse=True)
def _categories(settings):
    settings.LIVEFEED = {"CATEGORIES": CATEGORIES}


def inbox(user, **params):
    client = Client()
    client.force_login(user)
    return client.get("/livefeed/api/notifications/", params)


def mute(user, category):
    Preference.objects.create(user=user, category=category, in_app=False)


def test_a_notification_carries_its_category_general_by_default(alice):
    livefeed.notify(alice, title="Invoice paid", category="billing")
    livefeed.notify(alice, title="Hello")

    results = inbox(alice).json()["results"]
    assert [(item["title"], item["category"]) for item in results] == [
        ("Hello", "general"),
        ("Invoice paid", "billing"),
    ]


def test_an_unknown_category_is_refused_before_saving(alice):
    with pytest.raises(ValueError, match="Unknown category 'shipping'"):
        livefeed.notify(alice, title="Shipped", category="shipping")
    assert not Notification.objects.exists()


def test_the_inbox_filters_by_category(alice):
    livefeed.notify(alice, title="Invoice paid", category="billing")
    livefeed.notify(alice, title="Hello")

    assert [item["title"] for item in inbox(alice, category="billing").json()["results"]] == ["Invoice paid"]
    bad = inbox(alice, category="nope")
    assert bad.status_code == 400 and "Unknown category" in bad.json()["error"]


def test_in_app_off_means_no_row_and_no_event_for_that_user(alice, bob):
    mute(bob, "billing")

    to_alice, to_bob = watch([alice, bob], lambda: livefeed.notify([alice, bob], title="Invoice", category="billing"))

    assert to_bob == [] and [kind for kind, _ in to_alice] == ["notification"]
    assert list(Delivery.objects.values_list("user__username", flat=True)) == ["alice"]
    assert inbox(bob).json()["unread_count"] == 0


@pytest.mark.parametrize("audience", ["group", "everyone"])
def test_in_app_off_holds_inside_group_and_everyone_sends_with_right_counts(alice, bob, audience):
    team = Group.objects.create(name="team")
    team.user_set.add(alice, bob)
    mute(bob, "billing")
    livefeed.notify(alice, title="Earlier")
    to = {"group": team} if audience == "group" else {"everyone": True}

    to_alice, to_bob = watch([alice, bob], lambda: livefeed.notify(**to, title="Invoice", category="billing"))

    assert to_bob == []
    [(kind, data)] = to_alice
    assert (kind, data["title"], data["unread_count"]) == ("notification", "Invoice", 2)
    assert inbox(bob).json()["unread_count"] == 0 and inbox(alice).json()["unread_count"] == 2


def test_in_app_off_holds_for_grouped_sends(alice, bob):
    team = Group.objects.create(name="team")
    team.user_set.add(alice, bob)
    mute(bob, "billing")

    def send():
        for _ in range(2):
            livefeed.notify(group=team, title="{count} invoices", category="billing", group_key="invoices")

    to_alice, to_bob = watch([alice, bob], send)

    assert to_bob == [] and [data["count"] for _, data in to_alice] == [1, 2]
    assert Delivery.objects.filter(user=bob).count() == 0


def test_a_category_off_by_default_reaches_only_who_turned_it_on(alice, bob, settings):
    settings.LIVEFEED = {"CATEGORIES": {"digest": {"in_app": False}}}
    Preference.objects.create(user=alice, category="digest", in_app=True)

    livefeed.notify(everyone=True, title="Weekly digest", category="digest")

    assert list(Delivery.objects.values_list("user__username", flat=True)) == ["alice"]


def test_a_required_category_reaches_everyone_whatever_they_chose(alice, bob):
    mute(bob, "security")

    livefeed.notify([alice, bob], title="New sign-in", category="security")

    assert Delivery.objects.filter(user=bob).exists()


def test_a_group_send_without_muted_readers_stays_one_event(alice, bob):
    from livefeed.models import Event

    team = Group.objects.create(name="team")
    team.user_set.add(alice, bob)
    mute(User.objects.create_user("carol"), "security")  # required: does not count

    livefeed.notify(group=team, title="Deploy", category="security")

    assert list(Event.objects.values_list("channel", flat=True)) == [f"group.{team.pk}"]
