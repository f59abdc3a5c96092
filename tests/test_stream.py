"""The stream view through the real ASGI application, in-process (docs/design.md#contracts)."""

import asyncio
import contextlib
import gc
import inspect
import json
import random
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import Group, User
from django.core.signals import request_finished, request_started
from django.db import connection
from django.test import override_settings

import livefeed
from livefeed import asgi, history, hub
from livefeed.asgi import get_asgi_application
from livefeed.models import Event
from tests import middleware
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def publish(channel, event="notification", data=None):
    return sync_to_async(livefeed.publish)(channel, event, data if data is not None else {"n": 1})


def test_headers_and_first_bytes_arrive_at_once(alice_session):
    async def scenario():
        stream = await Stream(session_key=alice_session).open()
        first = await stream.chunk()
        await stream.connected()
        await stream.close()
        return stream, first

    stream, first = run(scenario)
    assert stream.status == 200
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"] == "no-cache, no-transform"
    assert stream.headers["x-accel-buffering"] == "no"
    assert "connection" not in stream.headers  # hop-by-hop (docs/design.md#trap-12)
    assert first == b"retry: 3000\n"


def test_gzip_middleware_does_not_touch_the_stream(alice, alice_session, settings):
    assert "django.middleware.gzip.GZipMiddleware" in settings.MIDDLEWARE

    async def scenario():
        stream = Stream(session_key=alice_session, headers=[("accept-encoding", "gzip")])
        return stream, await stream.receive_one(f"user.{alice.pk}", "notification", {"title": "plain"})

    stream, events = run(scenario)
    assert stream.headers.get("content-encoding", "identity") == "identity"
    assert json.loads(events[0].data) == {"title": "plain"}


def _publish_to_one_then_all(alice_session, bob_session, channel, title, marker):
    """Return what alice's and bob's streams got from an event on channel, then a broadcast."""

    async def scenario():
        a = await (await Stream(session_key=alice_session).open()).connected()
        b = await (await Stream(session_key=bob_session).open()).connected()
        await publish(channel, data={"title": title})
        await publish("broadcast", data={"title": marker})
        a_events = await a.events(2)
        b_events = await b.events(1)
        await a.close()
        await b.close()
        return a_events, b_events

    return run(scenario)


def test_live_event_reaches_only_its_user(alice, alice_session, bob_session):
    a_events, b_events = _publish_to_one_then_all(
        alice_session, bob_session, f"user.{alice.pk}", "for alice", "for all"
    )
    assert [json.loads(e.data)["title"] for e in a_events] == ["for alice", "for all"]
    assert [json.loads(e.data)["title"] for e in b_events] == ["for all"]
    assert all(e.type == "notification" for e in a_events)
    ids = [int(e.last_event_id) for e in a_events]
    assert ids == sorted(ids) and ids[0] == Event.objects.get(data__contains="for alice").pk


def test_group_members_get_group_events(alice, alice_session, bob_session):
    staff = Group.objects.create(name="staff")
    alice.groups.add(staff)
    a_events, b_events = _publish_to_one_then_all(
        alice_session, bob_session, f"group.{staff.pk}", "staff only", "marker"
    )
    assert [json.loads(e.data)["title"] for e in a_events] == ["staff only", "marker"]
    assert [json.loads(e.data)["title"] for e in b_events] == ["marker"]


@override_settings(LIVEFEED={"HEARTBEAT": 0.05})
def test_heartbeat_comments_keep_an_idle_stream_alive(alice_session):
    async def scenario():
        stream = await Stream(session_key=alice_session).open()
        while stream.parser.comments.count("keep-alive") < 2:
            await stream.chunk(timeout=2)
        await stream.close()
        return stream

    stream = run(scenario)
    assert stream.parser.events == []


@override_settings(LIVEFEED={"HEARTBEAT": 1.0})
def test_a_stream_that_receives_events_gets_no_heartbeats_until_it_falls_quiet(alice, alice_session):
    async def scenario():
        stream = await (await Stream(session_key=alice_session).open()).connected()
        for n in range(15):  # 1.5 s of events, 0.1 s apart: never a second of silence
            await publish(f"user.{alice.pk}", data={"n": n})
            await asyncio.sleep(0.1)
        await stream.events(15)
        during = stream.parser.comments.count("keep-alive")
        while "keep-alive" not in stream.parser.comments:
            await stream.chunk(timeout=3)
        await stream.close()
        return during

    assert run(scenario) == 0


