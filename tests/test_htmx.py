"""?format=html: the same stream with notifications as HTML fragments, for htmx."""

import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test.signals import template_rendered

import livefeed
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = "<script>alert(1)</script> & more"


@pytest.fixture
def alice():
    user = User.objects.create_user("alice", password="x")
    return user, session_for(user)


@pytest.fixture
def renders():
    """The names of the templates rendered meanwhile (Django's test renderer reports each)."""
    names: list[str] = []

    def record(sender, template, **kwargs):
        names.append(template.name)

    template_rendered.connect(record)
    yield names
    template_rendered.disconnect(record)


def notify(user, **fields):
    return sync_to_async(livefeed.notify)(recipient=user, **{"title": HOSTILE, "body": "one\ntwo", **fields})


def test_notifications_arrive_as_escaped_html_and_other_events_as_json(alice):
    user, key = alice

    async def scenario():
        stream = await (await Stream("/livefeed/stream/?format=html", session_key=key).open()).connected()
        await notify(user, url="/inbox/")
        await sync_to_async(livefeed.publish)(f"user.{user.pk}", "tick", {"n": 1})
        events = await stream.events(2)
        await stream.close()
        return events

    notification, tick = run(scenario)
    assert notification.type == "notification"
    assert "<script>" not in notification.data
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in notification.data
    assert '<a href="/inbox/">' in notification.data
    # The body's line break was sent as a second data: line, and comes back as a line break.
    assert re.search(r"<p>one\ntwo</p>", notification.data)
    assert notification.data.startswith('<div class="livefeed-notification livefeed-level-info"')
    assert (tick.type, json.loads(tick.data)) == ("tick", {"n": 1})


def test_one_render_per_event_however_many_html_streams_and_json_streams_unchanged(alice, renders):
    user, key = alice

    async def scenario():
        paths = ["/livefeed/stream/?format=html"] * 3 + ["/livefeed/stream/", "/livefeed/stream/?format=json"]
        streams = [await (await Stream(path, session_key=key).open()).connected() for path in paths]
        await notify(user)
        received = []
        for stream in streams:
            received.append((await stream.events(1))[0].data)
            await stream.close()
        return received

    *html, plain, also_plain = run(scenario)
    assert renders.count("livefeed/notification.html") == 1
    assert html[0] == html[1] == html[2] and "&lt;script&gt;" in html[0]
    assert json.loads(plain)["title"] == json.loads(also_plain)["title"] == HOSTILE


def test_replay_after_last_event_id_is_html_too(alice):
    user, key = alice

    async def scenario():
        first = await (await Stream("/livefeed/stream/?format=html", session_key=key).open()).connected()
        await notify(user, title="first")
        (seen,) = await first.events(1)
        await first.close()
        await notify(user, title="missed")
        headers = [("last-event-id", seen.last_event_id)]
        again = await Stream("/livefeed/stream/?format=html", session_key=key, headers=headers).open()
        events = await again.events(1)
        await again.close()
        return events

    (missed,) = run(scenario)
    assert missed.type == "notification"
    assert "<strong>missed</strong>" in missed.data


def test_an_unknown_format_is_400_json(alice):
    async def scenario():
        answer = await Stream("/livefeed/stream/?format=xml", session_key=alice[1]).open()
        return answer.status, await answer.json()

    status, body = run(scenario)
    assert status == 400
    assert "format" in body["error"]


def test_anonymous_html_stream_is_401_like_any_other():
    async def scenario():
        answer = await Stream("/livefeed/stream/?format=html").open()
        return answer.status, await answer.json()

    assert run(scenario)[0] == 401


def test_a_template_that_fails_to_render_sends_json_and_the_stream_goes_on(alice, settings, tmp_path):
    (tmp_path / "livefeed").mkdir()
    (tmp_path / "livefeed" / "notification.html").write_text("{% url 'no-such-view' %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    user, key = alice

    async def scenario():
        stream = await (await Stream("/livefeed/stream/?format=html", session_key=key).open()).connected()
        await notify(user, title="one")
        await notify(user, title="two")
        events = await stream.events(2)
        await stream.close()
        return events

    assert [json.loads(event.data)["title"] for event in run(scenario)] == ["one", "two"]
