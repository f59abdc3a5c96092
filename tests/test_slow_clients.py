"""Slow and stuck clients: a stream that falls behind is closed and catches up from the log."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

import livefeed
from livefeed import hub
from tests import servers
from tests.streams import Stream, cookie_header, run, session_for

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
        await publish(channel, {"n": 10})  # room again in the mailbox, but some of 0..9 were dropped
        await stream.finish()
        again = await Stream(session_key=key, headers=[("last-event-id", stream.parser.last_event_id)]).open()
        await publish(channel, {"n": 11})  # a marker: the replay is complete once it arrives
        while not again.parser.events or json.loads(again.parser.events[-1].data)["n"] != 11:
            await again.chunk()
        await again.close()
        return stream.parser.events + again.parser.events

    events = run(scenario)
    assert [json.loads(e.data)["n"] for e in events] == list(range(12))


STUCK_CLIENTS, BURST, EVENT_SIZE = 4, 1000, 8000


@pytest.mark.e2e
def test_daphne_closes_streams_whose_clients_stop_reading_and_its_memory_stays_bounded(database_url, redis_url):
    """daphne never makes a stream wait for its client: without MAX_UNSENT, Twisted kept the whole burst for each."""
    user = User.objects.create_user("alice", password="x")
    env = servers.server_env(database_url, redis_url)
    server = servers.daphne(env, app="tests.probe:application")
    pad = "x" * EVENT_SIZE
    burst = f"import livefeed\nfor n in range({BURST}): livefeed.publish('broadcast', 'tick', {{'pad': {pad!r}}})"
    try:
        clients = [servers.stuck_client(server.port, cookie_header(session_for(user))) for _ in range(STUCK_CLIENTS)]
        before = servers.rss_kb(server.pid)
        servers.manage(env, "shell", "-c", burst)
        servers.wait_until(lambda: servers.probe(server.port)["streams"] == 0, "stuck stream closed by the server")
        grown_kb = servers.rss_kb(server.pid) - before
        assert all(servers.ended_by_server(client) for client in clients)
    finally:
        server.stop()
    # Unbounded, the burst stayed in memory once per client (about 18 MB more here).
    assert grown_kb < 10 * 1024


@pytest.mark.e2e
def test_daphne_does_not_close_a_client_that_reads_a_replay_larger_than_max_unsent(database_url, redis_url):
    """Django sends a large replay as 64 KB messages back to back: they fill Twisted's buffer before
    the client can read a byte, which is no sign of a client falling behind."""
    user = User.objects.create_user("alice", password="x")
    env = servers.server_env(database_url, redis_url)
    pad = "x" * EVENT_SIZE
    servers.manage(
        env,
        "shell",
        "-c",
        f"import livefeed\nfor n in range(100): livefeed.publish('broadcast', 'tick', {{'n': n, 'pad': {pad!r}}})",
    )
    server = servers.daphne(env)
    cookie = cookie_header(session_for(user))
    try:
        stream = servers.SSEClient(server.port, headers={"Cookie": cookie, "Last-Event-ID": "0"})
        events = stream.events(100)  # 800 KB in the replay's one chunk
        stream.close()
    finally:
        server.stop()
    assert [json.loads(event.data)["n"] for event in events] == list(range(100))
