"""Notifications in each reader's language (docs/notifications.md#language): lazy titles, params, catalogs."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from gettext import GNUTranslations
from html import unescape
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core import signing
from django.core.management import call_command
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext_lazy

import livefeed
from livefeed.categories import choose_language
from livefeed.models import Notification
from tests.streams import Stream, run, session_for
from tests.test_notify import watch

pytestmark = pytest.mark.django_db(transaction=True)

# In the demo's own catalog (project/locale), as a site's strings would be.
NOTE = gettext_lazy("%(actor)s sent you a note")
PARAMS = {"actor": "Alice"}
ENGLISH = "Alice sent you a note"
FRENCH = "Alice vous a envoyé un mot"


@pytest.fixture(autouse=True)
def _languages(settings):
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    settings.LIVEFEED = {"CATEGORIES": {"comments": {"label": "Comments", "email": True}}}


@pytest.fixture
def readers(alice, bob):
    """alice reads French, bob English (the site's default); both have an address."""
    choose_language(alice, "fr")
    for user in (alice, bob):
        user.email = f"{user.username}@example.com"
        user.save()
    return alice, bob


def inbox_titles(user) -> list[str]:
    client = Client()
    client.force_login(user)
    return [item["title"] for item in client.get("/livefeed/api/notifications/").json()["results"]]


def audience(kind: str, users) -> dict:
    if kind == "everyone":
        return {"everyone": True}
    team = Group.objects.create(name="team")
    team.user_set.add(*users)
    return {"group": team}


@pytest.mark.parametrize("kind", ["everyone", "group"])
def test_one_broadcast_reads_in_each_readers_language_live_in_the_inbox_and_by_email(readers, kind, mailoutbox, capsys):
    alice, bob = readers
    send = audience(kind, readers)

    to_alice, to_bob = watch(
        readers,
        lambda: livefeed.notify(**send, title=NOTE, body="“Ship it”", params=PARAMS, category="comments"),
    )

    assert [(data["title"], data["body"]) for _, data in to_alice] == [(FRENCH, "“Ship it”")]
    assert [(data["title"], data["body"]) for _, data in to_bob] == [(ENGLISH, "“Ship it”")]
    assert "translate" not in to_alice[0][1]  # what the hub needs to translate stays on the server
    assert inbox_titles(alice) == [FRENCH]
    assert inbox_titles(bob) == [ENGLISH]
    call_command("livefeed_deliver", "--delay", "0")
    subjects = {message.to[0]: message.subject for message in mailoutbox}
    assert subjects == {"alice@example.com": FRENCH, "bob@example.com": ENGLISH}
    french = next(message for message in mailoutbox if message.to == ["alice@example.com"])
    assert "Choisir les notifications" in french.body  # the digest's own words too
    unsubscribe = french.extra_headers["List-Unsubscribe"].strip("<>").removeprefix("https://example.com")
    assert "Ne plus recevoir d’e-mails pour" in Client().get(unsubscribe).content.decode()  # no session: its reader's


def test_a_send_to_one_user_is_in_their_language(readers):
    alice, bob = readers

    to_alice, to_bob = watch(readers, lambda: livefeed.notify([alice, bob], title=NOTE, params=PARAMS))

    assert [data["title"] for _, data in to_alice] == [FRENCH]
    assert [data["title"] for _, data in to_bob] == [ENGLISH]


def test_a_fold_keeps_each_readers_language_and_count(readers):
    alice, _ = readers
    title = gettext_lazy("{count} new comments on %(post)s")

    def send_twice():
        for _ in range(2):
            livefeed.notify(everyone=True, title=title, params={"post": "Q3 plan"}, group_key="q3")

    to_alice, to_bob = watch(readers, send_twice)

    assert [data["title"] for _, data in to_alice][-1] == "2 nouveaux commentaires sur Q3 plan"
    assert [data["title"] for _, data in to_bob][-1] == "2 new comments on Q3 plan"


@pytest.mark.parametrize("output", ["json", "html"])
def test_replay_after_a_reconnect_reads_as_live(readers, output):
    alice, _ = readers
    livefeed.notify(everyone=True, title=NOTE, params=PARAMS)
    key = session_for(alice)

    async def scenario():
        stream = await Stream(
            f"/livefeed/stream/?format={output}", session_key=key, headers=[("last-event-id", "0")]
        ).open()
        [event] = [event for event in await stream.events(1) if event.type == "notification"]
        await stream.close()
        return event.data

    data = run(scenario)

    assert FRENCH in (data if output == "html" else json.loads(data)["title"])
    assert "translate" not in data


def test_html_streams_get_the_fragment_in_their_language(readers):
    alice, bob = readers
    keys = [session_for(alice), session_for(bob)]

    async def scenario():
        streams = [await Stream("/livefeed/stream/?format=html", session_key=key).open() for key in keys]
        for stream in streams:
            await stream.connected()
        await sync_to_async(livefeed.notify)(everyone=True, title=NOTE, params=PARAMS)
        fragments = []
        for stream in streams:
            fragments.append((await stream.events(1))[0].data)
            await stream.close()
        return fragments

    french, english = run(scenario)

    assert f"<strong>{FRENCH}</strong>" in unescape(french)
    assert f"<strong>{ENGLISH}</strong>" in unescape(english)


def test_plain_strings_are_shown_as_given(readers):
    alice, _ = readers

    [to_alice] = watch([alice], lambda: livefeed.notify(everyone=True, title="Notifications", body="100% %(x)s"))

    assert [(data["title"], data["body"]) for _, data in to_alice] == [("Notifications", "100% %(x)s")]
    assert inbox_titles(alice) == ["Notifications"]


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"someone": "Alice"}, ValueError, "actor"),
        (None, ValueError, "actor"),
        (["Alice"], TypeError, "dict"),
        ({"actor": object()}, TypeError, "JSON"),
    ],
)
def test_bad_params_fail_at_notify(alice, params, error, message):
    with pytest.raises(error, match=message):
        livefeed.notify(alice, title=NOTE, params=params)
    assert not Notification.objects.exists()


