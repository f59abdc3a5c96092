"""The dropdown people enjoy (issue 13): who did it, All/Unread tabs, Today/Earlier, archive, the badge's choice.

Real daphne and Debian's chromium, with the helpers of tests/test_browser.py; waits are
conditions with a timeout, never sleeps.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from livefeed.models import Delivery, Notification
from tests.test_browser import (
    DOCS,
    _publish_over_redis,  # noqa: F401 - the autouse fixture: this process publishes over the servers' Redis
    badge,
    chromium,
    make_user,
    notify,
    off_loop,
    open_home,
    send_notes,
    signed_in,
    toasts,
)
from tests.test_browser_ux import open_panel, row

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def listing(page: Page) -> list[str]:
    """Return the dropdown's list as a person reads it: section headings and row titles, in order."""
    return page.locator(".livefeed-list").evaluate(
        """(list) => [...list.children].map((li) =>
            li.querySelector("h3")?.textContent ?? li.dataset.title)"""
    )


def age(pk: int, days: int) -> None:
    """Make notification pk as old as days ago, for its readers too."""
    then = timezone.now() - timedelta(days=days)
    Notification.objects.filter(pk=pk).update(created_at=then)
    Delivery.objects.filter(notification_id=pk).update(updated_at=then)


def test_rows_and_toasts_say_who_did_it(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    ada = make_user("ada", first_name="Ada", last_name="Lovelace")
    notify(bob, "Nobody did this")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        notify(bob, "Ada commented", actor=ada)
        toast = page.locator(".livefeed-toast", has=toasts(page, "Ada commented"))
        expect(toast.locator(".livefeed-actor-name")).to_have_text("Ada Lovelace", timeout=5_000)
        expect(toast.locator(".livefeed-avatar")).to_have_text("AL")

        open_panel(page)
        mark = row(page, "Ada commented").locator(".livefeed-avatar")
        expect(mark).to_have_text("AL")
        expect(mark).to_have_attribute("aria-hidden", "true")  # the name is said in text
        expect(row(page, "Ada commented").locator(".livefeed-actor-name")).to_have_text("Ada Lovelace")
        colour = mark.evaluate("(node) => getComputedStyle(node).backgroundColor")
        assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
        expect(row(page, "Nobody did this").locator(".livefeed-actor")).to_have_count(0)

        # The full-page inbox draws the same mark with the same helper.
        page.goto("/livefeed/inbox/")
        item = page.locator(".livefeed-inbox-item", has_text="Ada commented")
        expect(item.locator(".livefeed-avatar")).to_have_text("AL")
        expect(item.locator(".livefeed-avatar")).to_have_css("background-color", colour)
        expect(item.locator(".livefeed-actor-name")).to_have_text("Ada Lovelace")


def test_all_and_unread_tabs_filter_the_list_and_work_with_the_keyboard(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    already = notify(bob, "Already read")
    off_loop(lambda: Delivery.objects.filter(notification_id=already).mark_read())
    notify(bob, "Still unread")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_panel(page)
        tabs = page.get_by_role("tablist")
        all_tab, unread_tab = tabs.get_by_role("tab", name="All"), tabs.get_by_role("tab", name="Unread")
        expect(all_tab).to_have_attribute("aria-selected", "true")
        expect(unread_tab).to_have_attribute("aria-selected", "false")
        expect(page.get_by_role("tabpanel")).to_contain_text("Already read")

        all_tab.focus()
        page.keyboard.press("ArrowRight")
        expect(unread_tab).to_be_focused()
        expect(unread_tab).to_have_attribute("aria-selected", "true")
        panel = page.get_by_role("tabpanel", name="Unread")
        expect(panel.locator(".livefeed-item")).to_have_count(1)
        expect(row(page, "Still unread")).to_be_visible()

        # Live news lands in the Unread tab; a row read there stays until the tab is shown again.
        notify(bob, "Just in")
        expect(row(page, "Just in")).to_be_visible(timeout=5_000)
        row(page, "Still unread").get_by_role("button", name="Mark as read: Still unread").click()
        expect(row(page, "Still unread")).not_to_have_class(re.compile("livefeed-unread"))
        expect(badge(page)).to_have_text("1")

        unread_tab.focus()
        page.keyboard.press("ArrowLeft")
        expect(all_tab).to_have_attribute("aria-selected", "true")
        expect(page.locator(".livefeed-item")).to_have_count(3)
        page.keyboard.press("End")
        expect(unread_tab).to_be_focused()
        expect(page.locator(".livefeed-item")).to_have_count(1)
        expect(row(page, "Just in")).to_be_visible()

        # Closing and opening again keeps the tab, with a fresh list: what was read meanwhile is gone.
        row(page, "Just in").get_by_role("button", name="Mark as read: Just in").click()
        expect(badge(page)).to_be_hidden()
        expect(row(page, "Just in")).to_be_visible()
        page.keyboard.press("Escape")
        open_panel(page)
        expect(unread_tab).to_have_attribute("aria-selected", "true")
        expect(page.locator(".livefeed-item")).to_have_count(0)
        expect(page.get_by_text("You’re all caught up.")).to_be_visible()


def test_the_list_has_today_and_earlier_sections(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    old = notify(bob, "Last week")
    off_loop(age, old, 7)
    notify(bob, "This morning")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        open_panel(page)
        expect(row(page, "Last week")).to_be_visible()
        assert listing(page) == ["Today", "This morning", "Earlier", "Last week"]
        expect(page.get_by_role("heading", name="Today")).to_be_visible()

        notify(bob, "Right now")
        expect(row(page, "Right now")).to_be_visible(timeout=5_000)
        assert listing(page) == ["Today", "Right now", "This morning", "Earlier", "Last week"]

        # A section left empty goes with its last row.
        row(page, "Last week").get_by_role("button", name="Archive: Last week").click()
        expect(row(page, "Last week")).to_have_count(0)
        assert listing(page) == ["Today", "Right now", "This morning"]


def test_archive_and_mark_unread_per_row_follow_in_another_tab_and_undo_on_failure(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    for title in ("First", "Second", "Third"):
        notify(bob, title)
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        page, other = open_home(context), open_home(context)
        open_panel(page)
        open_panel(other)
        expect(badge(page)).to_have_text("3")

        row(page, "First").get_by_role("button", name="Archive: First").click()
        expect(row(page, "First")).to_have_count(0)
        expect(badge(page)).to_have_text("2")
        expect(row(other, "First")).to_have_count(0, timeout=5_000)
        expect(badge(other)).to_have_text("2")

        row(page, "Second").get_by_role("button", name="Mark as read: Second").click()
        expect(badge(page)).to_have_text("1")
        unmark = row(page, "Second").get_by_role("button", name="Mark as unread: Second")
        expect(unmark).to_be_focused()  # the button changed under the pointer, the focus stays on it
        unmark.click()
        expect(row(page, "Second")).to_have_class(re.compile("livefeed-unread"))
        expect(badge(page)).to_have_text("2")
        expect(row(other, "Second")).to_have_class(re.compile("livefeed-unread"), timeout=5_000)
        expect(badge(other)).to_have_text("2")

        # The server cannot be reached: the row comes back, the count too, and it says so.
        failing = re.compile(r".*/(archive|unread)/$")
        page.route(failing, lambda route: route.abort("internetdisconnected"))
        row(page, "Third").get_by_role("button", name="Archive: Third").click()
        expect(page.get_by_role("alert")).to_have_text(re.compile("Could not reach the server"))
        expect(row(page, "Third")).to_be_visible()
        expect(badge(page)).to_have_text("2")
        assert [title for title in listing(page) if title not in ("Today", "Earlier")] == ["Third", "Second"]

        page.unroute(failing)
        page.reload()
        open_panel(page)
        expect(row(page, "Third")).to_be_visible()
        expect(row(page, "First")).to_have_count(0)  # archived for good


def test_the_badge_can_count_unseen_and_says_99_plus(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    send_notes(bob, 100)
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        page = open_home(context)
        expect(badge(page)).to_have_text("99+")
        open_panel(page)  # seen, still unread
        expect(page.locator(".livefeed-item").first).to_be_visible()

        unseen = open_home(context, "/?badge=unseen")
        expect(badge(unseen)).to_be_hidden()  # all seen
        expect(unseen.locator(".livefeed-spoken")).to_have_text("No new notifications")
        notify(bob, "Fresh")
        expect(badge(unseen)).to_have_text("1", timeout=5_000)
        expect(unseen.locator(".livefeed-spoken")).to_have_text("1 new notification")
        expect(badge(page)).to_have_text("99+")  # the default counts unread
        # The reloaded page must be served after the server heard of it (its request may still be in flight).
        with unseen.expect_response(lambda response: response.url.endswith("/seen-all/")):
            open_panel(unseen)
        expect(badge(unseen)).to_be_hidden()  # opening the dropdown sees them
        unseen.reload()
        expect(badge(unseen)).to_be_hidden()  # and the server knows


def test_a_list_counted_before_the_dropdown_marked_all_seen_does_not_put_the_old_count_back(daphne_servers):
    # Opening the dropdown asks for the list and marks everything seen at once; the server may
    # count the list's answer before the mark, and that answer may arrive last.
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    notify(bob, "Unseen")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob), "/?badge=unseen")
        expect(badge(page)).to_have_text("1")
        held = []
        page.route(re.compile(r".*/api/notifications/\?.*"), lambda route: held.append(route))  # held back
        with page.expect_response(lambda response: response.url.endswith("/seen-all/")):
            open_panel(page)
        expect(badge(page)).to_be_hidden()

        (route,) = held
        answer = route.fetch()
        route.fulfill(response=answer, json=answer.json() | {"unseen_count": 1})  # as counted before the mark
        expect(row(page, "Unseen")).to_be_visible()
        expect(badge(page)).to_be_hidden()


def test_an_actor_with_a_picture_shows_it_and_a_broken_one_falls_back_to_initials(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    ada, grace = make_user("ada", first_name="Ada"), make_user("grace", first_name="Grace")
    notify(bob, "With a picture", actor=ada)
    notify(bob, "With a broken one", actor=grace)
    pictures = {"Ada": "/avatars/ada.png", "Grace": "/avatars/missing.png"}
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))

        def with_pictures(route):  # what a site's LIVEFEED["AVATAR"] hook puts in the API's answer
            body = route.fetch().json()
            for item in body["results"]:
                if item["actor"]:
                    item["actor"]["avatar"] = pictures[item["actor"]["name"]]
            route.fulfill(json=body)

        page.route(re.compile(r".*/livefeed/api/notifications/\?.*"), with_pictures)
        page.route("**/avatars/ada.png", lambda route: route.fulfill(path=DOCS / "widget.png"))
        page.route("**/avatars/missing.png", lambda route: route.fulfill(status=404))
        open_panel(page)
        picture = row(page, "With a picture").locator(".livefeed-avatar img")
        expect(picture).to_have_attribute("src", re.compile(r"/avatars/ada\.png$"))
        expect(picture).to_have_attribute("alt", "")
        assert picture.evaluate("(img) => img.complete && img.naturalWidth > 0")
        broken = row(page, "With a broken one").locator(".livefeed-avatar")
        expect(broken.locator("img")).to_have_count(0)  # the initials show through
        expect(broken).to_have_text("G")
        expect(broken).to_be_visible()