def test_the_ticker_leaves_no_stream_silent_past_its_bound_and_idle_ones_one_heartbeat_each_period():
    """On a simulated clock, ticks at least a period apart: streams that write at odd moments and
    idle ones each hear something within HEARTBEAT * 31/30 (docs/settings.md), idle ones one
    heartbeat per HEARTBEAT."""
    rng = random.Random(14)
    heartbeat = 15.0
    period = heartbeat / hub._TICKS

    async def scenario():
        ticker = hub.Hub(InMemoryChannelLayer())
        now = 1000.0
        readers = [hub.Reader(["x"], 10) for _ in range(60)]
        writers, idle = readers[:30], readers[30:]
        last = {}  # reader -> when its client last heard from it
        for reader in readers:
            ticker.live.add(reader)
            reader.written = last[reader] = now - rng.uniform(0, heartbeat)
        worst, heartbeats = 0.0, dict.fromkeys(idle, 0)
        for _ in range(20 * hub._TICKS):
            start, now = now, now + period + rng.uniform(0, period / 100)
            for reader in rng.sample(writers, 4):  # an event, written between two ticks
                reader.written = last[reader] = rng.uniform(start, now)
            ticker._turn(now, heartbeat)
            for reader in readers:
                if reader.items:  # its heartbeat, which the stream takes and writes at once
                    reader.items.clear()
                    reader.written = last[reader] = now
                    heartbeats[reader] = heartbeats.get(reader, 0) + 1
                worst = max(worst, now - last[reader])
        return worst, [heartbeats[reader] for reader in idle]

    worst, idle_heartbeats = run(scenario)
    assert worst <= heartbeat * 31 / 30 + period / 100
    assert set(idle_heartbeats) <= {19, 20, 21}  # 20 heartbeat periods


class Socket:
    """A stream's client socket as the hub sees it (livefeed.asgi._Unsent.write): takes a chunk now, or not."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.full = False
        self.broken = False

    def write(self, payload: bytes) -> bool:
        if self.broken:
            raise OSError("the transport went away in an unexpected way")
        if self.full:
            return False
        self.sent.append(payload)
        return True


def test_a_waiting_stream_gets_live_events_straight_on_its_socket_in_order_and_never_one_its_replay_wrote():
    async def scenario():
        reader = hub.Reader(["x"], 10)
        reader.sink, reader.seen = Socket(), 5  # its replay wrote up to id 5
        waiting = asyncio.ensure_future(reader.take())
        await asyncio.sleep(0)
        reader.push((5, b"five"))  # a live copy of a replayed event
        reader.push((6, b"six"))
        reader.push((None, b"unstored"))
        written, woken = list(reader.sink.sent), waiting.done()
        reader.sink.full = True  # the client stopped reading: the stream sends it, Twisted buffers it
        reader.push((7, b"seven"))
        reader.sink.full = False
        reader.push((8, b"eight"))  # behind one still queued: queued too, or it would overtake it
        taken = await waiting
        reader.push((9, b"nine"))  # the stream is writing what it took, not waiting: queued
        return written, woken, taken, reader.items, reader.sink.sent

    written, woken, taken, queued, sent = run(scenario)
    assert written == [b"six", b"unstored"]
    assert not woken  # no coroutine ran for them
    assert taken == [(7, b"seven"), (8, b"eight")]
    assert queued == [(9, b"nine")]
    assert sent == written


def test_a_waiting_streams_heartbeat_goes_straight_on_its_socket_unless_it_is_backed_up():
    async def scenario():
        reader = hub.Reader(["x"], 10)
        reader.sink, reader.written = Socket(), 0.0
        waiting = asyncio.ensure_future(reader.take())
        await asyncio.sleep(0)
        reader.keep_alive()
        first, written_at = list(reader.sink.sent), reader.written
        reader.sink.full = True
        reader.keep_alive()
        return first, written_at, await waiting

    first, written_at, taken = run(scenario)
    assert first == [b": keep-alive\n"]
    assert written_at > 0.0  # the ticker counts it as written: no second heartbeat a tick later
    assert taken == [(None, b": keep-alive\n")]


def test_a_burst_of_unstored_events_reaches_a_waiting_stream_in_one_write_per_run_in_order():
    """A packed layer message: runs of unstored events go out joined, the rest one by one, in the pack's order."""

    def event(name, n, event_id=None):
        return {"type": "livefeed.event", "channel": "x", "event": name, "data": json.dumps(n), "id": event_id}

    async def scenario():
        fan_out = hub.Hub(InMemoryChannelLayer())
        fan_out.order.floor = 10
        waiting, busy = hub.Reader(["x"], 10), hub.Reader(["x"], 10)
        waiting.sink, busy.sink = Socket(), Socket()
        fan_out.readers["x"] = {waiting, busy}
        taking = asyncio.ensure_future(waiting.take())  # busy writes what it took: it waits for nothing
        await asyncio.sleep(0)
        pack = [event("tick", 1), event("tick", 2), event("tick", 3, event_id=11), event("tick", 4)]
        pack += [event("notification", 5), event("tick", 6), event("tick", 7)]
        fan_out._dispatch_share(pack)
        taking.cancel()
        return waiting.sink.sent, busy.items

    sent, queued = run(scenario)
    ticks = [b"event: tick\ndata: %d\n\n" % n for n in range(1, 8)]
    ticks[2] = b"id: 11\n" + ticks[2]
    ticks[4] = ticks[4].replace(b"tick", b"notification")
    assert sent == [ticks[0] + ticks[1], ticks[2], ticks[3], ticks[4], ticks[5] + ticks[6]]
    assert [payload for _, payload in queued] == ticks  # a stream not waiting queues each, in order


