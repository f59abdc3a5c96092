import shutil

import pytest
from channels.layers import channel_layers
from django.contrib.auth.models import User
from django.db import connection

from livefeed import hub, outbox
from tests import servers
from tests.streams import session_for


@pytest.fixture(autouse=True)
def _fresh_layers():
    """Give every test new channel layers and hubs (each test runs its own event loop), and a quiet log."""
    yield
    channel_layers.backends.clear()
    hub._hubs.clear()
    outbox._contended_until = 0.0  # a test's contended log does not decide how the next one publishes


@pytest.fixture
def alice(db) -> User:
    """A saved user (password "x"): the one most tests act as."""
    return User.objects.create_user("alice", password="x")


@pytest.fixture
def bob(db) -> User:
    """A second saved user (password "x"), for what alice must not see."""
    return User.objects.create_user("bob", password="x")


@pytest.fixture
def alice_session(alice) -> str:
    """The key of a saved session signed in as alice: what a stream's cookie carries."""
    return session_for(alice)


@pytest.fixture
def alice_channel(alice, alice_session) -> tuple[str, str]:
    """Alice's own channel and the key of a session signed in as her."""
    return f"user.{alice.pk}", alice_session


@pytest.fixture
def bob_session(bob) -> str:
    """The key of a saved session signed in as bob."""
    return session_for(bob)


@pytest.fixture(scope="session")
def redis_url():
    """A private redis-server for this test run, so no state leaks in from elsewhere."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed: run `bash scripts/test-deps.sh`.")
    process = servers.redis_server()
    yield f"redis://127.0.0.1:{process.port}/0"
    process.stop()


@pytest.fixture
def redis_layer(redis_url, settings):
    """Switch this process to the Redis layer the servers use."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }
    channel_layers.backends.clear()
    return redis_url


@pytest.fixture
def database_url(transactional_db):
    """A URL of the test database that other processes can open."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{settings_dict['NAME']}"


@pytest.fixture
def daphne_servers(database_url, redis_url):
    """Start real daphne servers on free ports; all are stopped after the test."""
    started: list[servers.Process] = []

    def start(count: int = 1, **env: str) -> list[servers.Process]:
        for _ in range(count):
            started.append(servers.daphne(servers.server_env(database_url, redis_url, **env)))
        return started[-count:]

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session", autouse=True)
def _drop_stray_connections(django_db_setup, django_db_blocker):
    """Let PostgreSQL drop the test database even if a worker thread the tests started kept a connection."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
