"""Replay after Last-Event-ID against the moves of the log: publishes, prunes, restores (issue 11)."""

import asyncio
import datetime
import json

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

import livefeed
from livefeed import history
from livefeed.models import Event, EventQuerySet
from tests.streams import Stream, run

pytestmark = pytest.mark.django_db(transaction=True)


def numbers(events) -> list[int]:
    return [json.loads(event.data)["n"] for event in events]


def test_an_event_published_after_the_replays_read_arrives_live(alice_channel, settings, monkeypatch):
    """Subscribe, then replay: an event that commits once the replay has read the log still arrives.

    Replaying before subscribing would lose it: too late for the replay, too early for a
    subscription. The recovery sweep is off, so it cannot hide such a loss.
    """
    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}
    channel, key = alice_channel
    livefeed.publish(channel, "tick", {"n": 0})
    first = Event.objects.get().pk
    original = history.replay

    async def replay_then_publish(*args):
        result = await original(*args)
        await sync_to_async(livefeed.publish)(channel, "tick", {"n": 1})  # after the read returned
        return result

    monkeypatch.setattr(history, "replay", replay_then_publish)

    async def scenario():
        stream = await Stream(session_key=key, headers=[("last-event-id", str(first - 1))]).open()
        await stream.events(1)
        await sync_to_async(livefeed.publish)(channel, "tick", {"n": 2})
        await stream.events(3)
        await stream.close()
        return stream.parser.events

    assert numbers(run(scenario)) == [0, 1, 2]


def test_a_client_ahead_of_the_log_is_reset_to_the_logs_newest_id_and_keeps_streaming(alice_channel):
    """After a database restore the browser's id is above the log's newest: reset, then live again."""
    channel, key = alice_channel
    for n in range(2):
        livefeed.publish(channel, "tick", {"n": n})
    newest = Event.objects.latest("id").pk
    stale = newest + 1000  # an id the restored log never reached

    async def scenario():
        stream = await Stream(session_key=key, headers=[("last-event-id", str(stale))]).open()
        (reset,) = await stream.events(1)
        await sync_to_async(livefeed.publish)(channel, "tick", {"n": 2})  # its id is below the stale one
        events = await stream.events(2)
        await stream.close()
        # The browser reconnects with the reset's id: a plain replay follows, no second reset.
        again = await Stream(session_key=key, headers=[("last-event-id", reset.last_event_id)]).open()
        replayed = await again.events(1)
        await again.close()
        return events, replayed

    (reset, live), replayed = run(scenario)
    assert reset.type == "reset"
    assert json.loads(reset.data) == {"reason": "unknown_id"}
    assert reset.last_event_id == str(newest)  # the log's newest, never the client's stale id
    assert (live.type, numbers([live])) == ("tick", [2])
    assert numbers(replayed) == [2]
    assert replayed[0].last_event_id == live.last_event_id


def test_a_prune_as_the_replay_reads_gives_a_reset_not_a_silent_gap(alice_channel, monkeypatch):
    """The rows after the client's id are pruned as its replay reads the log: it must learn of the loss."""
    channel, key = alice_channel
    for n in range(5):
        livefeed.publish(channel, "tick", {"n": n})
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    Event.objects.filter(pk__lte=ids[2]).update(created_at=timezone.now() - datetime.timedelta(days=2))

    def pruned_first(read):
        def prune_then_read(self, *args):
            Event.objects.prune(older_than_seconds=24 * 3600)  # livefeed_prune, run by cron just now
            return read(self, *args)

        return prune_then_read

    # Whichever reads the replay: the window of recent rows, or the log itself.
    monkeypatch.setattr(EventQuerySet, "window", pruned_first(EventQuerySet.window))
    monkeypatch.setattr(EventQuerySet, "since", pruned_first(EventQuerySet.since))

    async def scenario():
        # The client saw n=0; n=1 and n=2 are pruned under its replay.
        stream = await Stream(session_key=key, headers=[("last-event-id", str(ids[0]))]).open()
        (reset,) = await stream.events(1)
        await stream.close()
        return reset

    reset = run(scenario)
    assert (reset.type, json.loads(reset.data)) == ("reset", {"reason": "expired"})
    assert reset.last_event_id == str(ids[-1])


