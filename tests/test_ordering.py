"""Live events reach a stream in log-id order, whatever order the layer brings them in (issue 11).

Each test opens a stream, then sends crafted layer messages in the order a race
or a lossy layer would. Real processes and Redis: tests/test_processes.py.
"""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

import livefeed
from livefeed import eventlog, hub, outbox, publishing
from livefeed.channels import group_name
from livefeed.sequencer import Sequencer
from tests.streams import Stream, run

pytestmark = pytest.mark.django_db(transaction=True)


def stored(channel: str, n: int) -> dict:
    """Commit an event to the log as publish() does, without sending it: the layer message."""
    message = publishing.message_for(channel, "tick", {"n": n})
    using = outbox.database()
    outbox.move(outbox.hold([message], using), using)  # waits for the log's lock: the id is set when it returns
    return message


def crafted(channel: str, event_id: int, n: int) -> dict:
    """A layer message with an id the log does not have (yet)."""
    return {**publishing.message_for(channel, "tick", {"n": n}), "id": event_id}


async def send(message: dict) -> None:
    await hub.get_hub().layer.group_send(group_name(message["channel"]), message)


async def connected(key: str) -> Stream:
    return await (await Stream(session_key=key).open()).connected()


def numbers(events) -> list[int]:
    return [json.loads(event.data)["n"] for event in events]


def test_an_event_that_overtakes_a_lower_id_waits_for_it(alice_channel, settings, monkeypatch):
    settings.LIVEFEED = {"REORDER_TIMEOUT": 60, "RECOVERY_INTERVAL": 3600}
    channel, key = alice_channel
    original, looked = eventlog.ids_after, []

    async def ids_after(floor, top):
        result = await original(floor, top)
        looked.append(top)
        return result

    monkeypatch.setattr(eventlog, "ids_after", ids_after)

    async def scenario():
        stream = await connected(key)
        floor = hub.get_hub().order.floor
        await send(crafted(channel, floor + 2, 2))  # overtook floor + 1, not in the log yet
        while not looked:  # the hub looked for floor + 1 in the log, in vain
            await asyncio.sleep(0.01)
        await send(crafted(channel, floor + 1, 1))
        events = await stream.events(2)
        await stream.close()
        return events

    events = run(scenario)
    assert numbers(events) == [1, 2]
    assert [int(e.last_event_id) for e in events] == sorted(int(e.last_event_id) for e in events)


def test_a_lower_id_that_never_comes_live_is_read_from_the_log_at_once(alice_channel, settings):
    """The layer lost it: the next event reveals the gap, the log fills it, no timeout waited."""
    settings.LIVEFEED = {"REORDER_TIMEOUT": 60, "RECOVERY_INTERVAL": 3600}
    channel, key = alice_channel

    async def scenario():
        stream = await connected(key)
        await sync_to_async(stored)(channel, 0)  # committed; its live copy is lost
        await send(await sync_to_async(stored)(channel, 1))
        events = await stream.events(2)
        await stream.close()
        return events

    assert numbers(run(scenario)) == [0, 1]


def test_another_channels_id_in_the_gap_holds_nothing_back(alice_channel, settings):
    settings.LIVEFEED = {"REORDER_TIMEOUT": 60, "RECOVERY_INTERVAL": 3600}
    channel, key = alice_channel

    async def scenario():
        stream = await connected(key)
        await sync_to_async(stored)("job-7", 99)  # nobody here reads job-7: never comes live
        await send(await sync_to_async(stored)(channel, 1))
        events = await stream.events(1)
        await stream.close()
        return events

    assert numbers(run(scenario)) == [1]


def test_an_id_the_log_never_gets_is_passed_over_after_the_timeout(alice_channel, settings):
    """A rolled-back publish leaves a hole in the ids: later events wait for it only REORDER_TIMEOUT."""
    settings.LIVEFEED = {"REORDER_TIMEOUT": 0.2, "RECOVERY_INTERVAL": 3600}
    channel, key = alice_channel

    async def scenario():
        stream = await connected(key)
        floor = hub.get_hub().order.floor
        await send(crafted(channel, floor + 2, 2))  # floor + 1: rolled back, in no log
        await stream.events(1)
        await send(crafted(channel, floor + 1, 1))  # a copy that comes after all: too late
        await send(crafted(channel, floor + 3, 3))
        events = await stream.events(2)
        await stream.close()
        return events

    assert numbers(run(scenario)) == [2, 3]


def test_events_not_stored_pass_events_that_are_held(alice_channel, settings):
    settings.LIVEFEED = {"REORDER_TIMEOUT": 60, "RECOVERY_INTERVAL": 3600}
    channel, key = alice_channel

    async def scenario():
        stream = await connected(key)
        floor = hub.get_hub().order.floor
        await send(crafted(channel, floor + 2, 2))  # held for floor + 1
        await sync_to_async(livefeed.publish)(channel, "tick", {"n": 0}, store=False)
        await stream.events(1)  # at once, not after the held one
        await send(crafted(channel, floor + 1, 1))
        events = await stream.events(3)
        await stream.close()
        return events

    assert numbers(run(scenario)) == [0, 1, 2]


def test_the_sequencer_releases_in_id_order_and_drops_copies():
    released: list[dict] = []
    order = Sequencer(released.append, lambda channel: True)
    order.floor = 10
    for event_id in [12, 14, 11, 10, 13, 12, 15]:
        order.push({"id": event_id})
    assert [message["id"] for message in released] == [11, 12, 13, 14, 15]
    assert (order.floor, order.held) == (15, {})
