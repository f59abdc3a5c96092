"""Test settings: the demo's, with an in-memory layer and fast hashing.

DATABASE_URL selects PostgreSQL; tests that prove cross-process delivery set
up their own Redis layer (tests/conftest.py).
"""

import os

from project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}}
LIVEFEED = {}
LOGGING = {"version": 1, "disable_existing_loggers": False}

# A file, not SQLite's in-memory default: real daphne processes started by the
# end-to-end tests must see the rows the tests write.
# One database per test run, so concurrent runs never share one.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    (BASE_DIR / "test-artifacts").mkdir(exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(BASE_DIR / "test-artifacts" / f"test-db-{os.getpid()}.sqlite3")  # noqa: F405
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_livefeed_{os.getpid()}"}  # noqa: F405
