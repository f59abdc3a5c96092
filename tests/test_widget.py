"""The widget as the server renders it, before any script runs."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

import livefeed
from livefeed.models import Delivery, Event


def _home(client, user) -> str:
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def _badge(html: str) -> tuple[str, bool, str]:
    """Return the badge's text, whether it is hidden, and its spoken label."""
    count = re.search(r'<span class="livefeed-count" aria-hidden="true"( hidden)?>([^<]*)</span>', html)
    spoken = re.search(r'<span class="livefeed-sr livefeed-spoken">([^<]*)</span>', html)
    assert count and spoken, html
    return count[2], bool(count[1]), spoken[1]


def _send(user, count: int) -> None:
    for number in range(count):
        livefeed.notify(recipient=user, title=f"Note {number}")


@pytest.mark.parametrize(
    ("unread", "badge", "hidden", "spoken"),
    [
        (0, "0", True, "No unread notifications"),
        (1, "1", False, "1 unread notification"),
        (9, "9", False, "9 unread notifications"),
        (12, "12", False, "12 unread notifications"),
        (99, "99", False, "99 unread notifications"),
        (100, "99+", False, "100 unread notifications"),
    ],
)
def test_badge_is_counted_on_the_server(client, bob, django_capture_on_commit_callbacks, unread, badge, hidden, spoken):
    with django_capture_on_commit_callbacks(execute=True):
        _send(bob, unread)
    assert _badge(_home(client, bob)) == (badge, hidden, spoken)


def test_the_include_can_make_the_badge_count_unseen(rf, bob, django_capture_on_commit_callbacks):
    from django.template import Context, Template

    with django_capture_on_commit_callbacks(execute=True):
        _send(bob, 3)
    first, second, _ = Delivery.objects.inbox(bob)
    Delivery.objects.filter(pk__in=[first.pk, second.pk]).mark_seen()
    Delivery.objects.filter(pk=first.pk).mark_read()  # 2 unread, 1 unseen: the badge tells which it counts
    request = rf.get("/")
    request.user = bob

    def render(include: str) -> str:
        return Template("{% csrf_token %}" + include).render(Context({"request": request}))

    unseen = render('{% include "livefeed/widget.html" with livefeed_badge="unseen" %}')
    assert _badge(unseen) == ("1", False, "1 new notification")
    assert 'data-badge="unseen"' in unseen and 'data-badge-max="99"' in unseen
    plain = render('{% include "livefeed/widget.html" %}')
    assert _badge(plain) == ("2", False, "2 unread notifications")
    assert 'data-badge="unread"' in plain


