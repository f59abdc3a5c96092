"""The admin's compose page in a real browser: Preview → Send, one audience's fields, the list at 1280 px.

Real daphne and Debian's chromium, through tests/test_browser.py's helpers.
"""

import json

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

import livefeed
from livefeed.models import Notification
from tests.test_browser import DOCS, chromium, make_user, notify, off_loop, open_home, signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ADD_URL = "/admin/livefeed/notification/add/"
LIST_URL = "/admin/livefeed/notification/"
SUCCESS_GREEN = "rgb(26, 127, 55)"  # livefeed.css --livefeed-success (light scheme)
# The element tree (tag and classes) under a node, as the widget builds it.
STRUCTURE = """(node) => {
  const tree = (el) => [el.tagName.toLowerCase(), el.className, [...el.children].map(tree)];
  return tree(node);
}"""


def ops_group(size: int) -> Group:
    ops = Group.objects.create(name="Ops")
    ops.user_set.add(*(make_user(f"op{number}") for number in range(size)))
    return ops


def compose(admin: Page, audience: str, **fields: str) -> None:
    admin.goto(ADD_URL)
    admin.locator(f"input[name=audience][value={audience}]").check()
    for name, value in fields.items():
        field = admin.locator(f"#id_{name}")
        if name in ("level", "group"):
            field.select_option(label=value)
        else:
            field.fill(value)


def send_button(admin: Page):
    return admin.locator("input[name=_save]").last


def test_preview_then_send_shows_the_widgets_look_the_audience_and_the_figures(daphne_servers):
    (server,) = daphne_servers(1)
    staff = make_user("staff", is_staff=True, is_superuser=True)
    ops_group(4)
    actions = [{"label": "Open build", "url": "/builds/9/"}]
    with chromium() as browser:
        admin = signed_in(browser, server, staff, viewport={"width": 1280, "height": 900}).new_page()
        compose(
            admin,
            "group",
            group="Ops",
            title="Deploy finished",
            body="Version 2 is live.",
            level="success",
            url="/builds/9/",
            actions=json.dumps(actions),
        )
        expect(send_button(admin)).to_have_value("Send")
        admin.get_by_role("button", name="Preview").last.click()

        preview = admin.locator(".livefeed-preview")
        expect(preview).to_be_visible()
        expect(admin.locator(".errornote")).to_have_count(0)
        toast = preview.locator(".livefeed-toast")
        expect(toast.locator(".livefeed-toast-title")).to_have_text("Success: Deploy finished")
        expect(toast.locator(".livefeed-toast-body")).to_have_text("Version 2 is live.")
        expect(toast.locator(".livefeed-toast-title")).to_have_attribute("href", "/builds/9/")
        expect(toast.get_by_role("link", name="Open build")).to_be_visible()  # a GET action is a link, as in the widget
        expect(toast).to_have_css("border-left-color", SUCCESS_GREEN)  # the widget's own CSS
        row = preview.locator(".livefeed-item.livefeed-unread")
        expect(row.locator(".livefeed-title")).to_have_text("Success: Deploy finished")
        expect(row.locator(".livefeed-dot")).to_have_css("background-color", SUCCESS_GREEN)
        expect(send_button(admin)).to_have_value("Send to group Ops (4 members)")
        assert off_loop(Notification.objects.exists) is False  # a preview sends nothing
        admin.mouse.move(0, 0)
        admin.evaluate("document.activeElement.blur()")
        admin.screenshot(path=DOCS / "admin-compose.png")

        with admin.expect_navigation():
            send_button(admin).click()
        expect(admin.locator(".messagelist")).to_have_text("Sent “Deploy finished” to the group Ops (4 members).")

        admin.get_by_role("link", name="Deploy finished").click()
        for name, value in [("delivered", "4"), ("seen", "0"), ("read", "0"), ("archived", "0")]:
            expect(admin.locator(f".fieldBox.field-{name} .readonly")).to_have_text(value)


