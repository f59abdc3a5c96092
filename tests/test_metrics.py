"""Prometheus metrics: optional, counted on the hot paths, scraped from a real daphne."""

import http.client
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import livefeed
from livefeed import metrics  # noqa: F401 - counting starts when the module is imported
from tests import servers
from tests.streams import Stream, cookie_header, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def in_a_fresh_python(code: str) -> subprocess.CompletedProcess:
    env = servers.server_env("sqlite:///:memory:")
    return subprocess.run([sys.executable, "-c", code], cwd=servers.ROOT, env=env, capture_output=True, text=True)


def test_nothing_but_livefeed_metrics_imports_prometheus_client():
    modules = [path.stem for path in (servers.ROOT / "livefeed").glob("*.py") if path.stem not in {"metrics"}]
    code = (
        "import django, sys; django.setup()\n"
        f"for name in {modules!r}: __import__(f'livefeed.{{name}}')\n"
        "assert 'prometheus_client' not in sys.modules, 'imported prometheus_client'"
    )
    result = in_a_fresh_python(code)
    assert result.returncode == 0, result.stderr


def test_without_prometheus_client_the_metrics_module_says_how_to_install_it():
    code = "import sys; sys.modules['prometheus_client'] = None\nimport django; django.setup()\nimport livefeed.metrics"
    result = in_a_fresh_python(code)
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert 'pip install "django-livefeed[metrics]"' in result.stderr


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_one_event_to_three_streams_counts_three_deliveries():
    sessions = [session_for(User.objects.create_user(f"user{n}", password="x")) for n in range(3)]
    before = value("livefeed_events_delivered_total"), value("livefeed_events_published_total")

    async def scenario():
        streams = [await (await Stream(session_key=key).open()).connected() for key in sessions]
        await sync_to_async(livefeed.publish)("broadcast", "tick", {"n": 1})
        for stream in streams:
            await stream.events(1)
            await stream.close()

    run(scenario)
    after = value("livefeed_events_delivered_total"), value("livefeed_events_published_total")
    assert (after[0] - before[0], after[1] - before[1]) == (3, 1)


def test_a_slow_stream_closed_is_counted(settings):
    settings.LIVEFEED = {"QUEUE_SIZE": 2}
    user = User.objects.create_user("alice", password="x")
    key = session_for(user)
    before = value("livefeed_slow_stream_closes_total")

    async def scenario():
        stream = await (await Stream(session_key=key, client_buffer=1).open()).connected()
        for n in range(6):  # the client reads nothing meanwhile
            await sync_to_async(livefeed.publish)(f"user.{user.pk}", "tick", {"n": n})
        await stream.finish()

    run(scenario)
    assert value("livefeed_slow_stream_closes_total") - before == 1


@pytest.mark.e2e
def test_scraping_a_daphne_after_real_traffic(database_url):
    """In-memory layer: what a shell publishes reaches daphne through the log, as a recovery."""
    alice = User.objects.create_user("alice", password="x")
    key = session_for(alice)
    env = servers.server_env(database_url)
    server = servers.daphne(env)
    headers = {"Cookie": cookie_header(key)}
    streams = []
    try:
        start = scrape(server.port)
        streams = [servers.SSEClient(server.port, headers=headers).connected() for _ in range(2)]
        assert request(server.port, "GET", "/livefeed/stream/") == 401
        assert request(server.port, "GET", "/livefeed/stream/?channel=secret", headers) == 403
        notify = "import livefeed; livefeed.notify(recipient=User.objects.get(pk=%d), title='hi')"
        servers.manage(env, "shell", "-c", "from django.contrib.auth.models import User\n" + notify % alice.pk)
        for stream in streams:
            stream.events(1)
        csrf = {"Cookie": f"{cookie_header(key)}; csrftoken={'c' * 32}", "X-CSRFToken": "c" * 32}
        assert request(server.port, "POST", "/livefeed/api/notifications/read-all/", csrf) == 200
        for stream in streams:
            stream.events(2)
        streams.append(servers.SSEClient(server.port, headers={**headers, "Last-Event-ID": "999999"}))
        assert streams[-1].events(1)[0].type == "reset"
        end = scrape(server.port)
    finally:
        for stream in streams:
            stream.close()
        server.stop()
    moved = {name: end.get(name, 0) - start.get(name, 0) for name in end}
    assert end[("livefeed_streams_open", ())] == 3
    assert moved[("livefeed_connects_total", ())] == 3
    assert moved[("livefeed_refusals_total", (("status", "401"),))] == 1
    assert moved[("livefeed_refusals_total", (("status", "403"),))] == 1
    assert moved[("livefeed_events_recovered_total", ())] == 1  # the shell's notification
    assert moved[("livefeed_events_published_total", ())] == 1  # the read event
    assert moved[("livefeed_events_delivered_total", ())] == 4  # two events, two streams
    assert moved[("livefeed_replays_total", ())] == moved[("livefeed_resets_total", ())] == 1
    assert moved[("livefeed_publish_seconds_count", ())] == 1


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request(method, path, headers=headers or {})
        response = client.getresponse()
        response.read()
        return response.status
    finally:
        client.close()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request("GET", "/metrics/")
        response = client.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        client.close()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
