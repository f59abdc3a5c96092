"""Test settings: the demo's, with an in-memory layer and fast hashing.

DATABASE_URL selects PostgreSQL; tests that prove cross-process delivery set
up their own Redis layer (tests/conftest.py).
"""

from project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}
}
LIVEFEED = {}
LOGGING = {"version": 1, "disable_existing_loggers": False}
