"""The preferences API and page (docs/notifications.md#preferences)."""

import json

import pytest
from django.test import Client

import livefeed
from livefeed.models import Delivery

URL = "/livefeed/api/preferences/"
CATEGORIES = {"billing": {"label": "Billing", "email": True}, "security": {"label": "Security", "required": True}}


@pytest.fixture(autouse=True)
def _categories(settings):
    settings.LIVEFEED = {"CATEGORIES": CATEGORIES}
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]


@pytest.fixture
def client(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/livefeed/api/notifications/")  # the CSRF cookie
    return client


def post(client, body):
    token = client.cookies["csrftoken"].value
    return client.post(URL, json.dumps(body), content_type="application/json", headers={"X-CSRFToken": token})


def test_get_lists_every_category_with_its_defaults(client):
    body = client.get(URL).json()

    assert body == {
        "language": "en-us",
        "languages": [["en", "English"], ["fr", "français"]],
        "categories": [
            {"key": "general", "label": "General", "in_app": True, "email": False, "required": False},
            {"key": "billing", "label": "Billing", "in_app": True, "email": True, "required": False},
            {"key": "security", "label": "Security", "in_app": True, "email": False, "required": True},
        ],
    }


def test_post_changes_one_category_and_answers_the_whole_state(client, alice):
    response = post(client, {"category": "billing", "in_app": False})

    assert response.status_code == 200
    billing = response.json()["categories"][1]
    assert (billing["key"], billing["in_app"], billing["email"]) == ("billing", False, True)
    livefeed.notify(alice, title="Invoice", category="billing")
    assert not Delivery.objects.exists()  # the choice holds for the next send


def test_post_sets_the_language(client):
    assert post(client, {"language": "fr"}).json()["language"] == "fr"
    assert client.get(URL).json()["language"] == "fr"


@pytest.mark.parametrize(
    "body",
    [
        {"category": "nope", "email": True},
        {"category": "billing", "email": "yes"},
        {"category": "security", "in_app": False},
        {"category": "security", "email": False},
        {"language": "xx"},
        {"email": False},
        {"colour": "red"},
        [],
    ],
)
def test_bad_changes_are_a_400_with_an_error(client, body):
    response = post(client, body)

    assert response.status_code == 400 and response.json()["error"]


def test_a_body_that_is_not_json_is_a_400(client):
    token = client.cookies["csrftoken"].value
    response = client.post(URL, "{", content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code == 400


def test_anonymous_is_a_401_and_a_post_without_csrf_a_403(db, client):
    assert Client().get(URL).status_code == 401
    assert Client().post(URL, "{}", content_type="application/json").status_code == 401
    response = client.post(URL, json.dumps({"language": "fr"}), content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]


def test_the_page_shows_and_saves_the_choices(client, alice):
    page = client.get("/livefeed/preferences/")
    assert page.status_code == 200 and b'name="billing:email" aria-label="Billing: by email" checked' in page.content

    token = client.cookies["csrftoken"].value
    saved = client.post("/livefeed/preferences/", {"csrfmiddlewaretoken": token, "general:in_app": "on"})

    assert saved.status_code == 200 and b"Saved." in saved.content
    billing = client.get(URL).json()["categories"][1]
    assert (billing["in_app"], billing["email"]) == (False, False)


def test_the_page_needs_a_sign_in_and_the_csrf_token(client, settings):
    anonymous = Client().get("/livefeed/preferences/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert client.post("/livefeed/preferences/", {"general:in_app": "on"}).status_code == 403


def test_the_widget_links_to_the_page(client):
    assert b'class="livefeed-settings" href="/livefeed/preferences/"' in client.get("/").content
