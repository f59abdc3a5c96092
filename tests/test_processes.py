"""Real processes: daphne servers sharing a private Redis, publishers in other processes."""

import datetime
import json

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

import livefeed
from livefeed.models import Delivery, Event
from tests import servers
from tests.streams import cookie_header, session_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_event_from_a_third_process_reaches_streams_on_two_servers(alice, daphne_servers, database_url, redis_url):
    cookie = {"Cookie": cookie_header(session_for(alice))}
    first, second = daphne_servers(2)
    streams = [servers.SSEClient(server.port, headers=cookie) for server in (first, second)]
    for stream in streams:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    try:
        env = servers.server_env(database_url, redis_url)
        # Wait until both servers joined their groups: the first bytes come after that.
        for stream in streams:
            while "connected" not in stream.parser.comments:
                stream.parser.feed(stream.response.read1(65536))
        servers.manage(
            env,
            "shell",
            "-c",
            f"import livefeed; livefeed.publish('user.{alice.pk}', 'notification', {{'title': 'from the shell'}})",
        )
        received = [stream.events(1)[0] for stream in streams]
    finally:
        for stream in streams:
            stream.close()
    event_id = str(Event.objects.get().pk)
    for event in received:
        assert event.type == "notification"
        assert json.loads(event.data) == {"title": "from the shell"}
        assert event.last_event_id == event_id  # the same id on every process


def test_reconnecting_to_the_other_server_replays_what_was_missed(alice, daphne_servers, database_url, redis_url):
    cookie = cookie_header(session_for(alice))
    first, second = daphne_servers(2)
    env = servers.server_env(database_url, redis_url)
    stream = servers.SSEClient(first.port, headers={"Cookie": cookie})
    while "connected" not in stream.parser.comments:
        stream.parser.feed(stream.response.read1(65536))
    publish = "import livefeed\nfor n in range({start}, {stop}): livefeed.publish('broadcast', 'tick', {{'n': n}})"
    servers.manage(env, "shell", "-c", publish.format(start=0, stop=3))
    seen = stream.events(3)
    stream.close()
    servers.manage(env, "shell", "-c", publish.format(start=3, stop=6))  # while disconnected
    again = servers.SSEClient(second.port, headers={"Cookie": cookie, "Last-Event-ID": seen[-1].last_event_id})
    try:
        replayed = again.events(3)
    finally:
        again.close()
    assert [json.loads(e.data)["n"] for e in seen + replayed] == list(range(6))


def test_redis_restart_loses_no_committed_event(alice, database_url):
    """Events published while Redis is down reach an open stream once it is back, exactly once."""
    redis = servers.redis_server()
    redis_url = f"redis://127.0.0.1:{redis.port}/0"
    env = servers.server_env(database_url, redis_url)
    server = servers.daphne(env)
    stream = servers.SSEClient(server.port, headers={"Cookie": cookie_header(session_for(alice))})
    publish = "import livefeed\nfor n in {numbers}: livefeed.publish('user.%s', 'tick', {{'n': n}})".replace(
        "%s", str(alice.pk)
    )
    try:
        while "connected" not in stream.parser.comments:
            stream.parser.feed(stream.response.read1(65536))
        servers.manage(env, "shell", "-c", publish.format(numbers=[0, 1]))
        stream.events(2)
        redis.stop()
        servers.manage(env, "shell", "-c", publish.format(numbers=[2, 3]))  # layer down: log only
        redis.start()
        servers.manage(env, "shell", "-c", publish.format(numbers=[4]))
        events = stream.events(5, timeout=20)
    finally:
        stream.close()
        server.stop()
        redis.stop()
    assert sorted(json.loads(e.data)["n"] for e in events) == [0, 1, 2, 3, 4]
    assert len({e.last_event_id for e in events}) == 5


