"""The demo pages of issue 6 in a real browser against real daphne: job, answer, live table.

Waits are conditions with a timeout (Playwright's expect), never sleeps.
"""

import pytest
from playwright.sync_api import Page, expect

from project.answers import stand_in_text
from project.models import Order
from tests import servers
from tests.test_browser import chromium, log_size, make_user, off_loop, open_home, signed_in, streams_opened

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Records every text the answer element shows, to prove it grew word by word.
WATCH_ANSWER = """() => {
    const output = document.querySelector(".demo-answer-output");
    window.shown = [];
    new MutationObserver(() => shown.push(output.textContent))
        .observe(output, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture(autouse=True)
def _publish_over_redis(redis_layer):
    """Send what this process publishes over the servers' Redis, as a shell or worker would."""


def open_page(context, path: str) -> Page:
    page = context.new_page()
    page.goto(path)
    expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "open", timeout=10_000)
    return page


def in_a_shell(env: dict[str, str], code: str) -> None:
    """Run code in `manage.py shell`: another process, publishing through Redis like a worker."""
    servers.manage(env, "shell", "-c", f"from project.models import Order; {code}")


def test_the_job_progress_bar_fills_to_100_percent(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_page(signed_in(browser, server, bob), "/demos/job/")
        page.get_by_role("button", name="Start the job").click()

        expect(page.locator(".demo-job-percent")).to_have_text("100%", timeout=10_000)
        expect(page.locator(".demo-job-bar")).to_have_js_property("value", 100)
        expect(page.locator("[data-demo-job]")).to_have_attribute("data-state", "done")
        expect(page.get_by_text("Done. A notification says so too")).to_be_visible()
        expect(page.get_by_role("button", name="Run it again")).to_be_enabled()
        # For when the user is on another page by then: a notification says it is done.
        expect(page.locator(".livefeed-toast", has_text="Your job finished")).to_be_visible(timeout=10_000)


def test_a_follower_tab_subscribes_through_the_leaders_one_stream(daphne_servers):
    (server,) = daphne_servers(1, LIVEFEED_LOG_LEVEL="DEBUG")
    bob = make_user("bob")
    with chromium() as browser:
        context = signed_in(browser, server, bob)
        since = log_size(server)
        open_home(context)  # the first tab leads and holds the stream
        follower = open_page(context, "/demos/job/")
        follower.get_by_role("button", name="Start the job").click()

        expect(follower.locator(".demo-job-percent")).to_have_text("100%", timeout=10_000)
        # The leader's stream, then once more with the job's channel added: no stream of its own.
        assert streams_opened(server, since) == 2


@pytest.mark.parametrize(
    "button", ["Ask (over the shared stream)", "Ask (fetch() POST stream)"], ids=["channel", "fetch"]
)
def test_the_answer_appears_word_by_word_complete_and_in_order(daphne_servers, button):
    (server,) = daphne_servers(1)
    prompt = "Why <b>SSE</b>?"  # markup stays text
    bob = make_user("bob")
    with chromium() as browser:
        page = open_page(signed_in(browser, server, bob), "/demos/answer/")
        page.evaluate(WATCH_ANSWER)
        page.locator("#demo-prompt").fill(prompt)
        page.get_by_role("button", name=button).click()

        output = page.locator(".demo-answer-output")
        expect(output).to_have_attribute("data-status", "complete", timeout=15_000)
        expected = stand_in_text(prompt)
        assert output.text_content() == expected
        shown = page.evaluate("shown")
        assert len(shown) > 10  # it arrived in pieces, not at the end
        assert all(expected.startswith(text) for text in shown)  # every piece in order
        expect(page.locator(".demo-answer-output b")).to_have_count(0)


def test_the_table_follows_orders_saved_in_another_process(daphne_servers, database_url, redis_url):
    (server,) = daphne_servers(1)
    shell = servers.server_env(database_url, redis_url)
    bob = make_user("bob")
    with chromium() as browser:
        page = open_page(signed_in(browser, server, bob), "/demos/orders/")
        expect(page.get_by_text("No orders yet")).to_be_visible()
        in_a_shell(shell, "Order.objects.create(customer='Ada', item='Lamp', total=25)")
        expect(page.get_by_text("No orders yet")).to_be_hidden(timeout=10_000)
        pk = off_loop(lambda: Order.objects.get().pk)
        row = page.locator(f'tr[data-pk="{pk}"]')
        expect(row.locator('[data-field="status"]')).to_have_text("new")
        expect(row).to_have_class("demo-changed")  # a change is highlighted
        page.evaluate(
            """() => {
                window.heard = [];
                document.addEventListener("livefeed:order.updated", (e) => heard.push(e.detail.status));
            }"""
        )

        in_a_shell(shell, f"o = Order.objects.get(pk={pk}); o.status = 'shipped'; o.quantity = 3; o.save()")
        expect(row.locator('[data-field="status"]')).to_have_text("shipped", timeout=10_000)
        expect(row.locator('[data-field="quantity"]')).to_have_text("3")
        assert page.evaluate("heard") == ["shipped"]  # page code hears it as a DOM event too

        in_a_shell(
            shell,
            f"Order.objects.create(customer='Grace', item='Desk', total='99.50'); Order.objects.get(pk={pk}).delete()",
        )
        grace = page.locator("tr", has_text="Grace")
        expect(grace.locator('[data-field="total"]')).to_have_text("99.50", timeout=10_000)
        expect(row).to_have_count(0)
