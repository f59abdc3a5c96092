"""Faults and churn (issue 5): nothing lost, nothing duplicated, nothing left behind."""

import asyncio
import contextlib
import gc
import json
import random
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection, connections, transaction
from django.test import override_settings

import livefeed
from livefeed import hub
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISHERS, PER_PUBLISHER = 8, 15


def _publisher(number: int, channel: str, start: threading.Event, atomic) -> None:
    start.wait()
    rng = random.Random(number)
    try:
        for n in range(PER_PUBLISHER):
            with atomic():
                livefeed.publish(channel, "tick", {"p": number, "n": n})
                time.sleep(rng.random() / 200)  # commits interleave across threads
    finally:
        connections.close_all()


def _own_transaction():
    from livefeed import publishing

    return publishing.atomic("default")  # as notify() publishes: the move runs before the commit


@pytest.fixture
def slow_commits(monkeypatch):
    """Widen the gap between taking an id (insert) and making it visible (commit)."""
    from livefeed import outbox

    append, move_sql, move_held, append_sql = outbox._append, outbox._move_sql, outbox.move_held, outbox._append_sql

    def slow_append(messages, using):
        append(messages, using)
        time.sleep(random.random() / 100)

    def slow_move_sql(using, own=False):
        # PostgreSQL moves in one message: the pause goes between its insert and its commit.
        return move_sql(using, own) + ("" if own else f"; SELECT pg_sleep({random.random() / 40})")

    def slow_append_sql(using, count):
        return append_sql(using, count) + f"; SELECT pg_sleep({random.random() / 40})"

    def slow_move_held(held, using):
        moved = move_held(held, using)
        time.sleep(random.random() / 40)  # the caller's commit comes after
        return moved

    monkeypatch.setattr(outbox, "_append", slow_append)
    monkeypatch.setattr(outbox, "_move_sql", slow_move_sql)
    monkeypatch.setattr(outbox, "move_held", slow_move_held)
    monkeypatch.setattr(outbox, "_append_sql", slow_append_sql)
    monkeypatch.setattr(outbox, "_CONTENDED_FOR", 0.0)  # keep trying the lock: the shortcuts' contended case


@pytest.mark.parametrize(
    "atomic", [transaction.atomic, _own_transaction, contextlib.nullcontext], ids=["callers", "own", "none"]
)
def test_concurrent_publishers_and_a_client_that_keeps_reconnecting_lose_nothing(slow_commits, atomic):
    """Ids are taken at insert but visible at commit: replay 'after id N' must still skip nothing."""
    user = User.objects.create_user("alice", password="x")
    key, channel = session_for(user), f"user.{user.pk}"
    expected = PUBLISHERS * PER_PUBLISHER
    start = threading.Event()
    threads = [threading.Thread(target=_publisher, args=(n, channel, start, atomic)) for n in range(PUBLISHERS)]
    for thread in threads:
        thread.start()

    async def scenario():
        received: list = []
        last_id, rng = None, random.Random(7)
        while len(received) < expected:
            headers: list[tuple[str, str]] = [("last-event-id", last_id)] if last_id else []
            stream = await (await Stream(session_key=key, headers=headers).open()).connected()
            start.set()
            want = min(expected - len(received), rng.randint(1, 12))
            events = await stream.events(want, timeout=30)
            await stream.close()  # drop the connection, as a flaky network does
            received += events
            last_id = stream.parser.last_event_id or last_id
        return received

    try:
        received = run(scenario)
    finally:
        start.set()
        for thread in threads:
            thread.join(30)
    keys = [(d["p"], d["n"]) for d in (json.loads(e.data) for e in received)]
    assert len(keys) == len(set(keys)) == expected  # each exactly once
    assert set(keys) == {(p, n) for p in range(PUBLISHERS) for n in range(PER_PUBLISHER)}
    ids = [int(e.last_event_id) for e in received]
    assert ids == sorted(ids)  # in log order across reconnections


def _db_connections() -> int:
    if connection.vendor != "postgresql":
        return sum(1 for c in connections.all(initialized_only=True) if c.connection is not None)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@override_settings(LIVEFEED={"MAX_STREAMS_PER_USER": 100})
