"""livefeed_send and livefeed_prune, called as an operator would."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.utils import timezone

from livefeed.models import Delivery, Event, Notification

pytestmark = pytest.mark.django_db(transaction=True)


def test_send_to_named_users(alice, bob, capsys):
    User.objects.create_user("carol")

    call_command(
        "livefeed_send", "--user", "alice", "--user", "bob", "--title", "Hi", "--level", "warning", "--url", "/x"
    )

    notification = Notification.objects.get()
    assert (notification.title, notification.level, notification.url) == ("Hi", "warning", "/x")
    assert set(notification.recipients.all()) == {alice, bob}
    assert sorted(Event.objects.filter(event="notification").values_list("channel", flat=True)) == sorted(
        [f"user.{alice.pk}", f"user.{bob.pk}"]
    )
    assert f"Sent notification {notification.pk} to 2 recipients." in capsys.readouterr().out


def test_send_to_a_group_and_to_all(alice, bob):
    team = Group.objects.create(name="team")
    team.user_set.add(alice)

    call_command("livefeed_send", "--group", "team", "--title", "Team", "--body", "b")
    call_command("livefeed_send", "--all", "--title", "All")

    events = Event.objects.filter(event="notification").order_by("id")
    assert [(e.channel, json.loads(e.data)["title"]) for e in events] == [
        (f"group.{team.pk}", "Team"),
        ("users", "All"),
    ]
    assert Delivery.objects.filter(notification__title="All").count() == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "alice", "--user", "nobody", "--title", "x"], "No such user: nobody"),
        (["--group", "ghosts", "--title", "x"], "No such group: ghosts"),
        (["--title", "x"], "one of the arguments --user --group --all is required"),
        (["--all", "--group", "team", "--title", "x"], "not allowed with argument"),
        (["--all", "--title", "x", "--level", "loud"], "invalid choice"),
    ],
)
def test_send_refuses_bad_input_and_sends_nothing(alice, argv, message):
    with pytest.raises(CommandError, match=message):
        call_command("livefeed_send", *argv)
    assert not Notification.objects.exists()


def test_prune_deletes_only_events_past_retention(settings, capsys):
    settings.LIVEFEED = {"REPLAY_RETENTION": 3600}
    Event.objects.create(channel="broadcast", event="e", data="{}", created_at=timezone.now() - timedelta(hours=2))
    kept = Event.objects.create(channel="broadcast", event="e", data="{}")

    call_command("livefeed_prune")

    assert list(Event.objects.all()) == [kept]
    assert "Deleted 1 event older than 3600 s." in capsys.readouterr().out
    call_command("livefeed_prune", "--older-than", "0")
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("argv", "retention"), [(["--older-than", "-5"], 60), ([], "a day"), (["--older-than", "x"], 60)]
)
def test_prune_refuses_bad_retention(settings, argv, retention):
    settings.LIVEFEED = {"REPLAY_RETENTION": retention}
    Event.objects.create(channel="broadcast", event="e", data="{}", created_at=timezone.now() - timedelta(days=9))

    with pytest.raises(CommandError):
        call_command("livefeed_prune", *argv)
    assert Event.objects.count() == 1
