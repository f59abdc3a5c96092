"""The htmx demo page in a real browser against a real daphne: ?format=html swapped in by htmx alone."""

from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from tests.test_browser import chromium, make_user, notify, signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# htmx's SSE extension fires htmx:sseOpen once its EventSource is open (headers and first bytes in).
RECORD_OPEN = "document.addEventListener('htmx:sseOpen', () => { window.sseOpened = true; });"


@pytest.fixture(autouse=True)
def _publish_over_redis(redis_layer):
    """Send what this process publishes over the servers' Redis, as a shell or worker would."""


@contextmanager
def bobs_page(daphne_servers):
    """Yield bob and a page of his in chromium, signed in on a daphne server, that records htmx's sseOpen."""
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = signed_in(browser, server, bob).new_page()
        page.add_init_script(RECORD_OPEN)
        yield bob, page


def test_a_notification_is_swapped_in_as_escaped_html(daphne_servers):
    with bobs_page(daphne_servers) as (bob, page):
        page.goto("/demos/htmx/")
        page.wait_for_function("window.sseOpened === true", timeout=10_000)

        notify(bob, "<b>Build</b> & deploy", body="all green", url="/builds/9")
        notify(bob, "Second")

        items = page.locator(".demo-htmx-list .livefeed-notification")
        expect(items).to_have_count(2, timeout=10_000)
        expect(items.first).to_contain_text("Second")  # hx-swap="afterbegin": newest on top
        first = items.nth(1)
        expect(first.get_by_role("link", name="<b>Build</b> & deploy")).to_have_attribute("href", "/builds/9")
        expect(first.locator("p")).to_have_text("all green")
        assert first.locator("b").count() == 0  # markup in a title stays text
        assert page.evaluate("typeof window.livefeed") == "undefined"  # no script of livefeed's on the page


def test_a_notification_sent_before_the_page_stream_subscribes_is_still_swapped_in(daphne_servers):
    # The page's stream starts from where the page was rendered (?lastEventId=), so what is
    # sent in between, while the page loads and before the stream has subscribed, is replayed.
    with bobs_page(daphne_servers) as (bob, page):
        page.route("**/livefeed/stream/**", lambda route: route.abort())  # the stream cannot connect yet
        page.goto("/demos/htmx/")
        notify(bob, "Sent while the page loaded")
        page.unroute("**/livefeed/stream/**")  # htmx's EventSource tries again, and connects

        items = page.locator(".demo-htmx-list .livefeed-notification")
        expect(items).to_have_count(1, timeout=15_000)
        expect(items.first).to_contain_text("Sent while the page loaded")