def test_read_and_archived_notifications_are_not_counted(client, bob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _send(bob, 3)
    deliveries = Delivery.objects.inbox(bob)
    deliveries.filter(pk=deliveries[0].pk).mark_read()
    deliveries.filter(pk=deliveries[1].pk).archive()
    assert _badge(_home(client, bob))[0] == "1"


def test_snoozed_and_expired_notifications_are_not_counted(client, bob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _send(bob, 3)
    past, future = timezone.now() - timedelta(seconds=1), timezone.now() + timedelta(hours=1)
    first, second, _ = Delivery.objects.inbox(bob)
    Delivery.objects.filter(pk=first.pk).update(snoozed_until=future)
    Delivery.objects.filter(pk=second.pk).update(expires_at=past)
    assert _badge(_home(client, bob))[0] == "1"


def test_root_carries_the_configuration(client, bob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _send(bob, 2)
    html = _home(client, bob)
    root = re.search(r"<div class=\"livefeed\" data-livefeed([^>]*)>", html)[1]  # type: ignore[index]
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', root))
    assert attrs["stream-url"] == "/livefeed/stream/"
    assert attrs["api-url"] == "/livefeed/api/notifications/"
    assert attrs["unread-count"] == attrs["unseen-count"] == "2"
    # The stream resumes after the log's position at render time: nothing falls between.
    assert attrs["last-event-id"] == str(Event.objects.latest("id").pk)
    assert attrs["newest-id"] == str(Delivery.objects.inbox(bob).values_list("notification_id", flat=True)[0])
    assert attrs["csrf-token"]
    strings = json.loads(attrs["strings"].replace("&quot;", '"'))
    assert strings["unread_other"] == "{count} unread notifications"


def test_anonymous_pages_get_no_widget(rf, db):
    from django.contrib.auth.models import AnonymousUser
    from django.template import Context, Template

    request = rf.get("/")
    request.user = AnonymousUser()
    html = Template('{% include "livefeed/widget.html" %}').render(Context({"request": request}))
    assert "data-livefeed" not in html


def test_staff_send_a_test_notification_from_the_demo_page(client, bob, django_capture_on_commit_callbacks):
    staff = get_user_model().objects.create_user("alice", password="pw", is_staff=True)
    client.force_login(staff)
    form = {"audience": "users", "users": [bob.pk], "title": "Hi <b>", "body": "", "level": "warning", "url": "/"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/send/", form)
    assert response.status_code == 302
    delivery = Delivery.objects.inbox(bob).select_related("notification").get()
    assert (delivery.notification.title, delivery.notification.level) == ("Hi <b>", "warning")
    assert Event.objects.filter(channel=f"user.{bob.pk}", event="notification").count() == 1


def test_send_page_refuses_non_staff_and_everyone_without_permission(client, bob):
    client.force_login(bob)
    assert client.get("/send/").status_code == 302  # to the admin login
    staff = get_user_model().objects.create_user("alice", password="pw", is_staff=True)
    client.force_login(staff)
    response = client.post("/send/", {"audience": "everyone", "title": "All", "level": "info"})
    assert response.status_code == 200
    assert "You may not send to everyone." in response.content.decode()
    assert not Delivery.objects.exists()


def test_the_include_sets_how_long_toasts_stay(rf, bob):
    from django.template import Context, Template

    request = rf.get("/")
    request.user = bob
    include = '{% include "livefeed/widget.html" with livefeed_toast_ms=10000 %}'
    html = Template("{% csrf_token %}" + include).render(Context({"request": request}))
    assert 'data-toast-timeout="10000"' in html
    plain = Template('{% include "livefeed/widget.html" %}').render(Context({"request": request}))
    assert 'data-toast-timeout=""' in plain  # the script's default, 6 s


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("grouped", {"title": "1 new comments on “Q3 plan”", "group_key": "demo:q3-plan:comments"}),
        (
            "actions",
            {
                "actions": [
                    {"label": "Approve", "url": "/demos/workflow/approve/", "method": "post"},
                    {"label": "Open", "url": "/demos/orders/", "method": "get"},
                ]
            },
        ),
        ("expiring", {"level": "warning"}),
    ],
)
def test_the_home_page_sends_workflow_demos_to_yourself(client, bob, kind, expected):
    assert 'value="grouped"' in _home(client, bob)

    assert client.post("/demos/workflow/send/", {"kind": kind}).status_code == 302
    [item] = client.get("/livefeed/api/notifications/").json()["results"]
    assert {key: item[key] for key in expected} == expected
    assert (item["expires_at"] is not None) == (kind == "expiring")


def test_the_demo_approve_action_answers_a_csrf_post(bob):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post("/demos/workflow/approve/").status_code == 403
    token = client.get("/livefeed/api/notifications/").cookies["csrftoken"].value
    assert client.post("/demos/workflow/approve/", HTTP_X_CSRFTOKEN=token).json() == {"approved": True}
    assert client.post("/demos/workflow/send/", {"kind": "nope"}, HTTP_X_CSRFTOKEN=token).status_code == 400


def test_the_widget_loads_the_stream_before_the_bell_that_starts_it(client, bob):
    html = _home(client, bob)
    scripts = re.findall(r'<script src="/static/livefeed/([\w-]+\.js)" defer>', html)
    assert scripts[:4] == ["livefeed-stream.js", "livefeed-rows.js", "livefeed-toasts.js", "livefeed.js"]
    assert re.search(r"<div class=\"livefeed\" data-livefeed [^>]* data-widget\s", html)


def test_a_page_without_the_bell_includes_the_stream_alone(rf, bob, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import AnonymousUser
    from django.template import Context, Template

    with django_capture_on_commit_callbacks(execute=True):
        _send(bob, 1)
    request = rf.get("/")
    request.user = bob
    include = Template('{% include "livefeed/stream.html" with livefeed_channels="orders" livefeed_events="done" %}')
    html = include.render(Context({"request": request}))
    root = re.search(r"<div data-livefeed ([^>]*) hidden>", html)
    assert root is not None, html
    assert dict(re.findall(r'data-([\w-]+)="([^"]*)"', root[1])) == {
        "stream-url": "/livefeed/stream/",
        "last-event-id": str(Event.objects.latest("id").pk),
        "channels": "orders",
        "events": "done",
    }
    assert re.findall(r'<script src="/static/livefeed/([\w-]+\.js)"', html) == ["livefeed-stream.js"]
    assert "livefeed-bell" not in html
    request.user = AnonymousUser()
    assert "data-livefeed" not in include.render(Context({"request": request}))
