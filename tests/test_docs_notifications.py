"""docs/notifications.md runs: its settings, send, preferences answer and deliver command, in order."""

import json
import shlex

import pytest
from django.core.management import call_command
from django.test import Client

import livefeed
from livefeed.categories import choose_language
from tests.test_docs import DOCS, blocks

pytestmark = pytest.mark.django_db(transaction=True)


def test_notifications_md_examples_do_what_it_shows(alice, settings, mailoutbox, capsys):
    steps = {block.action: block for block in blocks(DOCS / "notifications.md") if block.action}
    namespace: dict = {}
    exec(steps["settings"].body, namespace)
    settings.LIVEFEED = namespace["LIVEFEED"]
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    alice.email = "alice@example.com"
    alice.save()

    exec(steps["send"].body, {"livefeed": livefeed, "alice": alice})
    client = Client()
    client.force_login(alice)
    assert client.get("/livefeed/api/notifications/", {"category": "billing"}).json()["results"][0]["category"] == (
        "billing"
    )
    assert client.get("/livefeed/api/preferences/").json() == json.loads(steps["preferences"].body)
    command = shlex.split(steps["deliver"].body)
    assert command[:2] == ["python", "manage.py"]
    call_command(*command[2:])

    assert capsys.readouterr().out == steps["output"].body
    assert [message.subject for message in mailoutbox] == ["Invoice 42 paid"]


def test_notifications_md_language_example_reads_in_the_readers_language(alice, bob, settings):
    steps = {block.action: block for block in blocks(DOCS / "notifications.md") if block.action}
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    choose_language(alice, "fr")

    exec(steps["language"].body, {"livefeed": livefeed})

    shown = {}
    for user in (alice, bob):
        client = Client()
        client.force_login(user)
        [item] = client.get("/livefeed/api/notifications/").json()["results"]
        shown[user.username] = {"title": item["title"], "body": item["body"]}
    assert shown["alice"] == json.loads(steps["shown"].body)
    assert shown["bob"] == {"title": "Alice sent you a note", "body": "Lunch at noon?"}