def test_a_storm_of_reconnects_shares_its_reads_of_the_log(alice_channel, settings, monkeypatch):
    """Streams reconnecting together ask the log once between them, and each still gets all it missed.

    The first read is held up until every other stream waits: they all subscribed after it
    started, so it cannot answer them, and the one read after it answers them all.
    """
    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}
    channel, key = alice_channel
    for n in range(10):
        livefeed.publish(channel, "tick", {"n": n})
    first = Event.objects.earliest("id").pk
    streams_count = 8
    reads = []
    gate = asyncio.Event()
    original = history._read_in_thread

    async def counted_read(*args):
        reads.append(args)
        if len(reads) == 1:
            await gate.wait()
        return await original(*args)

    monkeypatch.setattr(history, "_read_in_thread", counted_read)

    async def scenario():
        async def waiting(count):
            while history.get_history().waiting < count:
                await asyncio.sleep(0.01)

        resume = [("last-event-id", str(first - 1))]
        streams = [await Stream(session_key=key, headers=resume).open()]
        await waiting(1)
        streams += [await Stream(session_key=key, headers=resume).open() for _ in range(streams_count - 1)]
        await waiting(streams_count)
        gate.set()
        got = [numbers(await stream.events(10)) for stream in streams]
        for stream in streams:
            await stream.close()
        return got

    assert run(scenario) == [list(range(10))] * streams_count
    assert len(reads) == 2  # not one per stream


def test_reconnects_arriving_one_after_another_share_reads_spaced_apart(alice_channel, settings, monkeypatch):
    """Under a storm connects come a few at a time: reads of the log are spaced, not one per arrival.

    The first stream after a quiet spell reads at once; those that come while the
    next read waits out the spacing share it, each still getting all it missed.
    """
    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}
    monkeypatch.setattr(history, "READ_SPACING", 2.0)  # the arrivals below fall within it, even on a busy machine
    channel, key = alice_channel
    for n in range(10):
        livefeed.publish(channel, "tick", {"n": n})
    resume = [("last-event-id", str(Event.objects.earliest("id").pk - 1))]
    reads = []
    original = history._read_in_thread

    async def counted_read(*args):
        reads.append(args)
        return await original(*args)

    monkeypatch.setattr(history, "_read_in_thread", counted_read)

    async def scenario():
        first = await Stream(session_key=key, headers=resume).open()
        got = [numbers(await first.events(10))]  # read at once: nothing was read before
        streams = []
        for _ in range(6):  # one at a time: without the spacing each would have its own read meanwhile
            streams.append(await Stream(session_key=key, headers=resume).open())
            await asyncio.sleep(0.02)
        got += [numbers(await stream.events(10)) for stream in streams]
        for stream in [first, *streams]:
            await stream.close()
        return got

    assert run(scenario) == [list(range(10))] * 7
    assert len(reads) == 2  # the first stream's, then one for the six that came one after another


def test_a_stream_further_behind_than_the_window_still_gets_all_it_missed(alice_channel, settings, monkeypatch):
    """The window holds the log's newest rows only; a stream behind them replays from the database."""
    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}
    monkeypatch.setattr(history, "CAPACITY", 3)
    channel, key = alice_channel

    def publish(numbers_):
        for n in numbers_:
            livefeed.publish(channel, "tick", {"n": n})
        return list(Event.objects.order_by("id").values_list("id", flat=True))

    ids = publish(range(6))

    async def catch_up(last_id, count):
        stream = await Stream(session_key=key, headers=[("last-event-id", str(last_id))]).open()
        got = numbers(await stream.events(count))
        await stream.close()
        return got

    async def scenario():
        got = [await catch_up(ids[0] - 1, 6), await catch_up(ids[3], 2)]  # 6 behind: more than the window
        newer = await sync_to_async(publish)([6, 7])
        got.append(await catch_up(ids[5], 2))  # the window moves on: its oldest row leaves
        got.append(await catch_up(ids[3], 4))  # behind it now
        assert newer[-1] == ids[5] + 2
        return got

    assert run(scenario) == [list(range(6)), [4, 5], [6, 7], [4, 5, 6, 7]]
