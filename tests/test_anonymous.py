"""Anonymous streams (ALLOW_ANONYMOUS): public events only, and a cap per client address (issue 11, item 10)."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import override_settings

import livefeed
from livefeed import channels
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def anonymous(query="", address="127.0.0.1"):
    stream = Stream(f"/livefeed/stream/{query}")
    stream.communicator.scope["client"] = (address, 50000)
    return stream


async def _until_marker(stream):
    """Return the events before the first marker: events arrive (and replay) in order."""
    while not any(e.type == "marker" for e in stream.parser.events):
        await stream.chunk()
    types = [e.type for e in stream.parser.events]
    return [(e.type, json.loads(e.data)) for e in stream.parser.events[: types.index("marker")]]


@override_settings(LIVEFEED={"ALLOW_ANONYMOUS": True})
def test_everyone_notifications_reach_signed_in_streams_never_anonymous_ones():
    key = session_for(User.objects.create_user("alice", password="x"))

    def send():
        livefeed.notify(everyone=True, title="Salaries are paid on Friday")
        livefeed.publish("broadcast", "marker", {})

    async def scenario():
        visitor = await (await anonymous().open()).connected()
        member = await (await Stream(session_key=key).open()).connected()
        await sync_to_async(send)()
        seen_by = {"visitor": await _until_marker(visitor), "member": await _until_marker(member)}
        await visitor.close()
        await member.close()
        # Nor can a visitor replay it (the log up to the marker), or ask for it.
        replaying = await (await anonymous("?lastEventId=0").open()).connected()
        seen_by["replay"] = await _until_marker(replaying)
        await replaying.close()
        asked = await anonymous("?channel=users").open()
        return seen_by, asked.status

    seen_by, status = run(scenario)
    assert [data["title"] for _, data in seen_by["member"]] == ["Salaries are paid on Friday"]
    assert seen_by["visitor"] == [] and seen_by["replay"] == []
    assert status == 403


@override_settings(LIVEFEED={"ALLOW_ANONYMOUS": True, "MAX_ANONYMOUS_STREAMS_PER_ADDRESS": 2})
def test_anonymous_streams_are_capped_per_client_address():
    async def scenario():
        first = await anonymous().open()
        second = await anonymous().open()
        third = await anonymous().open()
        refused = await third.json()
        elsewhere = await anonymous(address="192.0.2.7").open()
        await first.close()
        again = await anonymous().open()  # a closed stream frees its slot
        for stream in (second, elsewhere, again):
            await stream.close()
        return [s.status for s in (first, second, third, elsewhere, again)], refused

    statuses, refused = run(scenario)
    assert statuses == [200, 200, 429, 200, 200]
    assert "address" in refused["error"]


@override_settings(LIVEFEED={"ALLOW_ANONYMOUS": True})
def test_no_pattern_or_hook_opens_the_signed_in_channel_to_a_visitor(monkeypatch):
    monkeypatch.setattr(channels, "_patterns", {})
    livefeed.register_channel("{room}", authorize=lambda user, room: True)  # a catch-all "public rooms"

    async def scenario():
        statuses = []
        for query in ("?channel=users", "?channel=lobby"):
            stream = await anonymous(query).open()
            statuses.append(stream.status)
            await (stream.close() if stream.status == 200 else stream.json())
        return statuses

    assert run(scenario) == [403, 200]
