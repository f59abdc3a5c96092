"""The notification workflow in a real browser: folds, actions, snooze and expiry in the widget.

Chromium against real daphne, as in tests/test_browser.py, whose helpers these reuse.
The due job runs here, off the browser's loop, once the test has moved a snooze or
an expiry into the past: no test waits for DUE_INTERVAL.
"""

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

import livefeed
from livefeed.due import run_due
from livefeed.models import Delivery, Event
from tests.test_browser import DOCS, badge, chromium, make_user, notify, off_loop, open_home, signed_in, toasts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

APPROVE = {"label": "Approve", "url": "/demos/workflow/approve/", "method": "post"}
OPEN = {"label": "Open", "url": "/"}


@pytest.fixture(autouse=True)
def _publish_over_redis(redis_layer):
    """Send what this process publishes over the servers' Redis, as a shell or worker would."""


def row(page: Page, title: str):
    return page.locator(".livefeed-item", has_text=title)


def open_inbox(page: Page) -> None:
    page.locator(".livefeed-bell").click()
    expect(page.locator(".livefeed-panel")).to_be_visible()
    # Loaded: a notification sent after this is news (a toast), not a row the load found.
    expect(page.locator(".livefeed-list")).not_to_have_attribute("aria-busy", "true")


def due_now(pk: int, **field) -> None:
    """Move a delivery's snooze or expiry into the past and run the due job, as a server would."""

    def run():
        past = timezone.now() - datetime.timedelta(seconds=1)
        Delivery.objects.filter(notification_id=pk).update(**{name: past for name in field})
        run_due()

    off_loop(run)