def test_with_a_connection_pool_many_streams_share_a_few_connections(database_url, redis_url):
    if not database_url.startswith("postgres"):
        pytest.skip("Django's connection pool is PostgreSQL's: run with DATABASE_URL set")
    users = [User.objects.create_user(f"user{n}", password="x") for n in range(12)]
    named = f"{database_url}?application_name=livefeed-pool-test"  # to count the server's connections
    server = servers.daphne(servers.server_env(named, redis_url, DATABASE_POOL="2"))
    streams = []
    try:
        for user in users:
            streams.append(servers.SSEClient(server.port, headers={"Cookie": cookie_header(session_for(user))}))
            streams[-1].connected()
        held = _connections_named("livefeed-pool-test")
        publish = "import livefeed; livefeed.publish('broadcast', 'tick', {'n': 1})"
        servers.manage(servers.server_env(database_url, redis_url), "shell", "-c", publish)
        received = [stream.events(1)[0] for stream in streams]
    finally:
        for stream in streams:
            stream.close()
        server.stop()
    assert 1 <= held <= 2  # the pool's, however many streams are open
    assert [json.loads(event.data) for event in received] == [{"n": 1}] * len(users)


def _connections_named(application_name: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return cursor.fetchone()[0]


def test_a_due_snooze_comes_back_once_with_two_servers_running_the_job(daphne_servers, database_url, redis_url):
    alice = User.objects.create_user("alice", password="x")
    notes = [livefeed.notify(alice, title=f"n{n}") for n in range(20)]
    cookie = {"Cookie": cookie_header(session_for(alice))}
    # Both servers run the due job every 0.05 s: they overlap all the time.
    streams = [
        servers.SSEClient(server.port, headers=cookie).connected()
        for server in daphne_servers(2, LIVEFEED_DUE_INTERVAL="0.05")
    ]
    try:
        watermark = Event.objects.latest("id").pk
        Delivery.objects.update(snoozed_until=timezone.now() - datetime.timedelta(seconds=1))
        marker = f"import livefeed; livefeed.publish('user.{alice.pk}', 'marker', {{}})"
        for stream in streams:
            stream.events(20)
        servers.manage(servers.server_env(database_url, redis_url), "shell", "-c", marker)
        received = [stream.events(21) for stream in streams]
    finally:
        for stream in streams:
            stream.close()
    expected = sorted(note.pk for note in notes)
    for events in received:
        assert events[-1].type == "marker"  # nothing more came back before it
        assert sorted(json.loads(e.data)["id"] for e in events[:-1]) == expected  # each once on every stream
    logged = Event.objects.filter(pk__gt=watermark, event="notification")
    assert logged.count() == 20  # one event each, whichever server brought it back


def test_a_client_that_reconnects_between_two_reordered_events_gets_both(daphne_servers, redis_layer):
    """Ids N and N+1 commit in order, but N+1's layer send lands first (two publishers racing).

    A stream that wrote N+1 before N would make its client resume after N+1: the
    replay skips N and N's late live copy is a duplicate by id. The client here
    drops right after its first event and reconnects to the same server.
    """
    from asgiref.sync import async_to_sync

    from livefeed import outbox, publishing

    alice = User.objects.create_user("alice", password="x")
    channel, cookie = f"user.{alice.pk}", cookie_header(session_for(alice))
    (server,) = daphne_servers(1)
    stream = servers.SSEClient(server.port, headers={"Cookie": cookie}).connected()
    messages = [publishing.message_for(channel, "tick", {"n": n}) for n in range(3)]
    using = outbox.database()
    for message in messages:  # N, N+1 and a later one, committed in order (move() waits for the log's lock)
        outbox.move(outbox.hold([message], using), using)

    def send(message):
        async_to_sync(publishing._send)([message])

    send(messages[1])  # N+1 first; N's send is held back
    first = stream.events(1)
    stream.close()  # a flaky network, or a deploy's SIGTERM
    again = servers.SSEClient(server.port, headers={"Cookie": cookie, "Last-Event-ID": first[-1].last_event_id})
    try:
        again.connected()
        send(messages[0])  # N's late live copy
        send(messages[2])
        later = again.events(3 - len(first))
    finally:
        again.close()
    received = first + later
    assert [json.loads(e.data)["n"] for e in received] == [0, 1, 2]
    assert [int(e.last_event_id) for e in received] == [m["id"] for m in messages]