def test_a_message_with_unnamed_placeholders_fails_at_notify(alice):
    with pytest.raises(ValueError, match="named placeholders"):
        livefeed.notify(alice, title=gettext_lazy("%s sent you a note"), params=PARAMS)


def test_params_without_a_lazy_string_fail_at_notify(alice):
    with pytest.raises(ValueError, match="gettext_lazy"):
        livefeed.notify(alice, title="Alice commented", params=PARAMS)


def test_the_widget_reads_in_the_users_language(readers, client):
    alice, bob = readers

    client.force_login(alice)
    french = client.get("/").content.decode()
    client.force_login(bob)
    english = client.get("/").content.decode()

    assert ">Tout marquer comme lu</button>" in french and '" lang="fr">' in french.split("data-strings=")[1]
    assert '<span class="livefeed-sr">Paramètres des notifications</span>' in french
    strings = json.loads(unescape(french.split('data-strings="')[1].split('"')[0]))
    assert strings["mark_read"] == "Marquer comme lu"
    assert ">Mark all as read</button>" in english and "Tout marquer comme lu" not in english


def test_the_inbox_and_preferences_pages_read_in_the_users_language(readers, client):
    alice, _ = readers
    livefeed.notify(alice, title=NOTE, params=PARAMS)
    client.force_login(alice)

    inbox = client.get("/livefeed/inbox/").content.decode()
    preferences = client.get("/livefeed/preferences/").content.decode()

    assert FRENCH in inbox and "Archiver" in inbox
    assert "Paramètres des notifications" in preferences and '<html lang="fr">' in preferences


def test_the_preferences_page_changes_the_language(readers, client):
    _, bob = readers
    client.force_login(bob)
    assert '<option value="en" selected>' in client.get("/livefeed/preferences/").content.decode()  # en-us

    page = client.post("/livefeed/preferences/", {"language": "fr", "comments:in_app": "on"}).content.decode()

    assert "Enregistré." in page and '<option value="fr" selected>' in page
    assert client.get("/livefeed/api/preferences/").json()["language"] == "fr"


