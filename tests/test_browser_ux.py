"""What people notice of the widget (issue 13): states said in words, failures undone, rows that read right.

Real daphne and Debian's chromium, with the helpers of tests/test_browser.py; waits are
conditions with a timeout, never sleeps. "Server down" is a killed daphne, or a request
Playwright's page.route makes fail.
"""

import re
import signal
from typing import Any

import pytest
from django.shortcuts import resolve_url
from playwright.sync_api import Page, expect

import livefeed
from tests.test_browser import (
    DOCS,
    _publish_over_redis,  # noqa: F401 - the autouse fixture: this process publishes over the servers' Redis
    badge,
    chromium,
    make_user,
    notify,
    off_loop,
    open_home,
    signed_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def open_panel(page: Page) -> None:
    page.locator(".livefeed-bell").click()
    expect(page.locator(".livefeed-panel")).to_be_visible()


def row(page: Page, title: str):
    return page.locator(".livefeed-item", has_text=title)


def test_a_signed_out_page_says_so_with_a_link_to_sign_in_again(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        page, other = open_home(context), open_home(context)
        other.get_by_role("button", name="Sign out").click()  # ends this session's streams
        notice = page.get_by_role("link", name="Signed out — sign in again")
        expect(notice).to_be_visible(timeout=20_000)
        expect(notice).to_have_attribute("href", f"{resolve_url('login')}?next=%2F")


def test_the_dot_is_not_alone_a_lost_stream_says_reconnecting_at_once(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        expect(page.locator(".livefeed-notice")).to_be_hidden()  # nothing to say while live
        server.stop(signal.SIGKILL)
        expect(page.get_by_role("status").filter(has_text="Reconnecting…")).to_be_visible(timeout=2_000)
        server.start()
        expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "open", timeout=15_000)
        expect(page.locator(".livefeed-notice")).to_be_hidden()


def test_marking_read_while_offline_is_undone_visibly_with_a_message(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    for title in ("First", "Second", "Third"):
        off_loop(livefeed.notify, recipient=bob, title=title)
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_panel(page)
        expect(page.locator(".livefeed-unread")).to_have_count(3)
        page.route(re.compile(r".*/read(-all)?/$"), lambda route: route.abort("internetdisconnected"))

        page.get_by_role("button", name="Mark all as read").click()
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(re.compile("Could not reach the server"))
        expect(badge(page)).to_have_text("3")
        expect(page.locator(".livefeed-unread")).to_have_count(3)

        row(page, "Second").get_by_role("button", name="Mark as read: Second").click()
        expect(badge(page)).to_have_text("3")
        expect(row(page, "Second")).to_have_class(re.compile("livefeed-unread"))

        page.unroute(re.compile(r".*/read(-all)?/$"))
        page.get_by_role("button", name="Mark all as read").click()
        expect(badge(page)).to_be_hidden()
        expect(alert).to_be_hidden()


def test_an_inbox_that_could_not_load_offers_a_retry(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    off_loop(livefeed.notify, recipient=bob, title="Waiting for you")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        listing = re.compile(r".*/livefeed/api/notifications/\?.*")
        page.route(listing, lambda route: route.abort("internetdisconnected"))
        open_panel(page)
        expect(page.get_by_text("Could not load notifications.")).to_be_visible()
        page.unroute(listing)
        page.get_by_role("button", name="Retry").click()
        expect(row(page, "Waiting for you")).to_be_visible()
        expect(page.get_by_text("Could not load notifications.")).to_have_count(0)


def test_on_a_phone_the_dropdown_is_a_sheet_inside_the_screen(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    off_loop(livefeed.notify, recipient=bob, title="A title long enough to fill the whole row of a phone")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob, viewport=PHONE))
        open_panel(page)
        box = page.locator(".livefeed-panel").bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
        assert box["y"] + box["height"] <= PHONE["height"]
        assert box["width"] >= PHONE["width"] - 1  # the full width: a sheet


# The round, accent-coloured marks a row shows (elements and their ::before).
ROUND_MARKS = """(li) => {
    const accent = getComputedStyle(li.closest(".livefeed")).getPropertyValue("--livefeed-accent");
    const probe = document.createElement("span");
    probe.style.color = accent;
    document.body.append(probe);
    const colour = getComputedStyle(probe).color;
    probe.remove();
    let marks = 0;
    for (const node of li.querySelectorAll("*")) {
        for (const style of [getComputedStyle(node), getComputedStyle(node, "::before")]) {
            const shown = style.display !== "none" && parseFloat(style.width) > 0;
            if (shown && style.borderRadius === "50%" && style.backgroundColor === colour) marks += 1;
        }
    }
    return marks;
}"""


def test_a_read_row_shows_no_dot_that_looks_unread(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    notify(bob, "Already read")
    notify(bob, "Still unread")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_panel(page)
        row(page, "Already read").get_by_role("button", name="Mark as read: Already read").click()
        expect(row(page, "Already read")).not_to_have_class(re.compile("livefeed-unread"))
        assert row(page, "Already read").evaluate(ROUND_MARKS) == 0
        assert row(page, "Still unread").evaluate(ROUND_MARKS) == 1


def test_rows_with_a_link_look_like_links_and_rows_without_are_read_by_click_or_enter(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    notify(bob, "Has a link", url="/")
    notify(bob, "Clicked")
    notify(bob, "Entered")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_panel(page)
        expect(row(page, "Has a link").locator(".livefeed-go")).to_be_visible()
        expect(row(page, "Clicked").locator(".livefeed-go")).to_have_count(0)

        # Each read must reach the server before the reload below asks it for the count.
        with page.expect_response(lambda response: response.url.endswith("/read/")):
            row(page, "Clicked").locator(".livefeed-title").click()
        expect(row(page, "Clicked")).not_to_have_class(re.compile("livefeed-unread"))
        expect(badge(page)).to_have_text("2")

        page.keyboard.press("ArrowUp")  # from the clicked row to the one above it, the newest
        expect(row(page, "Entered").locator(".livefeed-main")).to_be_focused()
        with page.expect_response(lambda response: response.url.endswith("/read/")):
            page.keyboard.press("Enter")
        expect(row(page, "Entered")).not_to_have_class(re.compile("livefeed-unread"))
        expect(badge(page)).to_have_text("1")
        page.reload()  # and the server knows
        expect(badge(page)).to_have_text("1")


def test_mark_all_as_read_shows_only_when_something_is_unread(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_panel(page)
        read_all = page.locator(".livefeed-readall")
        expect(read_all).to_be_hidden()
        notify(bob, "Something new")
        expect(read_all).to_be_visible(timeout=5_000)
        read_all.click()
        expect(read_all).to_be_hidden()
        expect(page.locator(".livefeed-panel")).to_be_focused()  # focus is not lost with the button


def test_the_focus_ring_of_a_row_is_not_clipped_by_the_scroll_area(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    notify(bob, "Focus me")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_panel(page)
        main = row(page, "Focus me").locator(".livefeed-main")
        expect(main).to_be_visible()
        page.keyboard.press("ArrowDown")
        expect(main).to_be_focused()
        outside = main.evaluate(
            """(node) => {
                const style = getComputedStyle(node);
                const reach = parseFloat(style.outlineWidth) + parseFloat(style.outlineOffset);
                const ring = node.getBoundingClientRect();
                const area = node.closest(".livefeed-scroll").getBoundingClientRect();
                const cut = ring.left - reach < area.left || ring.right + reach > area.right
                    || ring.top - reach < area.top;
                return style.outlineStyle !== "none" && cut;
            }"""
        )
        assert outside is False


@pytest.mark.parametrize("error_at", [1, 5], ids=["folded-into-the-summary", "added-to-it-later"])
def test_a_burst_summary_shows_its_most_severe_level(daphne_servers, error_at):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))

        def burst():
            from django.db import transaction

            with transaction.atomic():  # all go out back to back at commit
                for number in range(6):
                    level = "error" if number == error_at else "info"
                    livefeed.notify(recipient=bob, title=f"Burst {number}", level=level)

        off_loop(burst)
        summary = page.locator(".livefeed-summary")
        expect(summary).to_contain_text("6 new notifications", timeout=5_000)
        expect(summary).to_have_attribute("data-level", "error")
        expect(summary.locator(".livefeed-sr")).to_have_text("Error: ")


SHOTS: dict[str, dict[str, Any]] = {
    "widget.png": {"viewport": {"width": 900, "height": 560}},
    "widget-mobile.png": {"viewport": PHONE},
    "widget-dark.png": {"viewport": {"width": 900, "height": 560}, "color_scheme": "dark"},
}


@pytest.mark.parametrize("name", SHOTS)
def test_screenshot(daphne_servers, name):
    """Write docs/widget*.png: the open dropdown on a desktop, a phone and in dark mode."""
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    sent = [
        ("Weekly report is ready", "success", "Open it from your dashboard.", "/"),
        ("Disk usage at 85 %", "warning", "The uploads volume is filling up.", "/"),
        ("Payment failed", "error", "The card ending in 4242 was declined.", "/"),
        ("Alice mentioned you", "info", "“Can you review the widget?”", ""),
        ("Build #128 finished", "success", "All 214 tests passed.", "/"),
    ]
    alice = make_user("alice", first_name="Alice", last_name="Martin")
    for title, level, body, url in sent:
        actor = alice if title.startswith("Alice") else None
        off_loop(livefeed.notify, recipient=bob, title=title, level=level, body=body, url=url, actor=actor)
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob, **SHOTS[name]))
        open_panel(page)
        row(page, "Disk usage").get_by_role("button", name="Mark as read: Disk usage at 85 %").click()
        expect(badge(page)).to_have_text("4")
        page.locator(".livefeed-panel").focus()  # no focus ring on the button just clicked
        page.locator(".livefeed-scroll").evaluate("(list) => { list.scrollTop = 0; }")
        page.mouse.move(0, 0)
        page.screenshot(path=DOCS / name)


def test_the_browser_keeps_its_stream_ticket_and_comes_back_live_with_it_after_a_restart(daphne_servers):
    """The ticket is a cookie the browser must accept and send back on EventSource's reconnect."""
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        page = open_home(context)
        (ticket,) = [cookie for cookie in context.cookies() if cookie["name"] == "livefeed_ticket"]
        assert ticket["httpOnly"] and ticket["path"] == "/livefeed/stream/"
        server.stop(signal.SIGKILL)
        server.start()
        expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "open", timeout=15_000)
        notify(bob, "After the restart")
        expect(badge(page)).to_have_text("1", timeout=10_000)
