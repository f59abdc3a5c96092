"""Sending from the admin: who may send to whom, preview, live delivery, list columns and actions."""

import json
import re

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


def figures(page):
    """Return the read-only figures of a notification's page: {"delivered": 4, …}."""
    found = re.findall(r'fieldBox field-(\w+)">.*?<div class="readonly">(\d+)</div>', page, re.DOTALL)
    return {name: int(value) for name, value in found}


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
    response = sender.post(
        ADD_URL, compose(users=[alice.pk], title="<b>Bold?</b>", url="/builds/9", _preview="Preview")
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "&lt;b&gt;Bold?&lt;/b&gt;" in page and "<b>Bold?</b>" not in page
    assert 'value="Send to 1 user"' in page
    assert "errornote" not in page and not response.context["adminform"].form.errors
    assert not Notification.objects.exists() and not notification_events()


def test_preview_names_the_group_and_counts_its_members(sender, alice, bob):
    ops = Group.objects.create(name="Ops")
    ops.user_set.add(alice, bob)

    page = sender.post(ADD_URL, compose(audience="group", group=ops.pk, _preview="Preview")).content.decode()

    assert 'value="Send to group Ops (2 members)"' in page
    assert not Notification.objects.exists()


def test_the_success_message_names_the_audience_and_the_count(sender, alice, bob):
    ops = Group.objects.create(name="Ops")
    ops.user_set.add(alice, bob)

    response = sender.post(ADD_URL, compose(audience="group", group=ops.pk, title="Deploy finished"), follow=True)

    assert [str(m) for m in response.context["messages"]] == ["Sent “Deploy finished” to the group Ops (2 members)."]


@pytest.mark.parametrize("audience", ["everyone", "group"])
def test_users_picked_for_another_audience_are_refused_not_ignored(alice, audience):
    client = staff_client("add_notification", "view_notification", "send_to_everyone")
    group = Group.objects.create(name="g")

    response = client.post(ADD_URL, compose(audience=audience, group=group.pk, users=[alice.pk]))

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["users"]
    assert error == "This is only for the audience “users”: clear it, or choose that audience."
    assert not Notification.objects.exists() and not notification_events()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ('{"build": 128', "This is not valid JSON (Expecting ',' delimiter at character 14)."),
        ("[1, 2]", "Enter an object {…}, for example:"),
    ],
)
def test_data_that_is_not_a_json_object_gets_a_clear_error(sender, alice, data, error):
    response = sender.post(ADD_URL, compose(users=[alice.pk], data=data))

    [message] = response.context["adminform"].form.errors["data"]
    assert message.startswith(error)
    assert not Notification.objects.exists()


def test_data_and_actions_may_be_left_empty(sender, alice):
    page = sender.get(ADD_URL).content.decode()
    assert "JSON object, sent to the page as `data` (optional). For example:" in page
    assert re.search(r'<textarea name="data"[^>]*>\s*</textarea>', page)  # empty, not "null" or "{}"

    sender.post(ADD_URL, compose(users=[alice.pk], data="", actions=""))

    assert (Notification.objects.get().data, Notification.objects.get().actions) == ({}, [])


def test_the_users_field_says_how_to_search_or_how_to_pick(sender):
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("root"))
    searching = superuser.get(ADD_URL).content.decode()
    assert "Type part of a username, first name, last name or email address to find people" in searching
    assert 'data-placeholder="Type to search users…"' in searching

    # A sender who may not view users gets no answers from the autocomplete: a filtered list instead.
    assert "Type in the filter box to narrow the list." in sender.get(ADD_URL).content.decode()


def test_a_sent_notifications_page_shows_delivered_seen_read_and_archived(sender, alice, bob):
    User.objects.create_user("carol")
    notification = livefeed.notify(group=None, everyone=True, title="Figures")
    Delivery.objects.filter(user=alice).mark_read()
    Delivery.objects.filter(user=bob).mark_seen()
    Delivery.objects.filter(user=bob).archive()

    page = sender.get(f"{LIST_URL}{notification.pk}/change/").content.decode()

    assert figures(page) == {"delivered": 4, "seen": 2, "read": 1, "archived": 1, "folded": 0}


def test_change_list_shows_audience_recipients_and_reads(sender, alice, bob):
    notification = livefeed.notify([alice, bob], title="Two readers")
    Delivery.objects.filter(user=alice).mark_read()

    response = sender.get(LIST_URL)

    row = next(r for r in response.context["cl"].result_list if r.pk == notification.pk)
    assert (row.recipients_total, row.read_total) == (2, 1)
    page = response.content.decode()
    assert "Two readers" in page and 'class="field-read_of_recipients">1 / 2<' in page


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


@pytest.mark.parametrize("preview", ["", "Preview"])
def test_compose_refuses_bad_actions_with_the_reason(sender, alice, preview):
    bad = [{"label": "Go", "url": "https://x.example/", "method": "post"}, {"url": "/x"}]

    response = sender.post(ADD_URL, compose(users=[alice.pk], actions=json.dumps(bad), _preview=preview))

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
            _preview="Preview",
        ),
    )

    page = response.content.decode()
    assert '<span class="livefeed-sr">Info: </span>1 orders</p>' in page
    assert "&lt;i&gt;Approve&lt;/i&gt;</button>" in page
    assert "unread notification with the key “orders”" in page and "Leaves every inbox at" in page
    assert not Notification.objects.exists()


def test_a_notifications_page_shows_folded_counts(sender, alice):
    first = livefeed.notify(alice, title="first", group_key="k")
    livefeed.notify(alice, title="second", group_key="k")
    livefeed.notify(alice, title="third", group_key="k")

    page = sender.get(f"{LIST_URL}{first.pk}/change/").content.decode()

    assert figures(page)["folded"] == 2
    # The change list shows it too: the first send's row took two folds.
    listed = sender.get(LIST_URL).content.decode()
    assert re.search(rf'<a href="{LIST_URL}{first.pk}/change/">.*?<td class="field-folded">2</td>', listed, re.S)


def test_one_senders_users_picker_does_not_change_anothers(rf):
    from django.contrib.admin import site

    notification_admin = site._registry[Notification]
    searching, listing = rf.get(ADD_URL), rf.get(ADD_URL)
    searching.user, listing.user = User.objects.create_superuser("root"), User.objects.create_user("staff2")

    form = notification_admin.get_form(searching)
    notification_admin.get_form(listing)  # another request, meanwhile, on another thread

    assert str(form.base_fields["users"].help_text).startswith("Type part of a username")


def test_compose_sends_in_a_category_and_refuses_an_unknown_one(sender, alice, settings):
    settings.LIVEFEED = {"CATEGORIES": {"billing": {"label": "Billing"}}}
    assert b'<option value="billing">Billing</option>' in sender.get(ADD_URL).content

    sender.post(ADD_URL, compose(users=[alice.pk], category="billing"))
    refused = sender.post(ADD_URL, compose(users=[alice.pk], category="shipping"))

    assert list(Notification.objects.values_list("category", flat=True)) == ["billing"]
    assert refused.status_code == 200 and b"Select a valid choice" in refused.content
    assert notification_events()[0][1]["category"] == "billing"
