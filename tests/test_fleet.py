"""Past one Redis, with real processes: channels sharded over two servers, and a Sentinel failover.

Both run the demo settings as a deployment would: REDIS_URL with two URLs
(channels-redis shards the channels over them) or REDIS_SENTINELS.
"""

import json
import signal
import time
from collections.abc import Callable

import pytest
import redis
from channels_redis.utils import _consistent_hash
from django.contrib.auth.models import User

from livefeed.channels import BROADCAST, group_name, user_channel
from tests import servers
from tests.streams import cookie_header, session_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _open(port: int, user: User) -> servers.SSEClient:
    return servers.SSEClient(port, headers={"Cookie": cookie_header(session_for(user))}).connected()


def _publish(env: dict[str, str], events: list[tuple[str, int]]) -> None:
    """Publish a `tick` {"n": n} on each channel from another process, as a worker would."""
    code = f"import livefeed\nfor channel, n in {events!r}: livefeed.publish(channel, 'tick', {{'n': n}})"
    servers.manage(env, "shell", "-c", code)


def _numbers(stream: servers.SSEClient, count: int, timeout: float = 30) -> list[int]:
    return [json.loads(event.data)["n"] for event in stream.events(count, timeout=timeout)]


def _wait(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        time.sleep(0.1)


def test_channels_sharded_over_two_redis_servers_deliver_once_and_survive_a_shard_restart(database_url):
    shards = [servers.redis_server(), servers.redis_server()]
    urls = [f"redis://127.0.0.1:{shard.port}/0" for shard in shards]

    def place(channel: str) -> int:
        """Return the index of the Redis server that carries channel, as channels-redis picks it."""
        return _consistent_hash(f"asgi__group__{group_name(channel)}", len(urls))

    users: list[User] = []
    while {place(user_channel(user)) for user in users} != {0, 1} or len(users) < 3:
        users.append(User.objects.create_user(f"user{len(users)}", password="x"))
    place(BROADCAST)
    env = servers.server_env(database_url, ",".join(urls))
    daphnes = [servers.daphne(env) for _ in range(3)]
    streams = [_open(daphnes[n % 3].port, user) for n, user in enumerate(users)]
    try:
        # Round 1: a broadcast and one event per user, everything up.
        _publish(env, [(BROADCAST, 1000)] + [(user_channel(user), n) for n, user in enumerate(users)])
        for n, stream in enumerate(streams):
            assert sorted(_numbers(stream, 2)) == sorted([1000, n])

        # Round 2 with one shard down: its channels' events reach the log only.
        down = place(user_channel(users[0]))
        shards[down].stop()
        _publish(env, [(BROADCAST, 2000)] + [(user_channel(user), 100 + n) for n, user in enumerate(users)])
        shards[down].start()
        _publish(env, [(BROADCAST, 3000)])
        for n, stream in enumerate(streams):  # the same connections: no stream was dropped
            assert sorted(_numbers(stream, 5)) == sorted([1000, n, 2000, 100 + n, 3000])
            ids = [event.last_event_id for event in stream.parser.events]
            assert len(set(ids)) == len(ids) == 5  # exactly once
    finally:
        for stream in streams:
            stream.close()
        for process in daphnes + shards:
            process.stop()
    assert {place(user_channel(user)) for user in users} == {0, 1}  # both servers carried streams' channels


def _sentinel(primary_port: int, directory) -> servers.Process:
    port = servers.free_port()
    config = directory / "sentinel.conf"  # Sentinel rewrites its file: a private, writable one
    config.write_text(
        f"port {port}\nbind 127.0.0.1\n"
        f"sentinel monitor livefeed 127.0.0.1 {primary_port} 1\n"
        "sentinel down-after-milliseconds livefeed 1000\n"
        "sentinel failover-timeout livefeed 5000\n"
    )
    return servers.Process(f"sentinel-{port}", ["redis-server", str(config), "--sentinel"], port).start()


def test_a_sentinel_failover_loses_nothing_committed(database_url, tmp_path):
    primary = servers.redis_server()
    replica_port = servers.free_port()
    replica = servers.Process(
        f"redis-{replica_port}",
        [*servers.redis_args(replica_port), "--replicaof", "127.0.0.1", str(primary.port)],
        replica_port,
    ).start()
    sentinel = _sentinel(primary.port, tmp_path)
    watcher = redis.Redis(port=sentinel.port, decode_responses=True)
    _wait(lambda: watcher.sentinel_slaves("livefeed"), "replica known to the sentinel")
    alice = User.objects.create_user("alice", password="x")
    env = servers.server_env(database_url, REDIS_SENTINELS=f"127.0.0.1:{sentinel.port}", REDIS_MASTER="livefeed")
    server = servers.daphne(env)
    stream = _open(server.port, alice)
    channel = user_channel(alice)
    try:
        _publish(env, [(channel, 0), (channel, 1)])
        assert _numbers(stream, 2) == [0, 1]

        primary.stop(signal.SIGKILL)
        _publish(env, [(channel, 2), (channel, 3)])  # mid-failover: committed to the log
        _wait(
            lambda: watcher.sentinel_get_master_addr_by_name("livefeed") == ("127.0.0.1", replica_port),
            "promoted replica",
        )
        _publish(env, [(channel, 4)])  # live again, through the promoted replica

        assert sorted(_numbers(stream, 5)) == [0, 1, 2, 3, 4]
        ids = [event.last_event_id for event in stream.parser.events]
        assert len(set(ids)) == len(ids) == 5
    finally:
        stream.close()
        watcher.close()
        for process in (server, sentinel, replica, primary):
            process.stop()
