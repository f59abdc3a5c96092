"""The demo site: its setup command, run again by every `make demo`, and its send page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from livefeed import language
from livefeed.categories import choose_language

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


def _staff_sends(client, form):
    call_command("demo_setup")
    client.login(username="alice", password="alice-demo")
    return client.post("/send/", {"title": "Hi", "body": "", "level": "info", "url": "", **form}, follow=True)


def test_the_send_page_names_who_it_sent_to_and_keeps_the_choice(client):
    bob = get_user_model().objects.get_or_create(username="bob")[0]

    response = _staff_sends(client, {"audience": "users", "users": [bob.pk]})

    page = response.content.decode()
    assert "Sent “Hi” to bob." in page
    assert f'<option value="{bob.pk}" selected>' in page  # not reset to the sender


def test_the_send_page_counts_a_group_send(client):
    team = Group.objects.get_or_create(name="Demo team")[0]

    response = _staff_sends(client, {"audience": "group", "group": team.pk})

    page = response.content.decode()
    assert "Sent “Hi” to the group Demo team (2 members)." in page
    assert re.search(r'value="group"[^>]*checked', page)  # the next send goes to the group again


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_demo_server_prints_bobs_digest_on_its_console(database_url):
    import sys
    import time

    import livefeed
    from tests import servers

    call_command("demo_setup")
    livefeed.notify(get_user_model().objects.get(username="bob"), title="Deploy finished", url="/")
    port = servers.free_port()
    env = servers.server_env(database_url, LIVEFEED_EMAIL_DELAY="0", DEMO_EMAIL_INTERVAL="0.2")
    env.pop("EMAIL_HOST", None)
    server = servers.Process(
        f"demo-email-{port}", [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"], port, env
    )
    server.start()
    log = servers.ARTIFACTS / f"{server.name}.log"
    try:
        deadline = time.monotonic() + 30  # a wait for the job, not a timing assertion
        while "To: bob@example.com" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
    printed = log.read_text()
    assert "To: bob@example.com" in printed and "Subject: Deploy finished" in printed
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in printed


def test_bob_reads_french_until_he_chooses_otherwise():
    call_command("demo_setup")
    bob = get_user_model().objects.get(username="bob")
    assert (language.of_user(bob), language.of_user(get_user_model().objects.get(username="alice"))) == ("fr", "en-us")

    choose_language(bob, "en")
    call_command("demo_setup")

    assert language.of_user(bob) == "en"


def test_the_translated_note_reaches_bob_in_french(client):
    call_command("demo_setup")
    bob = get_user_model().objects.get(username="bob")

    _staff_sends(client, {"audience": "users", "users": [bob.pk], "translated": "on"})

    bob_client = Client()
    bob_client.force_login(bob)
    [item] = bob_client.get("/livefeed/api/notifications/").json()["results"]
    assert item["title"] == "alice vous a envoyé un mot"
