"""Slow and stuck clients: a stream that falls behind is closed and catches up from the log."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

import livefeed
from livefeed import hub
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def publish(channel, data):
    return sync_to_async(livefeed.publish)(channel, "tick", data)


async def _drained() -> None:
    """Wait until every open stream took what its mailbox held."""
    while any(reader.items for reader in hub.get_hub().streams):
        await asyncio.sleep(0)


def test_an_event_after_an_overflow_never_overtakes_the_dropped_ones(settings):
    """Once a stream dropped an event, nothing later reaches it, even after its mailbox drained."""
    settings.LIVEFEED = {"QUEUE_SIZE": 3}
    user = User.objects.create_user("alice", password="x")
    key, channel = session_for(user), f"user.{user.pk}"

    async def scenario():
        stream = await (await Stream(session_key=key, client_buffer=1).open()).connected()
        for n in range(10):  # the client reads nothing meanwhile: the mailbox overflows
            await publish(channel, {"n": n})
        await stream.chunk()  # the client reads a little: the stream takes its whole mailbox
        await _drained()
        await publish(channel, {"n": 10})  # room again in the mailbox, but events 4..9 were dropped
        await stream.finish()
        again = await Stream(session_key=key, headers=[("last-event-id", stream.parser.last_event_id)]).open()
        await publish(channel, {"n": 11})  # a marker: the replay is complete once it arrives
        while not again.parser.events or json.loads(again.parser.events[-1].data)["n"] != 11:
            await again.chunk()
        await again.close()
        return stream.parser.events + again.parser.events

    events = run(scenario)
    assert [json.loads(e.data)["n"] for e in events] == list(range(12))
