"""After the caller's commit, publish() neither loses the event nor fails or stalls the caller (issue 11)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.contrib.auth.models import User
from django.db import connections, transaction

import livefeed
from livefeed import bridge
from livefeed.models import Event
from tests import servers
from tests.streams import cookie_header, session_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Far below what a stalled Redis costs the caller without the fix: redis-py's
# 5 s socket timeout per publish, stacked behind channels-redis' shard lock.
RETURNS_WITHIN = 4.0


@pytest.mark.parametrize(
    "send",
    [
        'livefeed.publish("user.{pk}", "notification", {{"title": "last words"}})',
        'livefeed.notify(get_user_model().objects.get(pk={pk}), title="last words")',
    ],
    ids=["publish", "notify"],
)
def test_a_publisher_killed_right_after_its_commit_still_delivers_the_event(
    send, daphne_servers, database_url, redis_url
):
    alice = User.objects.create_user("alice", password="x")
    (server,) = daphne_servers(1)
    stream = servers.SSEClient(server.port, headers={"Cookie": cookie_header(session_for(alice))}).connected()
    # The kill is registered first, so it runs after the commit and before livefeed's own hooks.
    code = textwrap.dedent(f"""
        import os, signal, livefeed
        from django.contrib.auth import get_user_model
        from django.db import transaction
        with transaction.atomic():
            transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
            {send.format(pk=alice.pk)}
    """)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=servers.ROOT,
        env=servers.server_env(database_url, redis_url),
        capture_output=True,
        timeout=60,
    )
    try:
        assert result.returncode == -signal.SIGKILL, result.stderr
        events = stream.events(1, timeout=20)
    finally:
        stream.close()
    assert json.loads(events[0].data)["title"] == "last words"
    assert events[0].last_event_id == str(Event.objects.get().pk)


@pytest.fixture
def stalled_redis():
    """A private redis-server this test can freeze (SIGSTOP) and thaw (SIGCONT)."""
    process = servers.redis_server()
    yield process
    os.kill(process.pid, signal.SIGCONT)
    process.stop()


def test_a_redis_that_stops_answering_neither_stalls_nor_fails_the_caller(stalled_redis, database_url, settings):
    alice = User.objects.create_user("alice", password="x")
    redis_url = f"redis://127.0.0.1:{stalled_redis.port}/0"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [redis_url]}}
    }
    channel_layers.backends.clear()
    server = servers.daphne(servers.server_env(database_url, redis_url))
    stream = servers.SSEClient(server.port, headers={"Cookie": cookie_header(session_for(alice))}).connected()
    livefeed.publish("job-1", "warm-up", {}, store=False)  # this process's Redis connection exists before the stall
    outcome: dict[str, list] = {"hooks": []}

    def request(number: int) -> None:
        # A view: its transaction publishes stored and ephemeral events, then the app's own hook.
        try:
            with transaction.atomic():
                livefeed.publish(f"user.{alice.pk}", "tick", {"n": number})
                livefeed.publish("job-1", "typing", {}, store=False)
                transaction.on_commit(lambda: outcome["hooks"].append(number))
        except Exception as error:
            outcome[f"error {number}"] = [repr(error)]
        finally:
            connections.close_all()

    os.kill(stalled_redis.pid, signal.SIGSTOP)
    try:
        requests = [threading.Thread(target=request, args=(n,)) for n in range(3)]
        for thread in requests:
            thread.start()
        deadline = time.monotonic() + RETURNS_WITHIN
        for thread in requests:
            thread.join(max(0, deadline - time.monotonic()))
        returned = sum(not thread.is_alive() for thread in requests)
    finally:
        os.kill(stalled_redis.pid, signal.SIGCONT)
    try:
        for thread in requests:
            thread.join(60)
        events = stream.events(3, timeout=30)
    finally:
        stream.close()
        server.stop()
    assert returned == 3, outcome  # all returned while Redis was still frozen
    assert sorted(outcome.pop("hooks")) == [0, 1, 2]  # the app's later hooks all ran
    assert outcome == {}  # and no request failed
    assert sorted(json.loads(event.data)["n"] for event in events) == [0, 1, 2]


def test_an_unstored_publish_logs_a_layer_error_instead_of_raising(settings, caplog):
    unreachable = f"redis://127.0.0.1:{servers.free_port()}/0"  # nothing listens there
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [unreachable]}}
    }
    channel_layers.backends.clear()
    livefeed.publish("job-1", "typing", {}, store=False)
    bridge.finish_sends()  # what an exiting shell does: wait for the background send
    assert "1 unstored message(s) lost" in caplog.text


async def _apublish_next(alice) -> None:
    await livefeed.apublish(f"user.{alice.pk}", "tick", {"n": 2})


async def _notify_next(alice) -> None:
    await livefeed.anotify(alice, title="next", data={"n": 2})  # a move inside notify()'s own transaction


@pytest.mark.parametrize("publish_next", [_apublish_next, _notify_next], ids=["publish", "notify"])
def test_an_event_left_in_the_outbox_goes_out_with_the_next_publish_not_at_the_next_sweep(settings, publish_next):
    """A move takes every committed outbox row: concurrent publishers share one locked commit.

    The row of a publisher that died after its commit is one of them: the next
    publish anywhere delivers it, in outbox order, without waiting for a sweep.
    """
    from livefeed import outbox, publishing
    from tests.streams import Stream, run

    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}  # no sweep within this test
    alice = User.objects.create_user("alice", password="x")
    channel, key = f"user.{alice.pk}", session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        left = publishing.message_for(channel, "tick", {"n": 1})
        await sync_to_async(outbox.hold)([left], outbox.database())  # committed, never moved: its publisher died
        await publish_next(alice)
        events = await stream.events(2)
        await stream.close()
        return events

    events = run(scenario)
    payloads = [json.loads(event.data) for event in events]
    assert [payload.get("data", payload)["n"] for payload in payloads] == [1, 2]  # a notification's is under "data"
    assert [int(event.last_event_id) for event in events] == sorted(Event.objects.values_list("pk", flat=True))


def test_a_burst_larger_than_a_streams_mailbox_reaches_a_stream_that_keeps_up(settings):
    """Sends are packed: one layer message can hold more events than QUEUE_SIZE; none may close the stream."""
    from tests.streams import Stream, run

    settings.LIVEFEED = {"QUEUE_SIZE": 16}
    alice = User.objects.create_user("alice", password="x")
    channel, count, key = f"user.{alice.pk}", 200, session_for(alice)

    def burst() -> None:
        for n in range(count):
            livefeed.publish(channel, "tick", {"n": n}, store=False)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        await sync_to_async(burst, thread_sensitive=False)()
        events = await stream.events(count)
        await stream.close()
        return events

    events = run(scenario)
    assert [json.loads(event.data)["n"] for event in events] == list(range(count))


def test_several_publishes_in_one_transaction_are_moved_to_the_log_by_one_move():
    """The first on_commit move takes every row of the transaction; the others have nothing to do."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(count: int) -> int:
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            for n in range(count):
                livefeed.publish("job-1", "tick", {"n": n})
        return len(queries)

    two, ten = statements(2), statements(10)
    assert ten - two == 8  # one outbox insert more per publish, and nothing else
    assert Event.objects.count() == 12