def test_churn_leaves_no_queue_group_task_thread_or_connection():
    users = [User.objects.create_user(f"u{n}", password="x") for n in range(5)]
    keys = [session_for(user) for user in users]
    connections_before = _db_connections()

    async def scenario():
        # Warm up: the hub's own tasks and the shared stream thread exist from here on.
        warm = await (await Stream(session_key=keys[0]).open()).connected()
        await warm.close()
        current = hub.get_hub()
        tasks_before, threads_before = len(asyncio.all_tasks()), threading.active_count()
        for cycle in range(60):
            batch = [Stream(session_key=keys[(cycle + n) % 5]) for n in range(5)]
            for stream in batch:
                await stream.open()
            for n, stream in enumerate(batch):
                if n % 2:
                    await stream.connected()  # the others go away before subscribing
                await stream.close()
        gc.collect()
        await current.leave_idle(time.monotonic() + hub.LINGER)  # the groups nobody reads, left on a tick
        return {
            "streams": len(current.streams),
            "readers": dict(current.readers),
            "per_user": dict(current.per_user),
            "groups": {g for g, members in current.layer.groups.items() if current.channel_name in members},
            "new_tasks": len(asyncio.all_tasks()) - tasks_before,
            "new_threads": threading.active_count() - threads_before,
        }

    state = run(scenario)
    assert state == {
        "streams": 0,
        "readers": {},
        "per_user": {},
        "groups": set(),
        "new_tasks": 0,
        "new_threads": 0,
    }
    assert _db_connections() <= connections_before


def _sign_out(user, session_key):
    from django.contrib.auth import logout
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    request = RequestFactory().post("/logout/")
    request.session, request.user = SessionStore(session_key), user
    logout(request)


def test_signing_out_ends_that_sessions_streams_only():
    user = User.objects.create_user("alice", password="x")
    laptop, phone = session_for(user), session_for(user)

    async def scenario():
        on_laptop = await (await Stream(session_key=laptop).open()).connected()
        on_phone = await (await Stream(session_key=phone).open()).connected()
        await sync_to_async(_sign_out)(user, laptop)
        await on_laptop.finish()  # the server ends it by itself
        await sync_to_async(livefeed.publish)(f"user.{user.pk}", "notification", {"still": "here"})
        events = await on_phone.events(1)
        await on_phone.close()
        again = await Stream(session_key=laptop).open()
        return again.status, events

    status, events = run(scenario)
    assert json.loads(events[0].data) == {"still": "here"}
    assert status == 401  # the reconnect finds the session gone


@override_settings(LIVEFEED={"MAX_AGE": 0.1, "HEARTBEAT": 0.05})
def test_streams_older_than_max_age_end_so_the_client_signs_in_again(alice_session):
    key = alice_session

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        await stream.finish()
        return stream

    stream = run(scenario)
    assert stream.parser.retry >= 3000  # ended on purpose, with a retry delay


def test_streams_outlive_the_core_redis_layers_group_expiry(redis_url, settings):
    """channels-redis' core layer drops group members after group_expiry; the hub re-joins in time."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 times out idle reads after 5 s and caps the pool (docs/design.md#trap-6).
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": None}], "group_expiry": 1},
        }
    }
    # Recovery from the log would hide a lost membership: keep it out of this test.
    settings.LIVEFEED = {"HEARTBEAT": 0.1, "RECOVERY_INTERVAL": 60}
    user = User.objects.create_user("alice", password="x")
    key = session_for(user)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        await asyncio.sleep(2.5)  # well past the expiry
        await sync_to_async(livefeed.publish)(f"user.{user.pk}", "notification", {"late": True})
        events = await stream.events(1)
        await stream.close()
        return events

    events = run(scenario)
    assert json.loads(events[0].data) == {"late": True}


def test_publishing_from_sync_code_reuses_one_redis_connection(redis_layer):
    """A shell, a worker or a management command publishes from sync code, outside any server:
    async_to_sync(group_send) per call would open a Redis connection each time (docs/design.md#trap-8)."""
    import redis

    client = redis.Redis.from_url(redis_layer)
    before = client.info("stats")["total_connections_received"]
    for n in range(30):
        livefeed.publish("broadcast", "tick", {"n": n}, store=False)
    opened = client.info("stats")["total_connections_received"] - before
    client.close()
    assert opened <= 2  # the layer's publishing connection, not one per call


@override_settings(LIVEFEED={"RECOVERY_INTERVAL": 60})  # recovery from the log would hide a broken receive
def test_an_idle_stream_on_the_redis_layer_outlives_redis_pys_read_timeout(redis_layer, alice, alice_session, caplog):
    """redis-py 8 gives reads a 5 s timeout, which breaks an idle receive() on the core Redis layer
    (docs/design.md#trap-6); the pub/sub layer the servers use stays quiet and keeps delivering."""

    async def scenario():
        stream = await (await Stream(session_key=alice_session).open()).connected()
        await asyncio.sleep(6)  # idle past redis-py's default socket timeout
        await sync_to_async(livefeed.publish)(f"user.{alice.pk}", "notification", {"after": "idle"})
        events = await stream.events(1)
        await stream.close()
        return events

    events = run(scenario)
    assert json.loads(events[0].data) == {"after": "idle"}
    assert "receive failed" not in caplog.text