def test_a_socket_that_fails_unexpectedly_hands_the_streams_events_back_to_the_stream(caplog):
    async def scenario():
        reader = hub.Reader(["x"], 10)
        reader.sink = Socket()
        reader.sink.broken = True
        waiting = asyncio.ensure_future(reader.take())
        await asyncio.sleep(0)
        reader.push((1, b"one"))  # must not raise into the hub's fan-out: other streams wait behind it
        return await waiting, reader.sink

    taken, sink = run(scenario)
    assert taken == [(1, b"one")]
    assert sink is None
    assert "Could not write to a stream's socket" in caplog.text


@pytest.mark.parametrize("how", ["header", "query"])
def test_replay_after_last_event_id_then_live_without_gaps_or_duplicates(alice, alice_session, how):
    user, key = alice, alice_session
    for n in range(5):
        livefeed.publish(f"user.{user.pk}", "notification", {"n": n})
    livefeed.publish("job-9", "progress", {"other": "channel"})  # not this stream's
    ids = list(Event.objects.filter(channel=f"user.{user.pk}").values_list("id", flat=True))

    async def scenario():
        path, headers = "/livefeed/stream/", []
        if how == "header":
            headers = [("last-event-id", str(ids[1]))]
        else:
            path += f"?lastEventId={ids[1]}"
        stream = await Stream(path, session_key=key, headers=headers).open()
        await stream.events(3)
        await publish(f"user.{user.pk}", data={"n": 5})
        events = await stream.events(4)
        await stream.close()
        return events

    events = run(scenario)
    assert [json.loads(e.data)["n"] for e in events] == [2, 3, 4, 5]
    assert [int(e.last_event_id) for e in events][:3] == ids[2:]


def test_events_published_while_replaying_are_neither_lost_nor_doubled(alice, alice_session):
    """Subscribe, then replay: an event committed in between comes once."""
    user, key = alice, alice_session
    livefeed.publish(f"user.{user.pk}", "notification", {"n": 0})
    first = Event.objects.get().pk
    from livefeed import history

    original = history.replay

    async def replay_with_a_publish_in_between(channels, last_id, *args):
        await publish(f"user.{user.pk}", data={"n": 1})  # live AND in the log
        return await original(channels, last_id, *args)

    async def scenario():
        stream = await Stream(session_key=key, headers=[("last-event-id", str(first - 1))]).open()
        await stream.events(2)
        await publish(f"user.{user.pk}", data={"n": 2})
        events = await stream.events(3)
        await stream.close()
        return events

    history.replay = replay_with_a_publish_in_between
    try:
        events = run(scenario)
    finally:
        history.replay = original
    assert [json.loads(e.data)["n"] for e in events] == [0, 1, 2]


def test_reset_when_the_id_is_older_than_the_log_keeps(alice, alice_session):
    user, key = alice, alice_session
    for n in range(3):
        livefeed.publish(f"user.{user.pk}", "notification", {"n": n})
    newest = Event.objects.latest("id").pk
    Event.objects.filter(pk__lt=newest).delete()  # pruned

    async def scenario():
        stream = await Stream(session_key=key, headers=[("last-event-id", str(newest - 2))]).open()
        events = await stream.events(1)
        await stream.close()
        return events

    (event,) = run(scenario)
    assert event.type == "reset"
    assert json.loads(event.data) == {"reason": "expired"}
    assert event.last_event_id == str(newest)