def test_an_outbox_id_that_comes_back_after_a_rollback_is_still_moved():
    """A test case's transaction rolls back the outbox's id sequence on SQLite: the next row reuses the id."""
    from livefeed import outbox

    class RolledBack(Exception):
        pass

    def publish_then_roll_back() -> int:
        with pytest.raises(RolledBack), transaction.atomic():
            moved, _ = outbox.record([{"type": "livefeed.event", "channel": "c", "event": "e", "data": "1"}], "default")
            raise RolledBack
        return moved[0]["id"]

    publish_then_roll_back()
    moved, _ = outbox.record([{"type": "livefeed.event", "channel": "c", "event": "e", "data": "2"}], "default")
    assert [message["data"] for message in moved] == ["2"]
    assert list(Event.objects.values_list("data", flat=True)) == ["2"]


needs_postgresql = pytest.mark.skipif(
    connections["default"].vendor != "postgresql", reason="the log's advisory lock is PostgreSQL's"
)


@needs_postgresql
def test_notify_moves_its_event_into_the_log_before_its_one_commit():
    """notify() owns its transaction: the move runs in it, so the event costs no second commit."""
    from tests.streams import Stream, run

    alice = User.objects.create_user("alice", password="x")
    key = session_for(alice)
    inside: list[bool] = []

    def watch(execute, sql, params, many, context):
        inside.append(context["connection"].in_atomic_block)
        return execute(sql, params, many, context)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()

        def call():
            with connections["default"].execute_wrapper(watch):
                livefeed.notify(alice, title="hello")
            connections.close_all()

        await sync_to_async(call, thread_sensitive=False)()
        events = await stream.events(1)
        await stream.close()
        return events

    (event,) = run(scenario)
    assert json.loads(event.data)["title"] == "hello"
    # The preference check reads before the transaction; nothing runs after its commit (the move used to).
    assert inside[inside.index(True) :] == [True] * (len(inside) - inside.index(True))
    assert [int(event.last_event_id)] == list(Event.objects.values_list("pk", flat=True))
    assert not livefeed.models.OutboxEvent.objects.exists()


