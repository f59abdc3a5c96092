"""Hostile input to the stream view: a clear 4xx or a clean stream, never a 500 or a hang."""

from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import livefeed
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)

# What an HTTP/1.1 server lets through in a header value: Latin-1 without CR/LF.
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255, blacklist_characters="\r\n"), max_size=60)
query_text = st.text(max_size=120)


@pytest.fixture
def session_key():
    user = User.objects.create_user("mallory", password="x")
    livefeed.publish(f"user.{user.pk}", "notification", {"n": 0})
    return session_for(user)


def _open(session_key, query, last_event_id):
    async def scenario():
        stream = Stream(f"/livefeed/stream/?{query}", session_key=session_key)
        stream.communicator.scope["headers"].append((b"last-event-id", last_event_id.encode("latin-1")))
        await stream.open()
        if stream.status == 200:
            await stream.connected()
        else:
            await stream.json()
        await stream.close()
        return stream

    return run(scenario)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    last_event_id=header_text,
    channels=st.lists(query_text, max_size=3),
    extra=st.dictionaries(query_text, query_text, max_size=2),
)
def test_any_input_gets_a_stream_or_a_clear_error(session_key, last_event_id, channels, extra):
    query = urlencode([("channel", name) for name in channels] + list(extra.items()))
    stream = _open(session_key, query, last_event_id)
    if stream.status == 200:
        assert stream.body.startswith(b"retry: 3000\n")
        # Whatever the resume point, nothing but whole events from the log came back.
        assert all(event.type in {"notification", "reset"} for event in stream.parser.events)
    else:
        assert stream.status in {400, 403}
        assert stream.headers["content-type"] == "application/json"


@pytest.mark.parametrize("value", ["-5", "99999999999999999999999999", "1e9", "0x10", "\x00", "１２", "٣"])
def test_odd_last_event_ids_resume_from_nowhere(session_key, value):
    stream = _open(session_key, urlencode({"lastEventId": value}), "")
    assert stream.status == 200
    assert stream.parser.events == []  # treated as absent: nothing replayed, no error