@override_settings(LIVEFEED={"REPLAY_LIMIT": 2})
def test_reset_when_more_was_missed_than_one_replay_sends(alice, alice_session):
    user, key = alice, alice_session
    for n in range(4):
        livefeed.publish(f"user.{user.pk}", "notification", {"n": n})
    first = Event.objects.earliest("id").pk

    async def scenario():
        stream = await Stream(session_key=key, headers=[("last-event-id", str(first))]).open()
        events = await stream.events(1)
        await stream.close()
        return events

    (event,) = run(scenario)
    assert event.type == "reset" and json.loads(event.data) == {"reason": "too_many"}


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "9" * 40, " ", "१२"])
def test_malformed_last_event_id_is_treated_as_absent(alice, alice_session, bad):
    user, key = alice, alice_session
    livefeed.publish(f"user.{user.pk}", "notification", {"n": 0})

    async def scenario():
        stream = await Stream(session_key=key, headers=[("last-event-id", bad)]).open()
        await stream.connected()
        await publish(f"user.{user.pk}", data={"n": 1})
        events = await stream.events(1)
        await stream.close()
        return stream, events

    stream, events = run(scenario)
    assert stream.status == 200
    assert [json.loads(e.data)["n"] for e in events] == [1]  # live only, nothing replayed


def test_anonymous_user_gets_401_json():
    async def scenario():
        stream = await Stream().open()
        return stream, await stream.json()

    stream, body = run(scenario)
    assert stream.status == 401
    assert stream.headers["content-type"] == "application/json"
    assert "Sign in" in body["error"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("channel=user.999", 403),
        ("channel=secret-room", 403),
        ("channel=bad%20name", 400),
        ("channel=" + "a" * 91, 400),
        ("channel=caf%C3%A9", 400),
        ("channel=", 400),
    ],
)
def test_channels_the_user_may_not_read_are_refused_before_any_stream(alice_session, query, status):
    async def scenario():
        stream = await Stream(f"/livefeed/stream/?{query}", session_key=alice_session).open()
        return stream, await stream.json()

    stream, body = run(scenario)
    assert stream.status == status
    assert body["error"]
    assert hub._hubs == {} or not next(iter(hub._hubs.values())).streams


def test_a_group_channel_is_readable_by_its_members_only():
    carol, dave = User.objects.create_user("carol", password="x"), User.objects.create_user("dave", password="x")
    payroll, staff = Group.objects.create(name="payroll"), Group.objects.create(name="staff")
    dave.groups.add(payroll)
    carol.groups.add(staff)
    key = session_for(carol)

    async def scenario():
        denied = await Stream(f"/livefeed/stream/?channel=group.{payroll.pk}", session_key=key).open()
        body = await denied.json()
        mine = await Stream(f"/livefeed/stream/?channel=group.{staff.pk}", session_key=key).open()
        await mine.close()
        return denied.status, body, mine.status

    status, body, own_status = run(scenario)
    assert (status, own_status) == (403, 200)
    assert f"group.{payroll.pk}" in body["error"]


def test_custom_channel_through_the_authorize_hook(alice_session, settings):
    settings.LIVEFEED = {"AUTHORIZE": "tests.test_stream.only_jobs"}

    async def scenario():
        denied = await Stream("/livefeed/stream/?channel=payroll", session_key=alice_session).open()
        events = await Stream("/livefeed/stream/?channel=job-42", session_key=alice_session).receive_one(
            "job-42", "progress", {"done": 3}
        )
        return denied.status, events

    status, events = run(scenario)
    assert status == 403
    assert (events[0].type, json.loads(events[0].data)) == ("progress", {"done": 3})


def only_jobs(user, channel):
    return channel.startswith("job-")


def test_post_is_405(alice_session):
    async def scenario():
        stream = Stream(session_key=alice_session)
        stream.communicator.scope["method"] = "POST"
        await stream.open()
        return stream.status

    assert run(scenario) == 405


def _async_views():
    from django.urls import URLPattern, get_resolver

    resolver = get_resolver("livefeed.urls")
    return [p for p in resolver.url_patterns if isinstance(p, URLPattern) and inspect.iscoroutinefunction(p.callback)]


@pytest.mark.parametrize("pattern", _async_views(), ids=lambda p: p.name)
def test_every_async_view_works_with_atomic_requests(monkeypatch, pattern):
    """ATOMIC_REQUESTS = True is common; Django refuses it for async views not marked non-atomic."""
    key = session_for(User.objects.create_user("carol", password="x"))
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    async def scenario():
        stream = await Stream(f"/livefeed/{pattern.pattern}", session_key=key).open()
        if stream.headers.get("content-type", "").startswith("text/event-stream"):
            await stream.connected()
        await stream.close()
        return stream.status

    assert run(scenario) == 200