@contextmanager
def _log_held_elsewhere() -> Iterator[None]:
    """Hold the log's advisory lock from another connection until the block ends."""
    from livefeed import outbox

    locked, release = threading.Event(), threading.Event()

    def hold_the_log() -> None:
        try:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [outbox._LOG_LOCK])
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_log)
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(30)


def _in_a_thread(call) -> threading.Thread:
    def target() -> None:
        try:
            call()
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def _until(condition, timeout: float = 20) -> bool:
    """Whether condition came to hold within timeout (servers.wait_until, as a value to assert on)."""
    try:
        servers.wait_until(condition, "change", timeout)
    except TimeoutError:
        return False
    return True


@needs_postgresql
def test_notify_commits_without_waiting_for_a_busy_log_and_its_event_follows_once_the_log_is_free():
    """The in-transaction move only tries the log's lock: waiting for it would hold notify's row locks meanwhile."""
    from livefeed.models import Notification

    alice = User.objects.create_user("alice", password="x")
    with _log_held_elsewhere():
        caller = _in_a_thread(lambda: livefeed.notify(alice, title="hello"))
        committed = _until(Notification.objects.exists)
        moved_meanwhile = Event.objects.exists()
    caller.join(30)
    assert committed  # the inbox has it while the log is busy
    assert not moved_meanwhile  # the log's order was kept: no id taken around the lock
    assert _until(lambda: Event.objects.filter(event="notification").exists())  # moved once the log was free
    assert Event.objects.filter(event="notification").count() == 1
    assert not livefeed.models.OutboxEvent.objects.exists()


def _publish_in_a_transaction(channel: str) -> None:
    with transaction.atomic():
        livefeed.publish(channel, "tick", {"n": 1})


