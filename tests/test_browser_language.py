"""The preferences page in a real browser (Debian's chromium via Playwright, real daphne): reached from the
widget's gear, it saves a category's email and the language, and livefeed then speaks French."""

import re

import pytest
from django.utils.translation import gettext_lazy
from playwright.sync_api import expect

import livefeed
from livefeed.models import Preference
from tests.test_browser import (  # noqa: F401 (_publish_over_redis is an autouse fixture)
    _publish_over_redis,
    chromium,
    make_user,
    off_loop,
    open_home,
    signed_in,
    toasts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def email_choice(user, key: str) -> bool | None:
    # The servers run the demo's settings, with its categories; this process has none.
    return off_loop(lambda: Preference.objects.get(user=user, category=key).email)


def test_the_gear_opens_the_preferences_where_email_and_french_are_chosen(daphne_servers):
    (server,) = daphne_servers(1)
    bob = make_user("bob")
    off_loop(Preference.objects.create, user=bob, category="mentions", email=False)
    with chromium() as browser:
        page = open_home(signed_in(browser, server, bob))
        page.locator(".livefeed-bell").click()
        page.get_by_role("link", name="Notification settings").click()
        expect(page).to_have_url(re.compile(r"/livefeed/preferences/$"))

        page.get_by_label("Mentions: by email").check()
        page.get_by_label("Language").select_option("fr")
        page.get_by_role("button", name="Save").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("Paramètres des notifications")
        expect(page.get_by_role("status")).to_have_text("Enregistré.")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.get_by_label("Mentions: par e-mail")).to_be_checked()
        assert email_choice(bob, "mentions") is True

        page.goto("/")  # the widget, and the stream it opens, now read French
        expect(page.locator(".livefeed-conn")).to_have_attribute("data-state", "open", timeout=10_000)
        expect(page.locator(".livefeed-settings")).to_have_attribute("title", "Paramètres des notifications")
        # One event for everyone: the server renders it in the language this stream's reader chose.
        off_loop(
            livefeed.notify, everyone=True, title=gettext_lazy("%(actor)s sent you a note"), params={"actor": "alice"}
        )
        expect(toasts(page, "alice vous a envoyé un mot")).to_be_visible(timeout=5_000)
        expect(page.locator(".livefeed-toast").get_by_role("button", name="Fermer")).to_be_visible()
        page.locator(".livefeed-bell").click()  # the row's age too, though the page itself is English
        expect(page.locator(".livefeed-list .livefeed-title")).to_contain_text("alice vous a envoyé un mot")
        expect(page.locator(".livefeed-list .livefeed-time")).to_have_text(re.compile("maintenant|il y a"))