@override_settings(LIVEFEED={"MAX_STREAMS_PER_USER": 2, "MAX_STREAMS": 3})
def test_stream_caps_answer_429_then_503(alice_session, bob_session):
    async def scenario():
        opened = [await Stream(session_key=alice_session).open() for _ in range(2)]
        third_of_alice = await Stream(session_key=alice_session).open()
        opened.append(await Stream(session_key=bob_session).open())
        second_of_bob = await Stream(session_key=bob_session).open()
        for stream in opened:
            await stream.close()
        return third_of_alice, second_of_bob

    third_of_alice, second_of_bob = run(scenario)
    assert third_of_alice.status == 429
    assert second_of_bob.status == 503
    assert second_of_bob.headers["retry-after"] == "5"


def _joined(current: hub.Hub) -> set[str]:
    return {g for g, members in current.layer.groups.items() if current.channel_name in members}


def test_disconnect_releases_the_queue_at_once_and_the_groups_after_the_linger(alice, alice_session):
    async def scenario():
        stream = await Stream(f"/livefeed/stream/?channel=user.{alice.pk}", session_key=alice_session).open()
        await stream.connected()
        current = hub.get_hub()
        during = (len(current.streams), set(current.readers), dict(current.per_user), _joined(current))
        await stream.close()
        after = (len(current.streams), set(current.readers), dict(current.per_user), _joined(current))
        await current.leave_idle(time.monotonic())  # a tick right away: too soon
        lingering = _joined(current)
        await current.leave_idle(time.monotonic() + hub.LINGER)  # a tick LINGER seconds later
        return during, after, lingering, _joined(current)

    during, after, lingering, left = run(scenario)
    groups = {f"livefeed.user.{alice.pk}", "livefeed.users", "livefeed.broadcast"}
    assert during == (1, {f"user.{alice.pk}", "users", "broadcast"}, {alice.pk: 1}, groups)
    assert after == (0, set(), {}, groups)
    assert lingering == groups
    assert left == set()


class CountingLayer(InMemoryChannelLayer):
    """The in-memory layer, counting the hub's joins and leaves: each a round trip on Redis."""

    calls: list[str] = []

    async def group_add(self, group: str, channel: str) -> None:
        self.calls.append(f"add {group}")
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self.calls.append(f"discard {group}")
        await super().group_discard(group, channel)


