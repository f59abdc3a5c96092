"""The widget in a real browser: Playwright drives Debian's chromium against real daphne.

Playwright's sync API keeps an event loop running in this thread, where Django
refuses ORM calls and livefeed.publish() refuses to run, so everything that
touches the database while a browser is open goes through `off_loop`.
Waits are conditions with a timeout (Playwright's expect), never sleeps.
"""

import contextlib
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections
from django.db.models import Max
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

import livefeed
from livefeed.models import Event, Notification
from livefeed.notifications import announce
from tests import servers
from tests.streams import session_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DOCS = Path(__file__).resolve().parent.parent / "docs"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _publish_over_redis(redis_layer):
    """Send what this process publishes over the servers' Redis, as a shell or worker would."""


@contextlib.contextmanager
def chromium():
    """Yield a headless chromium, closed (with Playwright's loop) before the test's DB teardown."""
    executable = shutil.which("chromium")
    if not executable:
        pytest.fail("chromium is not installed: run `bash scripts/test-deps.sh`.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def off_loop(function, *args, **kwargs):
    """Run function in a fresh thread, as a shell or a worker would, and return its result."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=30)


def send_notes(user, count: int) -> None:
    """Notify user count times ("Note 0" first), from another thread as a worker would."""

    def notes():
        for number in range(count):
            livefeed.notify(recipient=user, title=f"Note {number}")

    off_loop(notes)


def notify(user, title: str, **fields) -> int:
    return off_loop(lambda: livefeed.notify(recipient=user, title=title, **fields).pk)


def make_user(username: str, **fields):
    return get_user_model().objects.create_user(username, password=f"{username}-pw", **fields)


def base_url(server: servers.Process) -> str:
    return f"http://127.0.0.1:{server.port}"


def signed_in(browser: Browser, server: servers.Process, user, **options):
    """Return a browser context (one "browser profile") signed in as user."""
    context = browser.new_context(base_url=base_url(server), **options)
    sign_in(context, server, user)
    return context


def sign_in(context, server: servers.Process, user) -> None:
    """Give a browser context the cookie of a new session signed in as user."""
    session_key = off_loop(session_for, user)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": base_url(server)}])


def open_home(context, path: str = "/") -> Page:
    """Open a page of the demo site with the widget and wait until its stream is open."""
    page = context.new_page()
    page.goto(path)
    expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "open", timeout=10_000)
    return page


def badge(page: Page):
    return page.locator(".livefeed-count")


def toasts(page: Page, title: str):
    return page.locator(".livefeed-toast-title", has_text=title)


def streams_opened(server: servers.Process, since: int) -> int:
    """Count the streams the server opened since a log offset (LIVEFEED_LOG_LEVEL=DEBUG)."""
    log = (servers.ARTIFACTS / f"daphne-{server.port}.log").read_bytes()[since:]
    # The line may be printed by livefeed's handler and again by the root logger's.
    plain = re.findall(rb"^Stream opened", log, re.MULTILINE)
    formatted = re.findall(rb"DEBUG +Stream opened", log)
    return max(len(plain), len(formatted))


def log_size(server: servers.Process) -> int:
    return (servers.ARTIFACTS / f"daphne-{server.port}.log").stat().st_size


def test_admin_send_reaches_the_recipient_live_and_nobody_else(daphne_servers):
    (server,) = daphne_servers(1)
    alice = make_user("alice", is_staff=True, is_superuser=True)
    bob, carol = make_user("bob"), make_user("carol")
    with chromium() as browser:
        bob_page = open_home(signed_in(browser, server, bob))
        carol_page = open_home(signed_in(browser, server, carol))
        expect(badge(bob_page)).to_be_hidden()
        bob_page.evaluate("window.sameDocument = true")

        admin = signed_in(browser, server, alice).new_page()
        admin.goto("/admin/livefeed/notification/add/")
        admin.locator("input[name=audience][value=user]").check()
        admin.locator(".field-users .select2-selection").click()
        admin.keyboard.type("bob")
        admin.locator(".select2-results__option", has_text="bob").click()
        admin.locator("#id_title").fill("Deploy finished")
        admin.locator("#id_body").fill("Version 2 is live.")
        admin.locator("#id_level").select_option("success")
        with admin.expect_navigation():
            admin.locator("input[name=_save]").click()
        expect(admin.locator(".messagelist")).to_be_visible()

        # Live, without a reload: the toast shows and the badge goes up.
        expect(toasts(bob_page, "Deploy finished")).to_be_visible(timeout=2_000)
        expect(badge(bob_page)).to_have_text("1")
        expect(bob_page.locator(".livefeed-spoken")).to_have_text("1 unread notification")
        assert bob_page.evaluate("window.sameDocument") is True  # no reload happened
        # Bob's event has arrived, so one misrouted to Carol would have too.
        expect(carol_page.locator(".livefeed-toast")).to_have_count(0)
        expect(badge(carol_page)).to_be_hidden()
        carol_page.locator(".livefeed-bell").click()
        expect(carol_page.locator(".livefeed-empty")).to_be_visible()


def test_mark_read_in_one_tab_updates_the_badge_in_another(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    for title in ("First", "Second", "Third"):
        off_loop(livefeed.notify, recipient=bob, title=title)
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        first, second = open_home(context), open_home(context)
        expect(badge(first)).to_have_text("3")
        expect(badge(second)).to_have_text("3")

        first.locator(".livefeed-bell").click()
        item = first.locator(".livefeed-item", has_text="Second")
        item.get_by_role("button", name="Mark as read").click()
        expect(item).not_to_have_class(re.compile("livefeed-unread"))
        expect(badge(first)).to_have_text("2")
        expect(badge(second)).to_have_text("2")

        second.locator(".livefeed-bell").click()
        expect(second.locator(".livefeed-unread")).to_have_count(2)
        second.get_by_role("button", name="Mark all as read").click()
        expect(badge(second)).to_be_hidden()
        expect(badge(first)).to_be_hidden()
        expect(first.locator(".livefeed-unread")).to_have_count(0)
        expect(first.locator(".livefeed-spoken")).to_have_text("No unread notifications")


def test_notification_sent_while_the_server_is_down_shows_once_after_restart(daphne_servers):
    (server,) = daphne_servers(1, LIVEFEED_SHUTDOWN_SPREAD="500")
    bob = make_user("bob")
    off_loop(livefeed.notify, recipient=bob, title="Before")  # the page resumes after its event
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        page.evaluate("addEventListener('livefeed:reset', () => { window.resets = (window.resets || 0) + 1 })")
        server.stop()
        expect(page.locator(".livefeed-conn")).not_to_have_attribute("data-state", "open", timeout=5_000)
        notify(bob, "Sent while down")
        server.start()  # the same port

        # SIGTERM ends streams with a retry of RETRY + up to SHUTDOWN_SPREAD (3 + 0.5 s).
        expect(toasts(page, "Sent while down")).to_be_visible(timeout=10_000)
        expect(badge(page)).to_have_text("2")
        # A later event arrives after any duplicate of the first would have.
        notify(bob, "Sent after restart")
        expect(toasts(page, "Sent after restart")).to_be_visible(timeout=5_000)
        expect(toasts(page, "Sent while down")).to_have_count(1)
        expect(badge(page)).to_have_text("3")
        page.locator(".livefeed-bell").click()
        expect(page.locator(".livefeed-item")).to_have_count(3)
        expect(page.locator(".livefeed-item", has_text="Sent while down")).to_have_count(1)
        # Replayed after Last-Event-ID, not recovered through a reset.
        assert page.evaluate("window.resets") is None


def test_stream_is_recreated_after_the_browser_gives_up_on_a_502(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        failures: list[str] = []

        def deploying(route):
            # A proxy answering 502 during a deploy: a native EventSource closes for good.
            if len(failures) < 2:
                failures.append(route.request.url)
                route.fulfill(status=502, body="Bad Gateway")
            else:
                route.continue_()

        # An empty log, whose ids have moved on in earlier tests: the server may
        # answer the page's resume point with a reset, and the page catches up.
        context.route(re.compile(r".*/livefeed/stream/.*"), deploying)
        page = context.new_page()
        page.goto("/")
        expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "offline", timeout=5_000)
        notify(bob, "Sent during the deploy")
        expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "open", timeout=10_000)
        expect(toasts(page, "Sent during the deploy")).to_be_visible(timeout=5_000)
        expect(badge(page)).to_have_text("1")
        assert len(failures) == 2


@pytest.mark.parametrize("election", ["web-locks", "broadcast-channel"])
def test_three_tabs_share_one_stream_and_a_new_leader_loses_nothing(daphne_servers, election):
    (server,) = daphne_servers(1, LIVEFEED_LOG_LEVEL="DEBUG")
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        if election == "broadcast-channel":  # a browser without Web Locks: heartbeats elect
            context.add_init_script("Object.defineProperty(navigator, 'locks', {value: undefined})")
        since = log_size(server)
        tabs = [open_home(context) for _ in range(3)]
        assert tabs[0].evaluate("navigator.locks === undefined") == (election == "broadcast-channel")
        notify(bob, "To every tab")
        for tab in tabs:
            expect(toasts(tab, "To every tab")).to_be_visible(timeout=5_000)
            expect(badge(tab)).to_have_text("1")
        assert streams_opened(server, since) == 1

        tabs[0].close()  # the leader: another tab takes over and resumes after the last id
        notify(bob, "After the leader left")
        for tab in tabs[1:]:
            expect(toasts(tab, "After the leader left")).to_be_visible(timeout=10_000)
            expect(badge(tab)).to_have_text("2")
        if election == "web-locks":
            assert streams_opened(server, since) == 2
        else:  # both followers may claim at once; the one with the larger id steps down
            assert streams_opened(server, since) in (2, 3)


def test_a_tab_opened_after_signing_in_again_is_live_not_stuck_behind_a_signed_out_leader(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        leader, tab = open_home(context), open_home(context)
        refused = []

        def refused_twice(response) -> bool:
            # The browser's own reconnect, then the widget's retry: the leader has given up.
            if "/livefeed/stream/" in response.url and response.status == 401:
                refused.append(response.url)
            return len(refused) == 2

        with leader.expect_response(refused_twice, timeout=20_000):
            tab.get_by_role("button", name="Sign out").click()  # ends this session's streams
        expect(leader.locator(".livefeed-conn")).to_have_attribute("data-state", "signed-out")

        # Signed in again (a new session), the tab opens the home page.
        sign_in(context, server, bob)
        tab.goto("/")
        expect(tab.locator(".livefeed-conn")).to_have_attribute("data-state", "open", timeout=10_000)
        notify(bob, "Welcome back")
        for page in (tab, leader):
            expect(toasts(page, "Welcome back")).to_be_visible(timeout=5_000)
            expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "open")


def test_a_notification_resent_as_unread_counts_again_in_the_page_that_read_it(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        pk = notify(bob, "Read me twice")
        expect(toasts(page, "Read me twice")).to_be_visible(timeout=5_000)
        page.locator(".livefeed-bell").click()
        item = page.locator(".livefeed-item", has_text="Read me twice")
        with page.expect_response(lambda response: response.url.endswith(f"/{pk}/read/")):
            item.get_by_role("button", name="Mark as read").click()
        expect(badge(page)).to_be_hidden()

        def resend():  # what the admin's "Resend selected notifications as unread" does
            notification = Notification.objects.get(pk=pk)
            notification.deliveries.mark_unread()
            announce(notification)

        off_loop(resend)
        expect(badge(page)).to_have_text("1", timeout=5_000)
        expect(item).to_have_class(re.compile("livefeed-unread"))
        expect(toasts(page, "Read me twice")).to_have_count(0, timeout=10_000)  # the first toast went; no second


def test_a_group_notification_the_server_counted_is_not_counted_again_when_replayed(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    staff = Group.objects.create(name="staff")
    bob.groups.add(staff)
    before = Event.objects.aggregate(high=Max("id"))["high"] or 0
    off_loop(livefeed.notify, group=staff, title="For the group")
    with chromium() as browser:
        context = signed_in(browser, server, bob)

        def rendered_in_between(route):
            # The page reads the log position, then the counts: an event committed in
            # between is replayed to a page whose count already has it.
            response = route.fetch()
            body = re.sub(r'data-last-event-id="\d+"', f'data-last-event-id="{before}"', response.text())
            route.fulfill(response=response, body=body)

        context.route(f"{base_url(server)}/", rendered_in_between)
        page = open_home(context)
        expect(toasts(page, "For the group")).to_be_visible(timeout=5_000)
        expect(badge(page)).to_have_text("1")


def test_every_event_reaches_page_code_as_a_dom_event_in_every_tab(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        leader, follower = open_home(context), open_home(context)
        follower.evaluate(
            """() => {
                window.heard = [];
                const root = document.querySelector("[data-livefeed]");
                for (const target of [root, document]) {
                    target.addEventListener("livefeed:notification", (e) => heard.push(e.detail.title));
                }
                livefeed.on("deploy", (detail) => heard.push(detail.version));
            }"""
        )
        # Only the follower's page code asked for "deploy": the leader learns to listen for it.
        off_loop(livefeed.publish, f"user.{bob.pk}", "deploy", {"version": "v2"})
        follower.wait_for_function("heard.length === 1", timeout=5_000)
        # home.html's demo.js listens with livefeed.on("progress", ...) in both tabs.
        off_loop(livefeed.publish, f"user.{bob.pk}", "progress", {"done": 3, "total": 10})
        for tab in (leader, follower):
            expect(tab.locator("#demo-progress")).to_have_attribute("max", "10")
            expect(tab.locator("#demo-progress")).to_have_js_property("value", 3)
        notify(bob, "Heard by page code")
        follower.wait_for_function("heard.length === 3", timeout=5_000)
        assert follower.evaluate("heard") == ["v2", "Heard by page code", "Heard by page code"]


def stream_only_page(user) -> str:
    """Return a page that includes livefeed/stream.html and no widget, rendered for user."""
    from django.template import Context, Template
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    include = Template('{% include "livefeed/stream.html" with livefeed_events="deploy" %}')
    return f'<!doctype html><html lang="en"><body>{include.render(Context({"request": request}))}</body></html>'


def test_a_page_with_the_stream_alone_shares_the_one_connection_with_the_widget(daphne_servers):
    (server,) = daphne_servers(1, LIVEFEED_LOG_LEVEL="DEBUG")
    bob = make_user("bob")
    html = off_loop(stream_only_page, bob)
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        page = {"body": html, "content_type": "text/html"}
        context.route(f"{base_url(server)}/dashboard/", lambda route: route.fulfill(**page))
        since = log_size(server)
        dashboard = context.new_page()
        dashboard.goto("/dashboard/")  # the first tab: it leads, without a bell
        dashboard.evaluate("() => { window.heard = []; livefeed.on('deploy', (detail) => heard.push(detail.version)) }")
        home = open_home(context)  # the widget follows it, and shows its connection
        off_loop(livefeed.publish, f"user.{bob.pk}", "deploy", {"version": "v3"})
        notify(bob, "Seen in the widget")

        expect(toasts(home, "Seen in the widget")).to_be_visible(timeout=5_000)
        dashboard.wait_for_function("heard.length === 1", timeout=5_000)
        assert dashboard.evaluate("heard") == ["v3"]
        assert dashboard.evaluate("Object.keys(livefeed)") == ["on", "subscribe"]
        expect(dashboard.locator(".livefeed-bell")).to_have_count(0)
        assert streams_opened(server, since) == 1


def test_markup_in_a_title_is_shown_as_text_and_never_runs(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        dialogs: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        notify(bob, XSS, body="<script>alert(2)</script>")

        expect(toasts(page, XSS)).to_be_visible(timeout=5_000)
        expect(page.locator(".livefeed-toast-body")).to_have_text("<script>alert(2)</script>")
        page.locator(".livefeed-bell").click()
        expect(page.locator(".livefeed-item .livefeed-title")).to_contain_text(XSS)
        expect(page.locator(".livefeed img, .livefeed script")).to_have_count(0)
        assert dialogs == []
        expect(page.locator(".livefeed-toast")).to_have_count(0, timeout=10_000)  # auto-dismissed


def test_a_storm_of_notifications_becomes_one_summary_toast(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))

        def storm():
            from django.db import transaction

            with transaction.atomic():  # all six go out back to back at commit
                for number in range(6):
                    livefeed.notify(recipient=bob, title=f"Storm {number}")

        off_loop(storm)
        expect(page.locator(".livefeed-summary")).to_contain_text("6 new notifications", timeout=5_000)
        expect(page.locator(".livefeed-toast")).to_have_count(1)
        expect(badge(page)).to_have_text("6")
        page.locator(".livefeed-summary").get_by_role("button", name="Show").click()
        expect(page.locator(".livefeed-item")).to_have_count(6)


def test_dropdown_pages_to_older_notifications_and_is_keyboard_operable(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    send_notes(bob, 25)
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        expect(badge(page)).to_have_text("25")
        bell = page.locator(".livefeed-bell")
        bell.focus()
        page.keyboard.press("Enter")
        expect(bell).to_have_attribute("aria-expanded", "true")
        items = page.locator(".livefeed-item .livefeed-title")
        expect(items).to_have_count(20)
        expect(items.first).to_contain_text("Note 24")  # newest first
        items.last.scroll_into_view_if_needed()
        expect(items).to_have_count(25)
        expect(items.last).to_contain_text("Note 0")

        page.keyboard.press("ArrowDown")
        expect(page.locator(".livefeed-main").first).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator(".livefeed-panel")).to_be_hidden()
        expect(bell).to_be_focused()


def test_after_a_database_restore_the_page_resumes_from_the_resets_id(daphne_servers):
    """A page whose last id is above the log's newest gets one reset, then resumes from the reset's id."""
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)

        def rendered_before_the_restore(route):
            response = route.fetch()
            body = re.sub(r'data-last-event-id="\d+"', 'data-last-event-id="999999999"', response.text())
            route.fulfill(response=response, body=body)

        context.route(f"{base_url(server)}/", rendered_before_the_restore)
        context.add_init_script(
            "document.addEventListener('livefeed:reset', () => { window.resets = (window.resets || 0) + 1 })"
        )
        page = open_home(context)
        page.wait_for_function("window.resets === 1")
        off_loop(livefeed.publish, "orders", "ping", {})  # on a channel the page does not read yet
        # A new channel makes the widget open a new stream from its own resume point, which
        # replays the event; from its stale id it would get a second reset instead, and never the event.
        page.evaluate("() => { livefeed.subscribe('orders', {ping: () => { window.pings = 1 }}) }")
        page.wait_for_function("window.pings === 1")
        assert page.evaluate("window.resets") == 1
