"""A subscribe that fails or is cancelled halfway leaves no reader behind, and no group joined past LINGER."""

import asyncio
import contextlib
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import User

import livefeed
from livefeed import hub
from tests import servers
from tests.streams import Stream, cookie_header, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)

TROUBLE = "livefeed.job-1"  # the group whose group_add goes wrong


class BrokenLayer(InMemoryChannelLayer):
    """Joins every group but TROUBLE's; there it records the member (as the Redis pub/sub layer
    does before its SUBSCRIBE), then raises like a Redis that is down, or hangs like one that
    does not answer."""

    how = "raises"
    entered: asyncio.Event | None = None

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        if group != TROUBLE:
            return
        if self.how == "raises":
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        assert self.entered is not None  # set by the test before it connects
        self.entered.set()
        await asyncio.Event().wait()  # until the client goes away


def may_read_jobs(user, channel):
    return channel.startswith("job-")


def _state(current: hub.Hub) -> dict:
    return {
        "readers": {channel: len(readers) for channel, readers in current.readers.items()},
        "groups": {g for g, members in current.layer.groups.items() if current.channel_name in members},
    }


def _broken_layer(settings, how: str, **livefeed) -> tuple[User, str]:
    """Serve streams over BrokenLayer, going wrong as how says; return alice and her session key."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.BrokenLayer"}}
    settings.LIVEFEED = {"AUTHORIZE": f"{__name__}.may_read_jobs", **livefeed}
    BrokenLayer.how = how
    user = User.objects.create_user("alice", password="x")
    return user, session_for(user)


@pytest.mark.parametrize("how", ["raises", "hangs until the client goes away"])
def test_a_half_finished_subscribe_leaves_no_reader_or_group_behind(settings, how):
    _, key = _broken_layer(settings, how)

    async def scenario():
        BrokenLayer.entered = asyncio.Event()
        first = await (await Stream(session_key=key).open()).connected()
        current = hub.get_hub()
        before = _state(current)
        for _ in range(3):  # every reconnect of an outage must not leak one more
            # Its user and broadcast channels are joined already: only job-1 needs the layer.
            second = await Stream("/livefeed/stream/?channel=job-1", session_key=key).open()
            if how == "raises":
                await second.finish()  # the server ends it; the browser retries later
            else:
                await BrokenLayer.entered.wait()
                BrokenLayer.entered.clear()
                await second.close()
        during = _state(current)
        await first.close()
        await current.leave_idle(time.monotonic() + hub.LINGER)  # the groups nobody reads, left on a tick
        return before, during, _state(current)

    before, during, after = run(scenario)
    assert during == before
    assert after == {"readers": {}, "groups": set()}


def test_a_group_lingering_when_a_subscribe_fails_still_delivers_to_the_next_stream(settings):
    _, key = _broken_layer(settings, "raises")

    async def scenario():
        first = await (await Stream(session_key=key).open()).connected()  # holds the built-in channels
        reader = await (await Stream("/livefeed/stream/?channel=job-2", session_key=key).open()).connected()
        await reader.close()  # job-2: nobody reads it, joined for LINGER
        # job-1 fails before job-2's turn comes: job-2 stays joined, and listed as lingering.
        broken = await Stream("/livefeed/stream/?channel=job-1&channel=job-2", session_key=key).open()
        await broken.finish()
        again = await (await Stream("/livefeed/stream/?channel=job-2", session_key=key).open()).connected()
        # Unstored: it comes live or not at all (a stored one would come late, from the log).
        await sync_to_async(livefeed.publish)("job-2", "progress", {"done": 1}, store=False)
        events = await again.events(1)
        await again.close()
        await first.close()
        return events

    events = run(scenario)
    assert [(event.type, event.data) for event in events] == [("progress", '{"done":1}')]


def test_a_failed_subscribe_leaves_the_broken_group_and_keeps_the_others_joined_for_the_linger(settings):
    user, key = _broken_layer(settings, "raises")

    async def scenario():
        # Its built-in channels join; job-1, the last, fails: the server ends the stream.
        await (await Stream("/livefeed/stream/?channel=job-1", session_key=key).open()).finish()
        current = hub.get_hub()
        after, idle = _state(current), set(current.idle)
        await current.leave_idle(time.monotonic() + hub.LINGER)
        return after, idle, _state(current)

    after, idle, later = run(scenario)
    built_in = {f"user.{user.pk}", "users", "broadcast"}
    assert after == {"readers": {}, "groups": {f"livefeed.{name}" for name in built_in}}
    assert idle == built_in  # a retry finds them joined
    assert later == {"readers": {}, "groups": set()}


def test_a_subscribe_that_hangs_holds_back_no_heartbeat(settings):
    _, key = _broken_layer(settings, "hangs", HEARTBEAT=0.3)

    async def scenario():
        BrokenLayer.entered = asyncio.Event()
        first = await (await Stream(session_key=key).open()).connected()
        other = await (await Stream("/livefeed/stream/?channel=job-2", session_key=key).open()).connected()
        await other.close()  # job-2: nobody reads it, left once LINGER has passed
        hung = await Stream("/livefeed/stream/?channel=job-1", session_key=key).open()
        await BrokenLayer.entered.wait()  # its subscribe holds the hub's lock, with no answer
        before = first.parser.comments.count("keep-alive")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while True:
                    await first.chunk(2.0)
        beats = first.parser.comments.count("keep-alive") - before
        await hung.close()
        await first.close()
        return beats

    assert run(scenario) >= 1  # one every 0.3 s: 6 or so


EMPTY = {"streams": 0, "readers": {}, "groups": []}


@pytest.mark.e2e
def test_connects_while_redis_is_down_leave_no_reader_or_subscription_behind(database_url):
    alice = User.objects.create_user("alice", password="x")
    cookie = {"Cookie": cookie_header(session_for(alice))}
    redis = servers.redis_server()
    redis_url = f"redis://127.0.0.1:{redis.port}/0"
    server = servers.daphne(servers.server_env(database_url, redis_url), app="tests.probe:application")
    try:
        first = servers.SSEClient(server.port, headers=cookie).connected()
        before = servers.probe(server.port)
        assert before["readers"] == {f"user.{alice.pk}": 1, "users": 1, "broadcast": 1}
        redis.stop()
        for _ in range(3):  # a browser retrying during the outage
            # Its user and broadcast channels are joined already: only "orders" needs Redis.
            again = servers.SSEClient(server.port, "/livefeed/stream/?channel=orders", headers=cookie)
            try:
                while again.read(3):  # the subscribe fails and the server ends the stream,
                    pass
            except TimeoutError:
                pass  # or redis-py keeps it waiting, and the browser goes away first
            again.close()
            with contextlib.suppress(TimeoutError):  # a cancelled subscribe unwinds after the disconnect
                servers.wait_until(lambda: servers.probe(server.port) == before, "reader left", timeout=20)
            assert servers.probe(server.port) == before
        redis.start()
        first.close()
        # Its cleanup awaits Redis: wait until it has left every group.
        servers.wait_until(lambda: servers.probe(server.port) == EMPTY, "reader or group left")
    finally:
        server.stop()
        redis.stop()