def test_a_stream_back_within_the_linger_finds_its_channels_joined_and_gets_live_events(alice, alice_session, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.CountingLayer"}}
    CountingLayer.calls = []

    async def scenario():
        first = await (await Stream(session_key=alice_session).open()).connected()
        joins = list(CountingLayer.calls)
        await first.close()
        again = await (await Stream(session_key=alice_session).open()).connected()
        calls_for_return = CountingLayer.calls[len(joins) :]
        # Unstored: it comes live or not at all (a stored one would come late, from the log).
        await sync_to_async(livefeed.publish)(f"user.{alice.pk}", "notification", {"back": True}, store=False)
        events = await again.events(1)
        await again.close()
        await hub.get_hub().leave_idle(time.monotonic() + hub.LINGER)
        return joins, calls_for_return, events, CountingLayer.calls[len(joins) :]

    joins, calls_for_return, events, later = run(scenario)
    assert sorted(joins) == [f"add livefeed.{name}" for name in ("broadcast", f"user.{alice.pk}", "users")]
    assert calls_for_return == []  # neither the leaving stream nor the returning one went to the layer
    assert json.loads(events[0].data) == {"back": True}
    assert sorted(later) == [f"discard livefeed.{name}" for name in ("broadcast", f"user.{alice.pk}", "users")]


async def _until_nothing_is_joined(current: hub.Hub, timeout: float = 5) -> set[str]:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while _joined(current):
                await asyncio.sleep(0.01)
    return _joined(current)


def test_the_groups_nobody_reads_are_left_by_the_hub_itself_once_the_linger_has_passed(alice_session, monkeypatch):
    monkeypatch.setattr(hub, "LINGER", 0.05)

    async def scenario():
        await (await (await Stream(session_key=alice_session).open()).connected()).close()
        current = hub.get_hub()
        return _joined(current), await _until_nothing_is_joined(current)

    lingering, left = run(scenario)
    assert len(lingering) == 3
    assert left == set()


def test_a_server_shutting_down_leaves_the_groups_nobody_reads_without_waiting_for_the_linger(bob, bob_session):
    async def scenario():
        await (await (await Stream(session_key=bob_session).open()).connected()).close()
        current = hub.get_hub()
        lingering = _joined(current)
        current._shut_down()  # what SIGTERM runs (livefeed.shutdown)
        return lingering, await _until_nothing_is_joined(current)  # LINGER is 10 s

    lingering, left = run(scenario)
    assert f"livefeed.user.{bob.pk}" in lingering
    assert left == set()


def test_a_stream_that_ends_while_the_server_shuts_down_leaves_its_groups_as_it_ends(alice_session):
    async def scenario():
        stream = await (await Stream(session_key=alice_session).open()).connected()
        current = hub.get_hub()
        current.closing = True  # as _shut_down() sets it: with the core Redis layer a process gone stays a member
        await stream.close()
        return _joined(current)

    assert run(scenario) == set()


def test_one_layer_subscription_per_channel_however_many_streams(alice_session):
    async def scenario():
        streams = [await Stream(session_key=alice_session).open() for _ in range(5)]
        for stream in streams:
            await stream.connected()
        current = hub.get_hub()
        members = len(current.layer.groups["livefeed.broadcast"])
        await publish("broadcast", data={"all": True})
        received = [await stream.events(1) for stream in streams]
        for stream in streams:
            await stream.close()
        return members, received

    members, received = run(scenario)
    assert members == 1
    assert all(json.loads(events[0].data) == {"all": True} for events in received)


def test_slow_stream_is_closed_and_catches_up_from_the_log(alice, alice_session, settings):
    settings.LIVEFEED = {"QUEUE_SIZE": 3}
    user, key = alice, alice_session

    async def scenario():
        stream = await (await Stream(session_key=key, client_buffer=1).open()).connected()
        for n in range(10):  # the client reads nothing meanwhile
            await publish(f"user.{user.pk}", data={"n": n})
        # What was queued arrives, then the server ends the stream so the client reconnects.
        await stream.finish()
        assert 0 < len(stream.parser.events) < 10
        last = stream.parser.last_event_id
        again = await Stream(session_key=key, headers=[("last-event-id", last)]).open()
        await again.events(10 - len(stream.parser.events))
        await again.close()
        return stream.parser.events + again.parser.events

    events = run(scenario)
    assert [json.loads(e.data)["n"] for e in events] == list(range(10))


def test_rolled_back_publish_reaches_no_one(alice, alice_session):
    from django.db import transaction

    user, key = alice, alice_session

    def publish_then_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            livefeed.publish(f"user.{user.pk}", "notification", {"n": "rolled back"})
            raise RuntimeError

    async def scenario():
        stream = await Stream(session_key=key).open()
        await stream.connected()
        await sync_to_async(publish_then_roll_back)()
        await publish(f"user.{user.pk}", data={"n": "committed"})
        events = await stream.events(1)
        await stream.close()
        return events

    events = run(scenario)
    assert [json.loads(e.data)["n"] for e in events] == ["committed"]
    assert Event.objects.count() == 1


@override_settings(LIVEFEED={"MAX_STREAMS_PER_USER": 50})
def test_streams_share_one_thread_not_one_each(alice_session):
    async def scenario():
        before = threading.active_count()
        streams = [await Stream(session_key=alice_session).open() for _ in range(20)]
        for stream in streams:
            await stream.connected()
        during = threading.active_count()
        for stream in streams:
            await stream.close()
        return before, during

    before, during = run(scenario)
    assert during - before <= 2  # the shared stream thread, not 20 (docs/design.md#trap-9)


def test_publish_validates_its_input():
    with pytest.raises(ValueError, match="Invalid channel"):
        livefeed.publish("bad name", "x", {})
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        livefeed.publish("ok", "bad\nevent", {})
    with pytest.raises(ValueError, match="MAX_PAYLOAD"):
        livefeed.publish("ok", "big", "x" * 70_000)
    with pytest.raises(TypeError):
        livefeed.publish("ok", "x", object())
    assert Event.objects.count() == 0


def test_events_the_layer_lost_are_recovered_from_the_log_exactly_once(alice, alice_session, settings):
    """The pub/sub layer is at-most-once: what it drops still arrives, late, once."""
    settings.LIVEFEED = {"RECOVERY_INTERVAL": 0.1}
    user, key = alice, alice_session

    async def scenario():
        stream = await Stream(session_key=key).open()
        await stream.connected()
        current = hub.get_hub()
        real_send = current.layer.group_send

        async def lossy_send(group, message):
            if message["data"] != '{"n":1}':
                await real_send(group, message)

        current.layer.group_send = lossy_send
        for n in range(3):
            await publish(f"user.{user.pk}", data={"n": n})
        events = await stream.events(3)
        await asyncio.sleep(0.5)  # several more sweeps: nothing comes twice
        await publish(f"user.{user.pk}", data={"n": 3})
        events = await stream.events(4)
        await stream.close()
        return events

    events = run(scenario)
    assert sorted(json.loads(e.data)["n"] for e in events) == [0, 1, 2, 3]
    assert len({e.last_event_id for e in events}) == 4


def test_resuming_from_zero_replays_the_log_without_a_reset(alice, alice_session):
    """A page rendered on an empty log resumes from 0, even once old ids were pruned."""
    user, key = alice, alice_session
    for n in range(3):
        livefeed.publish(f"user.{user.pk}", "notification", {"n": n})
    Event.objects.filter(pk=Event.objects.earliest("id").pk).delete()

    async def scenario():
        stream = await Stream("/livefeed/stream/?lastEventId=0", session_key=key).open()
        events = await stream.events(2)
        await stream.close()
        return events

    assert [json.loads(e.data)["n"] for e in run(scenario)] == [1, 2]


def test_the_sites_middleware_runs_for_a_stream_in_its_order(alice, alice_session, settings):
    # Streams run the middleware chain in one trip to the stream thread
    # (livefeed.asgi); what each middleware sees and does must not change.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.middleware.Tagging"]
    middleware.calls.clear()

    async def scenario():
        stream = Stream(session_key=alice_session)
        return stream, await stream.receive_one(f"user.{alice.pk}", "notification", {"title": "through the chain"})

    stream, events = run(scenario)
    assert stream.status == 200
    assert stream.headers["x-site"] == "tagged"
    assert stream.headers["x-frame-options"] == "DENY"  # Django's own middleware ran too
    assert middleware.calls == ["request:True", f"view:stream:user.{alice.pk}", "response:200"]
    assert json.loads(events[0].data) == {"title": "through the chain"}


@contextlib.contextmanager
def receiving_request_signals(started, finished):
    """Connect receivers of Django's request_started and request_finished for the block, as a site's would be."""
    request_started.connect(started)
    request_finished.connect(finished)
    try:
        yield
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)


