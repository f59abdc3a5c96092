"""A fresh database with N users, each signed in through a saved session (bulk, fast)."""

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def create_database(kind: str) -> tuple[str, str]:
    """Return (DATABASE_URL, name) of a new empty database: PostgreSQL or a SQLite file."""
    name = f"livefeed_bench_{os.getpid()}"
    if kind == "sqlite":
        path = Path(tempfile.gettempdir()) / f"{name}.sqlite3"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}", str(path)
    import psycopg

    with psycopg.connect(_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return _ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(kind: str, name: str) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def populate(count: int) -> list[tuple[str, int]]:
    """Migrate, then create count users and a session each; return [(session_key, user_pk)]."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0, interactive=False)
    user_model = get_user_model()
    password = make_password(secrets.token_hex(8))  # hashed once: every user shares it
    users = user_model.objects.bulk_create(
        [user_model(username=f"bench{i}", password=password) for i in range(count)], batch_size=2000
    )
    store = SessionStore()
    expires = timezone.now() + timedelta(days=1)
    sessions = []
    for user in users:
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        sessions.append(
            Session(session_key=secrets.token_hex(16), session_data=store.encode(data), expire_date=expires)
        )
    Session.objects.bulk_create(sessions, batch_size=2000)
    return [(session.session_key, user.pk) for session, user in zip(sessions, users, strict=True)]


@contextlib.contextmanager
def populated(kind: str, count: int) -> Iterator[list[tuple[str, int]]]:
    """Set Django up in this process on a new database of count signed-in users; drop it after.

    For the in-process benches: the in-memory channel layer (no Redis), bench.settings.
    """
    url, name = create_database(kind)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.db import connections

    try:
        yield populate(count)
    finally:
        connections.close_all()
        drop_database(kind, name)
