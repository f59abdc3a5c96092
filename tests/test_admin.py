"""Sending from the admin: who may send to whom, preview, live delivery, list columns and actions."""

import json

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

import livefeed
from livefeed.models import Delivery, Event, Notification

pytestmark = pytest.mark.django_db(transaction=True)
ADD_URL = "/admin/livefeed/notification/add/"
LIST_URL = "/admin/livefeed/notification/"


def staff_client(*codenames):
    user = User.objects.create_user("staff", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="livefeed", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sender():
    return staff_client("add_notification", "view_notification")


def compose(**fields):
    return {"audience": "user", "title": "Hello", "body": "", "level": "info", "url": "", "data": "{}", **fields}


def notification_events():
    return [(row.channel, json.loads(row.data)) for row in Event.objects.filter(event="notification")]


def test_staff_with_add_permission_sends_to_users_live(sender, alice):
    response = sender.post(ADD_URL, compose(users=[alice.pk], title="Deploy done", level="success"))

    assert response.status_code == 302
    notification = Notification.objects.get()
    assert notification.actor is not None
    assert (notification.title, notification.actor.username) == ("Deploy done", "staff")
    assert list(notification.recipients.all()) == [alice]
    [(channel, data)] = notification_events()
    assert channel == f"user.{alice.pk}"
    assert (data["id"], data["title"], data["unread_count"]) == (notification.pk, "Deploy done", 1)


def test_sending_to_a_group(sender, alice):
    team = Group.objects.create(name="team")
    team.user_set.add(alice)

    sender.post(ADD_URL, compose(audience="group", group=team.pk))

    assert [channel for channel, _ in notification_events()] == [f"group.{team.pk}"]
    assert list(Notification.objects.get().recipients.all()) == [alice]


def test_everyone_needs_its_own_permission(sender, alice):
    form = sender.get(ADD_URL).content.decode()
    assert 'value="everyone"' not in form

    refused = sender.post(ADD_URL, compose(audience="everyone"))

    assert refused.status_code == 200  # the form again, with its error
    assert "everyone" in str(refused.context["adminform"].form.errors["audience"])
    assert not Notification.objects.exists() and not notification_events()


def test_staff_with_the_everyone_permission_broadcasts(alice):
    client = staff_client("add_notification", "view_notification", "send_to_everyone")

    assert client.post(ADD_URL, compose(audience="everyone", title="Maintenance")).status_code == 302

    assert [channel for channel, _ in notification_events()] == ["users"]
    assert Delivery.objects.filter(user=alice).exists()


def test_staff_without_add_permission_cannot_send(alice):
    client = staff_client("view_notification")

    assert client.get(ADD_URL).status_code == 403
    assert client.post(ADD_URL, compose(users=[alice.pk])).status_code == 403
    assert not Notification.objects.exists()


def test_choosing_an_audience_member_is_required(sender):
    response = sender.post(ADD_URL, compose())
    group_response = sender.post(ADD_URL, compose(audience="group"))

    assert "users" in response.context["adminform"].form.errors
    assert "group" in group_response.context["adminform"].form.errors
    assert not Notification.objects.exists()


def test_preview_shows_the_message_escaped_and_sends_nothing(sender, alice):
    response = sender.post(ADD_URL, compose(users=[alice.pk], title="<b>Bold?</b>", url="/builds/9", preview="on"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "&lt;b&gt;Bold?&lt;/b&gt;" in page and "<b>Bold?</b>" not in page
    assert "Goes to 1 person." in page
    assert not Notification.objects.exists() and not notification_events()


def test_change_list_shows_audience_recipients_and_reads(sender, alice, bob):
    notification = livefeed.notify([alice, bob], title="Two readers")
    Delivery.objects.filter(user=alice).mark_read()

    response = sender.get(LIST_URL)

    row = next(r for r in response.context["cl"].result_list if r.pk == notification.pk)
    assert (row.recipients_total, row.read_total) == (2, 1)
    page = response.content.decode()
    assert "Two readers" in page and 'class="field-recipient_count">2<' in page
    assert 'class="field-read_count">1<' in page


def test_resend_makes_it_unread_and_delivers_it_again(sender, alice):
    notification = livefeed.notify(alice, title="Again")
    Delivery.objects.filter(user=alice).mark_read()

    sender.post(LIST_URL, {"action": "resend", "_selected_action": [notification.pk]})

    assert [data["unread_count"] for _, data in notification_events()] == [1, 1]
    assert Delivery.objects.get(user=alice).read_at is None


def test_mark_read_for_all_tells_every_reader(sender, alice):
    group = Group.objects.create(name="g")
    notification = livefeed.notify(group=group, title="x")
    group.user_set.add(alice)
    Delivery.objects.create(notification=notification, user=alice)  # joined after sending; now a reader

    sender.post(LIST_URL, {"action": "mark_read_for_all", "_selected_action": [notification.pk]})

    assert not Delivery.objects.filter(read_at=None).exists()
    [read] = Event.objects.filter(event="read")
    assert (read.channel, json.loads(read.data)) == (
        f"group.{notification.group_id}",
        {"ids": [notification.pk], "unread_count": None, "unseen_count": None},
    )


def test_a_sent_notification_cannot_be_edited(sender, alice):
    notification = livefeed.notify(alice, title="Fixed")
    url = f"{LIST_URL}{notification.pk}/change/"

    sender.post(url, {**compose(users=[alice.pk]), "title": "Changed"})

    assert Notification.objects.get().title == "Fixed"
    assert sender.get(url).status_code == 200  # still viewable


def test_compose_sends_a_group_key_actions_and_an_expiry(sender, alice):
    earlier = livefeed.notify(alice, title="first", group_key="deploys")
    actions = [{"label": "Open", "url": "/deploys/"}]

    sender.post(
        ADD_URL,
        compose(
            users=[alice.pk],
            title="{count} deploys",
            group_key="deploys",
            actions=json.dumps(actions),
            expires_at_0="2099-01-01",
            expires_at_1="08:00:00",
        ),
    )

    [row] = Delivery.objects.filter(user=alice)
    assert row.latest is not None
    assert (row.notification_id, row.count, row.latest.actions) == (earlier.pk, 2, [actions[0] | {"method": "get"}])
    assert row.expires_at is not None and row.latest.expires_at == row.expires_at
    assert notification_events()[-1][1]["title"] == "2 deploys"


@pytest.mark.parametrize("preview", ["", "on"])
def test_compose_refuses_bad_actions_with_the_reason(sender, alice, preview):
    bad = [{"label": "Go", "url": "https://x.example/", "method": "post"}, {"url": "/x"}]

    response = sender.post(ADD_URL, compose(users=[alice.pk], actions=json.dumps(bad), preview=preview))

    assert response.status_code == 200 and "must be a path on this site" in response.content.decode()
    assert not Notification.objects.exists()


def test_preview_shows_actions_count_key_and_expiry(sender, alice):
    actions = [{"label": "<i>Approve</i>", "url": "/orders/7/approve/", "method": "post"}]
    response = sender.post(
        ADD_URL,
        compose(
            users=[alice.pk],
            title="{count} orders",
            group_key="orders",
            actions=json.dumps(actions),
            expires_at_0="2099-01-01",
            expires_at_1="08:00:00",
            preview="on",
        ),
    )

    page = response.content.decode()
    assert "<strong>1 orders</strong>" in page
    assert "&lt;i&gt;Approve&lt;/i&gt;</button>" in page
    assert "unread notification with the key “orders”" in page and "Leaves every inbox at" in page
    assert not Notification.objects.exists()


def test_change_list_shows_folded_counts(sender, alice):
    first = livefeed.notify(alice, title="first", group_key="k")
    livefeed.notify(alice, title="second", group_key="k")
    livefeed.notify(alice, title="third", group_key="k")

    response = sender.get(LIST_URL)

    row = next(r for r in response.context["cl"].result_list if r.pk == first.pk)
    assert row.folded_total == 2
    assert 'class="field-folded_count">2<' in response.content.decode()


def test_compose_sends_in_a_category_and_refuses_an_unknown_one(sender, alice, settings):
    settings.LIVEFEED = {"CATEGORIES": {"billing": {"label": "Billing"}}}
    assert b'<option value="billing">Billing</option>' in sender.get(ADD_URL).content

    sender.post(ADD_URL, compose(users=[alice.pk], category="billing"))
    refused = sender.post(ADD_URL, compose(users=[alice.pk], category="shipping"))

    assert list(Notification.objects.values_list("category", flat=True)) == ["billing"]
    assert refused.status_code == 200 and b"Select a valid choice" in refused.content
    assert notification_events()[0][1]["category"] == "billing"
