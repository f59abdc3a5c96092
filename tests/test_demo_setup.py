"""The demo's setup command, run again by every `make demo`."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_running_the_setup_again_keeps_everyone_signed_in(client):
    call_command("demo_setup")
    assert client.login(username="bob", password="bob-demo")
    assert client.get("/").status_code == 200

    call_command("demo_setup")  # the next `make demo`

    assert client.get("/").status_code == 200, "bob's session ended"


def test_a_changed_demo_password_is_reset(client):
    call_command("demo_setup")
    bob = get_user_model().objects.get(username="bob")
    bob.set_password("something else")
    bob.save()

    call_command("demo_setup")

    assert client.login(username="bob", password="bob-demo")


def test_the_demo_has_a_group_to_send_to():
    call_command("demo_setup")
    call_command("demo_setup")

    team = Group.objects.get(name="Demo team")
    assert sorted(team.user_set.values_list("username", flat=True)) == ["alice", "bob"]