def test_a_stream_sends_djangos_request_signals_once_each_started_before_any_middleware(alice, alice_session, settings):
    # Streams send request_started in the middleware's trip to the stream thread
    # (livefeed.asgi); a site's receivers must see each stream as Django sends them.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.middleware.Tagging"]
    middleware.calls.clear()

    def started(sender, scope, **kwargs):
        middleware.calls.append(f"started:{scope['path']}:{threading.current_thread() is threading.main_thread()}")

    def finished(sender, **kwargs):
        middleware.calls.append("finished")

    with receiving_request_signals(started, finished):
        run(lambda: Stream(session_key=alice_session).receive_one(f"user.{alice.pk}", "notification", {"n": 1}))
    assert middleware.calls == [
        "started:/livefeed/stream/:False",  # a sync receiver, off the event loop's thread as Django runs it
        "request:True",
        f"view:stream:user.{alice.pk}",
        "response:200",
        "finished",
    ]


def test_a_client_gone_before_its_stream_was_set_up_sends_no_request_finished_without_request_started(
    alice_session,
):
    # A connect waits its turn on the stream thread, where request_started is sent; a client
    # that leaves meanwhile never gets there, and a site's receivers must see the pair or neither.
    heard = []

    def started(sender, **kwargs):
        heard.append("started")

    def finished(sender, **kwargs):
        heard.append("finished")

    async def scenario():
        busy = threading.Event()
        asgi._stream_executor.submit(busy.wait, 5)  # the stream thread, taken
        stream = Stream(session_key=alice_session)
        await stream.communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        async with asyncio.timeout(5):
            while asgi._stream_executor._work_queue.qsize() < 1:  # the connect is queued behind it
                await asyncio.sleep(0.01)
        await stream.communicator.send_input({"type": "http.disconnect"})
        await asyncio.sleep(0.1)
        busy.set()
        await stream.communicator.wait(5)
        await sync_to_async(lambda: None)()  # the stream thread has done what was queued

    with receiving_request_signals(started, finished):
        run(scenario)
    assert heard in ([], ["started", "finished"])


def test_a_client_that_breaks_the_asgi_protocol_mid_stream_gets_djangos_own_error(alice_session):
    # livefeed.asgi serves streams with its own copy of Django's handle(): what escapes it
    # is what escapes Django's, not an exception group around it.
    async def scenario():
        stream = await (await Stream(session_key=alice_session).open()).connected()
        await stream.communicator.send_input({"type": "http.request", "body": b"more", "more_body": False})
        with pytest.raises(AssertionError, match="Invalid ASGI message after request body"):
            await stream.communicator.wait(5)

    run(scenario)