def test_a_fold_updates_the_open_row_in_place_and_toasts_once(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_inbox(page)
        pk = notify(bob, "{count} comments on Q3 plan", group_key="q3")
        expect(toasts(page, "1 comments on Q3 plan")).to_be_visible(timeout=5_000)
        notify(bob, "Unrelated")
        expect(page.locator(".livefeed-item").first).to_contain_text("Unrelated")

        assert notify(bob, "{count} comments on Q3 plan", group_key="q3", body="The newest") == pk + 2
        folded = row(page, "2 comments on Q3 plan")
        expect(folded).to_be_visible(timeout=5_000)
        expect(page.locator(".livefeed-item")).to_have_count(2)  # in place: no second row
        expect(page.locator(".livefeed-item").first).to_have_attribute("data-id", str(pk))  # and on top
        expect(folded.locator(".livefeed-fold")).to_have_text("×2(2 grouped notifications)")
        expect(folded).to_contain_text("The newest")
        expect(badge(page)).to_have_text("2")  # the fold's exact counts: still two unread
        toast = page.locator(f".livefeed-toast[data-id='{pk}']")
        expect(toast).to_have_count(1)
        expect(toast.locator(".livefeed-fold")).to_contain_text("×2")


def test_a_fold_the_page_missed_while_offline_is_caught_up_after_a_reset(daphne_servers):
    """The log was pruned past the page's position: the reset's catch-up brings the fold of an old id."""
    (server,) = daphne_servers(1, LIVEFEED_SHUTDOWN_SPREAD="500")
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        page.evaluate("document.addEventListener('livefeed:reset', () => { window.resets = (window.resets || 0) + 1 })")
        pk = notify(bob, "{count} comments on Q3 plan", group_key="q3")
        expect(toasts(page, "1 comments on Q3 plan")).to_be_visible(timeout=5_000)
        page.locator(f".livefeed-toast[data-id='{pk}'] .livefeed-toast-close").click()
        server.stop()
        expect(page.locator(".livefeed-conn")).not_to_have_attribute("data-state", "open", timeout=5_000)
        notify(bob, "{count} comments on Q3 plan", group_key="q3")
        notify(bob, "Newer")
        off_loop(lambda: Event.objects.exclude(pk=Event.objects.latest("pk").pk).delete())  # pruned
        server.start()

        expect(toasts(page, "2 comments on Q3 plan")).to_be_visible(timeout=10_000)
        assert page.evaluate("window.resets") == 1
        expect(badge(page)).to_have_text("2")
        open_inbox(page)
        expect(page.locator(".livefeed-item")).to_have_count(2)


def test_a_post_action_run_from_a_toast_marks_read_and_shows_the_outcome(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        pk = notify(bob, "Order 7 awaits approval", actions=[APPROVE, OPEN])
        refused = notify(bob, "Order 8 awaits approval", actions=[{**APPROVE, "url": "/demos/workflow/nope/"}])
        toast = page.locator(f".livefeed-toast[data-id='{pk}']")
        link = toast.get_by_role("link", name="Open: Order 7 awaits approval")
        expect(link).to_have_attribute("href", re.compile("/$"))
        with page.expect_request(lambda request: request.url.endswith("/demos/workflow/approve/")) as sent:
            toast.get_by_role("button", name="Approve: Order 7 awaits approval").click()
        assert sent.value.headers["x-csrftoken"]
        expect(toast.locator(".livefeed-outcome")).to_have_text("Done")
        expect(toasts(page, "Order 7 approved")).to_be_visible(timeout=5_000)  # what the POST did
        expect(badge(page)).to_have_text("2")  # order 8, and the approval; order 7 was marked read

        other = page.locator(f".livefeed-toast[data-id='{refused}']")
        other.get_by_role("button", name="Approve: Order 8 awaits approval").click()
        expect(other.locator(".livefeed-outcome")).to_have_text("Failed (404)")
        open_inbox(page)
        expect(row(page, "Order 7 awaits")).not_to_have_class(re.compile("livefeed-unread"))
        expect(row(page, "Order 8 awaits")).to_have_class(re.compile("livefeed-unread"))


def test_snooze_from_the_keyboard_hides_it_everywhere_and_it_comes_back_on_top(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    pk = off_loop(lambda: livefeed.notify(recipient=bob, title="Snooze me").pk)
    off_loop(livefeed.notify, recipient=bob, title="Newer")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        page, other = open_home(context), open_home(context)
        expect(badge(other)).to_have_text("2")
        open_inbox(page)
        page.get_by_role("button", name="Snooze: Snooze me").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Snooze 1 hour: Snooze me")).to_be_focused()
        with page.expect_request(lambda request: request.url.endswith(f"/{pk}/snooze/")) as sent:
            page.keyboard.press("Enter")
        body = sent.value.post_data_json or {}
        until = datetime.datetime.fromisoformat(body["until"])
        assert datetime.timedelta(minutes=59) < until - timezone.now() <= datetime.timedelta(hours=1)
        expect(row(page, "Snooze me")).to_have_count(0)
        expect(badge(page)).to_have_text("1")
        expect(badge(other)).to_have_text("1")  # the removed event reached the other tab

        due_now(pk, snoozed_until=True)
        expect(page.locator(".livefeed-item").first).to_contain_text("Snooze me", timeout=5_000)
        expect(row(page, "Snooze me")).to_have_class(re.compile("livefeed-unread"))
        expect(page.locator(".livefeed-item")).to_have_count(2)
        expect(badge(page)).to_have_text("2")
        expect(badge(other)).to_have_text("2")
        expect(toasts(other, "Snooze me")).to_be_visible()


def test_an_expired_notification_leaves_the_open_inbox_the_toasts_and_the_badge(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_inbox(page)
        soon = timezone.now() + datetime.timedelta(hours=1)
        pk = notify(bob, "Flash sale", expires_at=soon)
        expect(toasts(page, "Flash sale")).to_be_visible(timeout=5_000)
        expect(row(page, "Flash sale")).to_be_visible()
        expect(badge(page)).to_have_text("1")

        due_now(pk, expires_at=True)
        expect(row(page, "Flash sale")).to_have_count(0, timeout=5_000)
        expect(toasts(page, "Flash sale")).to_have_count(0)
        expect(badge(page)).to_be_hidden()
        expect(page.locator(".livefeed-empty")).to_be_visible()


def test_screenshot_of_a_folded_row_with_actions(daphne_servers):
    (server,) = daphne_servers(1)
    bob, alice = make_user("bob"), make_user("alice", first_name="Alice")
    off_loop(livefeed.notify, recipient=bob, title="Build #128 finished", level="success", body="All tests passed.")
    for _ in range(5):
        off_loop(
            livefeed.notify,
            recipient=bob,
            actor=alice,
            title="{count} new comments on “Q3 plan”",
            body="“Can we move the launch to May?”",
            url="/",
            group_key="q3:comments",
            actions=[{"label": "Reply", "url": "/"}],
        )
    off_loop(
        livefeed.notify, recipient=bob, title="Order 7 awaits your approval", level="warning", actions=[APPROVE, OPEN]
    )
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob, viewport={"width": 900, "height": 600}))
        open_inbox(page)
        expect(page.locator(".livefeed-fold")).to_contain_text("×5")
        page.mouse.move(0, 0)
        page.screenshot(path=DOCS / "inbox-workflow.png")
