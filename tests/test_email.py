"""The email fallback (docs/notifications.md#email): livefeed_deliver's digests and one-click unsubscribe."""

import datetime
import email
import email.policy
import threading
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

import livefeed
from livefeed import digest
from livefeed.models import Delivery, Preference
from tests import servers

pytestmark = pytest.mark.django_db(transaction=True)
CATEGORIES = {"billing": {"label": "Billing", "email": True}, "news": {"label": "News"}}


@pytest.fixture(autouse=True)
def _categories(settings):
    settings.LIVEFEED = {"CATEGORIES": CATEGORIES, "SITE_URL": "https://example.com"}


@pytest.fixture
def reader(alice):
    alice.email = "alice@example.com"
    alice.save()
    return alice


def deliver(capsys, delay="0"):
    call_command("livefeed_deliver", "--delay", delay)
    return capsys.readouterr().out


def test_one_digest_per_user_lists_everything_due(reader, mailoutbox, capsys):
    livefeed.notify(reader, title="Invoice 1 paid", category="billing", url="/invoices/1")
    livefeed.notify(reader, title="Invoice 2 paid", body="Thanks", category="billing")

    assert deliver(capsys) == "Sent 1 email(s).\n"

    [message] = mailoutbox
    assert (message.subject, message.to) == ("2 new notifications", ["alice@example.com"])
    assert "Invoice 1 paid\nhttps://example.com/invoices/1" in message.body and "Thanks" in message.body
    [(html, kind)] = message.alternatives
    assert kind == "text/html" and '<a href="https://example.com/invoices/1">Invoice 1 paid</a>' in html
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["List-Unsubscribe"].startswith("<https://example.com/livefeed/unsubscribe/")


def test_one_notification_is_its_own_subject_and_never_goes_twice(reader, mailoutbox, capsys):
    livefeed.notify(reader, title="{count} invoices paid", category="billing", group_key="paid")

    deliver(capsys)
    assert deliver(capsys) == "Sent 0 email(s).\n"

    assert [message.subject for message in mailoutbox] == ["1 invoices paid"]


def test_a_fold_after_the_email_makes_it_due_again(reader, mailoutbox, capsys):
    livefeed.notify(reader, title="{count} invoices paid", category="billing", group_key="paid")
    deliver(capsys)

    livefeed.notify(reader, title="{count} invoices paid", category="billing", group_key="paid")
    deliver(capsys)

    assert [message.subject for message in mailoutbox] == ["1 invoices paid", "2 invoices paid"]


def test_nothing_before_the_delay(reader, mailoutbox, capsys, settings):
    settings.LIVEFEED = {"CATEGORIES": CATEGORIES, "EMAIL_DELAY": 3600}
    livefeed.notify(reader, title="Invoice paid", category="billing")

    call_command("livefeed_deliver")
    assert capsys.readouterr().out == "Sent 0 email(s).\n"
    assert deliver(capsys, "3599") == "Sent 0 email(s).\n"

    assert mailoutbox == []


def test_none_once_read_expired_or_without_an_address(reader, bob, mailoutbox, capsys):
    Delivery.objects.filter(notification=livefeed.notify(reader, title="read", category="billing")).mark_read()
    past = timezone.now() - datetime.timedelta(seconds=1)
    livefeed.notify(reader, title="expired", category="billing", expires_at=past)
    livefeed.notify(bob, title="no address", category="billing")

    assert deliver(capsys) == "Sent 0 email(s).\n"


def test_only_categories_with_email_on_for_that_reader(reader, bob, mailoutbox, capsys):
    bob.email = "bob@example.com"
    bob.save()
    Preference.objects.create(user=reader, category="billing", email=False)
    Preference.objects.create(user=bob, category="news", email=True)
    for user in (reader, bob):
        livefeed.notify(user, title="Invoice paid", category="billing")
        livefeed.notify(user, title="Newsletter", category="news")
        livefeed.notify(user, title="Hello")  # general: no email by default

    deliver(capsys)

    assert [(message.to, message.subject) for message in mailoutbox] == [(["bob@example.com"], "2 new notifications")]
    assert "Invoice paid" in mailoutbox[0].body and "Newsletter" in mailoutbox[0].body


def test_the_unsubscribe_post_needs_no_session_and_turns_email_off(reader, mailoutbox, capsys):
    livefeed.notify(reader, title="Invoice paid", category="billing")
    deliver(capsys)
    url = urlsplit(mailoutbox[0].extra_headers["List-Unsubscribe"].strip("<>")).path
    anonymous = Client(enforce_csrf_checks=True)

    assert anonymous.get(url).status_code == 200  # a link checker's GET changes nothing
    assert not Preference.objects.exists()
    response = anonymous.post(url, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200 and b"Billing" in response.content
    assert Preference.objects.get(user=reader, category="billing").email is False
    livefeed.notify(reader, title="Invoice 2 paid", category="billing")
    assert deliver(capsys) == "Sent 0 email(s).\n"


def test_a_forged_unsubscribe_url_is_a_400(reader):
    token = digest.unsubscribe_token(reader, ["billing"])

    assert Client().post(f"/livefeed/unsubscribe/{token[:-2]}xx/").status_code == 400
    assert not Preference.objects.exists()


def test_overlapping_runs_email_each_notification_once(mailoutbox, monkeypatch):
    users = [User.objects.create_user(f"user{n}", email=f"user{n}@example.com") for n in range(20)]
    for user in users:
        livefeed.notify(user, title="Invoice paid", category="billing")
    both_listed = threading.Barrier(2)
    candidates = digest._candidates

    def listed_by_both(delay, batch):
        ids = candidates(delay, batch)
        both_listed.wait(timeout=30)  # each run now holds every row as due: only the claim decides
        return ids

    monkeypatch.setattr(digest, "_candidates", listed_by_both)
    sent = []

    def run():
        try:
            sent.append(digest.deliver(0))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(sent) == 20 and sorted(message.to[0] for message in mailoutbox) == sorted(u.email for u in users)


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free loopback port; yields (port, the messages it received)."""
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.original_content)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=servers.free_port())
    controller.start()
    yield controller.port, received
    controller.stop()


def test_the_job_emails_a_real_smtp_server(reader, smtp_server, database_url):
    port, received = smtp_server
    livefeed.notify(
        reader, title="Build <9> finished", body="All green", url="/builds/9"
    )  # general: emailed in the demo
    env = servers.server_env(database_url, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port))

    assert servers.manage(env, "livefeed_deliver", "--delay", "0") == "Sent 1 email(s).\n"

    [raw] = received
    # Raw, not as a word encoded by RFC 2047 to fold a long line: mail clients read the URL as is.
    assert b"\nList-Unsubscribe: <http://127.0.0.1:8000/livefeed/unsubscribe/" in raw.replace(b"\r\n", b"\n")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert (message["To"], message["Subject"]) == ("alice@example.com", "Build <9> finished")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    parts = [message.get_body((kind,)) for kind in ("plain", "html")]
    assert message.get_content_type() == "multipart/alternative" and None not in parts
    text, html = (part.get_content().replace("\r\n", "\n") for part in parts if part is not None)
    assert "Build <9> finished\nAll green\nhttp://127.0.0.1:8000/builds/9" in text
    assert "Build &lt;9&gt; finished" in html and "<9>" not in html
    url = urlsplit(message["List-Unsubscribe"].strip("<>")).path
    assert Client().post(url).status_code == 200
    assert Preference.objects.get(user=reader, category="general").email is False
    assert servers.manage(env, "livefeed_deliver", "--delay", "0") == "Sent 0 email(s).\n"