def test_an_async_only_middleware_runs_for_a_stream_too(alice, alice_session, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.middleware.AsyncOnly"]

    async def scenario():
        stream = Stream(session_key=alice_session)
        events = await stream.receive_one(f"user.{alice.pk}", "notification", {"title": "after async middleware"})
        return stream, events

    stream, events = run(scenario)
    assert stream.headers["x-async"] == "yes"
    assert json.loads(events[0].data) == {"title": "after async middleware"}


def test_a_middleware_that_wraps_the_streams_content_sees_every_chunk(alice, alice_session, settings):
    # The stream's own generator is read without Django's per-chunk wrappers
    # (livefeed.views._EventStream); content a middleware put in its place is
    # read the usual way.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.middleware.Counting"]
    middleware.Counting.chunks.clear()

    async def scenario():
        return await Stream(session_key=alice_session).receive_one(
            f"user.{alice.pk}", "notification", {"title": "metered"}
        )

    events = run(scenario)
    assert json.loads(events[0].data) == {"title": "metered"}
    assert b"retry:" in middleware.Counting.chunks[0]
    assert any(b"metered" in chunk for chunk in middleware.Counting.chunks)


def test_a_middleware_may_answer_instead_of_the_stream(alice_session, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.middleware.Tagging"]

    async def scenario():
        stream = await Stream("/livefeed/stream/?closed=1", session_key=alice_session).open()
        await stream.finish()
        return stream, len(hub.get_hub().streams)

    stream, open_streams = run(scenario)
    assert (stream.status, stream.body) == (503, b"Closed for maintenance")
    assert open_streams == 0


@pytest.mark.parametrize("threshold", [12_345, None])
def test_the_asgi_application_tunes_the_gc_unless_told_not_to(settings, threshold):
    """The threshold, and what start-up built moved out of the collector's walks; None: Python's gc as it was."""
    before = gc.get_threshold()
    settings.LIVEFEED = {"GC_THRESHOLD": threshold}
    try:
        gc.set_threshold(700, *before[1:])
        gc.unfreeze()
        walked = len(gc.get_objects())  # what a full collection walks (not the frozen)
        get_asgi_application()
        assert gc.get_threshold() == (threshold or 700, *before[1:])
        if threshold is None:
            assert len(gc.get_objects()) > walked / 2
        else:
            assert len(gc.get_objects()) < walked / 10
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_a_stream_that_fails_inside_ends_cleanly_and_lets_go_of_its_reader(alice_session, monkeypatch, caplog):
    """An exception escaping to daphne would hang the client and stall daphne's cleanup
    (docs/design.md#trap-4): the stream logs it and ends like any other."""

    async def broken_replay(channels, last_id):
        raise RuntimeError("the log is unreadable")

    monkeypatch.setattr(history, "replay", broken_replay)

    async def scenario():
        stream = await Stream(session_key=alice_session, headers=[("last-event-id", "1")]).open()
        await stream.finish()  # the response ends: the client will reconnect
        current = hub.get_hub()
        return stream, len(current.streams), dict(current.readers)

    stream, streams_left, readers_left = run(scenario)
    assert "connected" in stream.parser.comments and stream.parser.events == []
    assert (streams_left, readers_left) == (0, {})
    assert "livefeed stream failed" in caplog.text


@override_settings(LIVEFEED={"HEARTBEAT": 0.05})
def test_heartbeats_never_cancel_the_layers_receive(alice, alice_session, monkeypatch):
    """A cancelled receive() loses messages on the Redis layers (docs/design.md#trap-5): heartbeats
    come from the hub's ticker, and its one receive() stays parked while events come and go."""
    cancelled = []
    real_receive = InMemoryChannelLayer.receive

    async def receive(self, channel):
        try:
            return await real_receive(self, channel)
        except asyncio.CancelledError:
            cancelled.append(channel)
            raise

    monkeypatch.setattr(InMemoryChannelLayer, "receive", receive)

    async def scenario():
        stream = await (await Stream(session_key=alice_session).open()).connected()
        for n in range(3):
            while stream.parser.comments.count("keep-alive") <= n:
                await stream.chunk()
            await publish(f"user.{alice.pk}", data={"n": n})
        events = await stream.events(3)
        cancelled_while_open = list(cancelled)
        await stream.close()
        return events, cancelled_while_open

    events, cancelled_while_open = run(scenario)
    assert [json.loads(e.data)["n"] for e in events] == [0, 1, 2]
    assert cancelled_while_open == []