@needs_postgresql
@pytest.mark.parametrize(
    "publish",
    [lambda channel: livefeed.publish(channel, "tick", {"n": 1}), _publish_in_a_transaction],
    ids=["autocommit", "in-a-transaction"],
)
def test_a_publisher_that_finds_the_log_busy_returns_with_its_event_stored_and_the_event_follows(publish, settings):
    """A committed event waits for nothing but the log's lock: the process's mover waits for it, not the caller.

    Before, the caller queued behind the lock's holder (every other publisher's
    commit, under load); the stream must still get the event, once, when the log is free.
    """
    from livefeed.models import OutboxEvent
    from tests.streams import Stream, run

    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}  # the mover, not the hubs' sweep, must deliver it
    alice = User.objects.create_user("alice", password="x")
    channel, key = f"user.{alice.pk}", session_for(alice)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        with _log_held_elsewhere():
            caller = _in_a_thread(lambda: publish(channel))
            returned = await sync_to_async(_until, thread_sensitive=False)(lambda: not caller.is_alive(), 10)
            stored = await OutboxEvent.objects.acount()
            moved_meanwhile = await Event.objects.acount()
        events = await stream.events(1, timeout=20)
        await stream.close()
        caller.join(30)
        return returned, stored, moved_meanwhile, events

    returned, stored, moved_meanwhile, events = run(scenario)
    assert returned  # while the log's lock was still held elsewhere
    assert (stored, moved_meanwhile) == (1, 0)  # durable in the outbox, and no log id taken around the lock
    assert [json.loads(event.data) for event in events] == [{"n": 1}]
    assert [int(event.last_event_id) for event in events] == list(Event.objects.values_list("pk", flat=True))
    assert not OutboxEvent.objects.exists()


@needs_postgresql
def test_a_mover_whose_connection_drops_while_it_waits_for_the_log_tries_again(settings, monkeypatch):
    """A bad day: the database ends the mover's connection (a restart, a failover); the event must still go out."""
    from livefeed import mover
    from tests.streams import Stream, run

    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}  # the mover, not the hubs' sweep, must deliver it
    monkeypatch.setattr(mover, "RETRY", 0.1)
    alice = User.objects.create_user("alice", password="x")
    channel, key = f"user.{alice.pk}", session_for(alice)

    def waiting_for_the_lock() -> list[int]:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                " AND pid <> pg_backend_pid()"
            )
            return [row[0] for row in cursor.fetchall()]

    def end(pids: list[int]) -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()
        with _log_held_elsewhere():
            caller = _in_a_thread(lambda: livefeed.publish(channel, "tick", {"n": 1}))
            assert await sync_to_async(_until, thread_sensitive=False)(waiting_for_the_lock, 10)
            await sync_to_async(end, thread_sensitive=False)(await sync_to_async(waiting_for_the_lock)())
            await asyncio.sleep(0.3)  # the mover has failed, and tries again: the lock is still held
        events = await stream.events(1, timeout=20)
        await stream.close()
        caller.join(30)
        return events

    events = run(scenario)
    assert [json.loads(event.data) for event in events] == [{"n": 1}]
    assert not livefeed.models.OutboxEvent.objects.exists()


