"""The full-page inbox in a real browser (Debian's chromium via Playwright, real daphne): live rows, no reloads."""

import re

import pytest
from playwright.sync_api import expect

import livefeed
from tests.test_browser import (  # noqa: F401 (_publish_over_redis is an autouse fixture)
    XSS,
    _publish_over_redis,
    chromium,
    make_user,
    notify,
    off_loop,
    signed_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_the_page_is_rendered_then_live_and_its_buttons_act_without_a_reload(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    for title in ("First", "Second", "Third"):
        off_loop(livefeed.notify, recipient=bob, title=title, body="Unbroken" * 40)
    with chromium() as browser:
        page = signed_in(browser, server, bob, viewport=PHONE).new_page()
        page.goto("/livefeed/inbox/")
        rows = page.locator(".livefeed-inbox-list > li")
        expect(rows.locator(".livefeed-inbox-title")).to_have_text(["Third", "Second", "First"])
        expect(page.locator(".livefeed-inbox-count")).to_have_text("3")
        page.evaluate("window.sameDocument = true")

        notify(bob, XSS)  # live: shown at the top, as text
        expect(rows.first.locator(".livefeed-inbox-title")).to_have_text(XSS, timeout=5_000)
        expect(rows).to_have_count(4)
        expect(page.locator(".livefeed-inbox-list img")).to_have_count(0)
        expect(page.locator(".livefeed-inbox-count")).to_have_text("4")

        second = rows.filter(has_text="Second")
        second.get_by_role("button", name="Mark read").click()
        expect(second).not_to_have_class(re.compile("livefeed-unread"))
        expect(page.locator(".livefeed-inbox-count")).to_have_text("3")
        second.get_by_role("button", name="Archive").click()
        expect(rows).to_have_count(3)
        assert page.evaluate("window.sameDocument") is True  # no reload happened
        # On a phone the list fits the screen: nothing scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