LOCALE = Path(livefeed.__file__).parent / "locale" / "fr" / "LC_MESSAGES"


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (apt install gettext)")
def test_every_string_livefeed_shows_has_a_french_translation_compiled_in_the_mo(tmp_path):
    # makemessages over a copy of the package: any string added since the catalog was made shows empty.
    copy = tmp_path / "livefeed"
    shutil.copytree(LOCALE.parents[2], copy, ignore=shutil.ignore_patterns("__pycache__"))
    environment = {**os.environ, "PYTHONPATH": str(Path(livefeed.__file__).parents[1])}
    makemessages = [sys.executable, "-P", "-m", "django", "makemessages", "-l", "fr", "--no-location"]
    subprocess.run(makemessages, cwd=copy, env=environment, check=True, capture_output=True)
    current = (copy / "locale" / "fr" / "LC_MESSAGES" / "django.po").read_text()
    entries = current.split("\n\n")[1:]  # after the header
    untranslated = [entry for entry in entries if re.search(r'^msgstr(\[\d\])? ""(?!\n")$', entry, re.M)]
    assert untranslated == [] and "#, fuzzy" not in current

    subprocess.run(["msgfmt", "-o", tmp_path / "fresh.mo", LOCALE / "django.po"], check=True)
    with open(tmp_path / "fresh.mo", "rb") as fresh, open(LOCALE / "django.mo", "rb") as shipped:
        assert GNUTranslations(fresh)._catalog == GNUTranslations(shipped)._catalog  # type: ignore[attr-defined]


def test_anotify_takes_params_too(readers):
    alice, _ = readers

    run(lambda: livefeed.anotify(alice, title=NOTE, params=PARAMS))

    assert inbox_titles(alice) == [FRENCH]


def test_the_admin_names_a_translated_notification_in_its_own_language(readers):
    notification = livefeed.notify(readers[0], title=NOTE, params=PARAMS)

    with translation.override("fr"):
        assert str(notification) == FRENCH
    assert str(notification) == ENGLISH  # not the stored "%(actor)s sent you a note"


def test_a_reconnect_by_ticket_keeps_the_language_until_the_user_changes_it(readers):
    """The stream ticket (livefeed.tickets) carries the language: no query, yet French; a new choice voids it."""
    from livefeed import revocation, tickets
    from tests.test_tickets import ticket_of, with_ticket

    alice = readers[0]
    key = session_for(alice)

    async def title_by_ticket(ticket: str) -> tuple[str, str]:
        stream = await (await Stream(session_key=key, headers=with_ticket(ticket)).open()).connected()
        await sync_to_async(livefeed.notify)(everyone=True, title=NOTE, params=PARAMS)
        [event] = await stream.events(1)
        await stream.close()
        return json.loads(event.data)["title"], ticket_of(stream)

    async def scenario():
        first = await (await Stream(session_key=key).open()).connected()
        ticket = ticket_of(first)
        await first.close()
        assert tickets.COOKIE and ticket
        french, reissued = await title_by_ticket(ticket)
        assert reissued == ""  # let in by its ticket, not the session
        await sync_to_async(choose_language)(alice, "en")
        user_pk, session, *_, issued, _ = signing.loads(ticket, salt=tickets.SALT)
        for _ in range(500):  # until the change reaches this process's hub over the layer
            if not revocation.honours(alice.pk, session, issued):
                break
            await asyncio.sleep(0.01)
        english, reissued = await title_by_ticket(ticket)
        return french, english, reissued

    french, english, reissued = run(scenario)
    assert french == FRENCH
    assert english == ENGLISH
    assert reissued, "the voided ticket sent the reconnect through the session, which issued a new one"


@pytest.mark.parametrize("where", ["api", "page"])
def test_choosing_a_language_has_the_browser_drop_its_stream_ticket(readers, where):
    """A process that heard nothing of the change would honour the ticket: the browser must not send it."""
    from livefeed import tickets

    client = Client()
    client.force_login(readers[0])
    client.cookies[tickets.COOKIE] = "a-ticket"
    if where == "api":
        response = client.post("/livefeed/api/preferences/", {"language": "en"}, content_type="application/json")
    else:
        response = client.post("/livefeed/preferences/", {"language": "en"})
    assert response.status_code == 200
    dropped = response.cookies[tickets.COOKIE]
    assert dropped.value == "" and dropped["max-age"] == 0 and dropped["path"] == "/livefeed/stream/"