def test_the_audience_shows_only_its_own_field_and_the_users_field_says_how_to_search(daphne_servers):
    (server,) = daphne_servers(1)
    staff = make_user("staff", is_staff=True, is_superuser=True)
    bob = make_user("bob")
    with chromium() as browser:
        admin = signed_in(browser, server, staff).new_page()
        admin.goto(ADD_URL)
        users, group = admin.locator(".field-users"), admin.locator(".field-group")
        expect(users).to_be_visible()
        expect(group).to_be_hidden()
        expect(users.locator(".select2-search__field")).to_have_attribute("placeholder", "Type to search users…")
        expect(users.locator(".help")).to_contain_text("Type part of a username, first name, last name or email")
        expect(admin.locator(".field-data .help")).to_contain_text("JSON object, sent to the page as `data`")

        users.locator(".select2-selection").click()
        admin.keyboard.type("bob")
        admin.locator(".select2-results__option", has_text="bob").click()
        admin.locator("input[name=audience][value=group]").check()
        expect(users).to_be_hidden()
        expect(group).to_be_visible()
        admin.locator("input[name=audience][value=everyone]").check()
        expect(users).to_be_hidden()
        expect(group).to_be_hidden()

        # Bob, picked and then hidden, is not sent along: the server would refuse him for "everyone".
        admin.locator("#id_title").fill("To all")
        with admin.expect_navigation():
            send_button(admin).click()
        expect(admin.locator(".messagelist")).to_contain_text("Sent “To all” to everyone (2 users).")
        assert off_loop(lambda: bob.livefeed_notifications.get().title) == "To all"


def test_the_preview_is_built_like_the_widgets_toast_and_inbox_row(daphne_servers):
    (server,) = daphne_servers(1)
    staff = make_user("staff", is_staff=True, is_superuser=True)
    bob = make_user("bob")
    fields = {"title": "Disk usage at 85 %", "body": "The uploads volume is filling up.", "url": "/disks/"}
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        notify(bob, level="warning", **fields)
        toast = page.locator(".livefeed-toast")
        expect(toast).to_be_visible(timeout=5_000)
        page.locator(".livefeed-bell").click()
        row = page.locator(".livefeed-item").first
        expect(row).to_be_visible()
        widget = (toast.evaluate(STRUCTURE), row.evaluate(STRUCTURE))

        admin = signed_in(browser, server, staff).new_page()
        compose(admin, "everyone", level="warning", **fields)
        admin.get_by_role("button", name="Preview").last.click()
        preview = admin.locator(".livefeed-preview")
        built = (
            preview.locator(".livefeed-toast").evaluate(STRUCTURE),
            preview.locator(".livefeed-item").evaluate(STRUCTURE),
        )
        assert built == widget


def test_the_change_list_fits_a_1280_pixel_screen(daphne_servers):
    (server,) = daphne_servers(1)
    staff = make_user("staff", is_staff=True, is_superuser=True)
    team = Group.objects.create(name="Platform reliability and incident response")
    # One long word (a path) cannot wrap: the table grew past the screen, cut off by its scroll box.
    long_title = "Backup finished: s3://backups.example.com/postgres/main/2026-12-02T03:00:00Z/" + "full-base" * 12
    for _ in range(3):
        off_loop(livefeed.notify, group=team, title=long_title)
    with chromium() as browser:
        admin = signed_in(browser, server, staff, viewport={"width": 1280, "height": 800}).new_page()
        admin.goto(LIST_URL)
        table = admin.locator("#result_list")
        expect(table).to_be_visible()
        assert admin.evaluate("document.documentElement.scrollWidth") <= 1280
        # The admin wraps the table in a scroll box beside the filters: nothing may hide past its edge.
        assert admin.locator(".results").evaluate("(box) => box.scrollWidth <= box.clientWidth")
        expect(table.locator("tbody tr").first.locator(".field-short_title span")).to_have_attribute(
            "title", long_title
        )