@needs_postgresql
def test_a_script_that_exits_while_the_log_is_busy_sends_its_event_as_it_exits(daphne_servers, database_url, redis_url):
    """Its mover moves the event at exit, once the lock is free, and sends it then: no new thread can start there.

    A review found the send failing at exit ("can't create new thread at
    interpreter shutdown", logged as a failed move): the stream got the event
    only from a hub's later sweep.
    """
    alice = User.objects.create_user("alice", password="x")
    (server,) = daphne_servers(1)
    stream = servers.SSEClient(server.port, headers={"Cookie": cookie_header(session_for(alice))}).connected()
    # The hook registered last runs first at exit: it says the script is exiting, then livefeed's hooks run.
    code = textwrap.dedent(f"""
        import atexit, sys, livefeed
        livefeed.publish("user.{alice.pk}", "tick", {{"n": 1}})
        atexit.register(lambda: print("exiting", flush=True))
    """)
    with _log_held_elsewhere():
        script = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=servers.ROOT,
            env=servers.server_env(database_url, redis_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert script.stdout is not None
            lines = iter(script.stdout.readline, "")  # Django's shell may say what it imported first
            assert "exiting\n" in lines
        except BaseException:
            script.kill()
            raise
    try:
        _, errors = script.communicate(timeout=60)
        events = stream.events(1, timeout=20)
    finally:
        stream.close()
    assert script.returncode == 0, errors
    assert "livefeed" not in errors and "Traceback" not in errors, errors  # nothing failed, nothing left to a sweep
    assert [json.loads(event.data) for event in events] == [{"n": 1}]
    assert events[0].last_event_id == str(Event.objects.get().pk)


@needs_postgresql
def test_an_apps_failing_commit_hook_does_not_hold_back_notifys_event(settings):
    """notify()'s event goes out from the first of its commit's hooks, ahead of the app's own."""
    from django.db.models.signals import post_save

    from livefeed.models import Notification
    from tests.streams import Stream, run

    settings.LIVEFEED = {"RECOVERY_INTERVAL": 3600}  # only the live send can deliver it in time
    alice = User.objects.create_user("alice", password="x")
    key = session_for(alice)

    def failing_hook(sender, instance, created, **kwargs):
        transaction.on_commit(lambda: 1 / 0)  # not robust: Django runs no hook after it

    post_save.connect(failing_hook, sender=Notification)

    async def scenario():
        stream = await (await Stream(session_key=key).open()).connected()

        def call():
            try:
                with pytest.raises(ZeroDivisionError):
                    livefeed.notify(alice, title="hello")
            finally:
                connections.close_all()

        await sync_to_async(call, thread_sensitive=False)()
        events = await stream.events(1)
        await stream.close()
        return events

    try:
        (event,) = run(scenario)
    finally:
        post_save.disconnect(failing_hook, sender=Notification)
    assert json.loads(event.data)["title"] == "hello"


@needs_postgresql
def test_notify_with_autocommit_off_leaves_the_log_free_until_the_caller_commits():
    """With autocommit off the caller commits, whenever: notify() must not hold the log's lock until then."""
    from livefeed import outbox

    alice = User.objects.create_user("alice", password="x")
    free: list[bool] = []

    def try_the_lock() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [outbox._LOG_LOCK])
                free.append(cursor.fetchone()[0])
                cursor.execute("SELECT pg_advisory_unlock_all()")
        finally:
            connections.close_all()

    transaction.set_autocommit(False)
    try:
        livefeed.notify(alice, title="hello")
        other = threading.Thread(target=try_the_lock)
        other.start()
        other.join(10)
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    assert free == [True]
    assert Event.objects.filter(event="notification").count() == 1  # moved once the caller committed


@needs_postgresql
def test_a_receiver_that_marks_notifys_transaction_for_rollback_rolls_it_back_quietly():
    """The app's receiver runs after livefeed's, which published: the move must not run in a doomed transaction."""
    from django.db.models.signals import m2m_changed

    from livefeed.models import Notification

    alice = User.objects.create_user("alice", password="x")

    def roll_back(sender, action, **kwargs):
        if action == "post_add":
            transaction.set_rollback(True)

    m2m_changed.connect(roll_back, sender=Notification.recipients.through)
    try:
        livefeed.notify(alice, title="hello")
    finally:
        m2m_changed.disconnect(roll_back, sender=Notification.recipients.through)
    assert not Notification.objects.exists()
    assert not Event.objects.exists()


@needs_postgresql
def test_a_notify_that_fails_its_foreign_key_check_takes_no_log_id():
    """PostgreSQL checks Django's foreign keys at commit: that must fail notify() before its move takes ids.

    A hole in the log's ids holds every hub's later live events for REORDER_TIMEOUT.
    """
    from django.db import IntegrityError

    alice = User.objects.create_user("alice", password="x")
    livefeed.publish("job-1", "tick", {"n": 1})
    with connections["default"].cursor() as cursor:  # gone, as if another request deleted her meanwhile
        cursor.execute("DELETE FROM auth_user WHERE id = %s", [alice.pk])
    with pytest.raises(IntegrityError):
        livefeed.notify(alice, title="hello")
    livefeed.publish("job-1", "tick", {"n": 2})
    first, second = Event.objects.order_by("id").values_list("id", flat=True)
    assert second == first + 1
