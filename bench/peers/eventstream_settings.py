"""bench.settings plus django-eventstream, set up as its README deploys it across processes.

Storage (`DjangoModelStorage`): every event is saved before it is published, so a
client resumes from its `Last-Event-ID` and a listener whose queue overflowed
catches up from the database. Redis (`EVENTSTREAM_REDIS`): `send_event` from any
process, here the harness, reaches the server.
"""

from redis.connection import parse_url

from bench.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_eventstream"]  # noqa: F405
ROOT_URLCONF = "bench.peers.eventstream_urls"
ASGI_APPLICATION = "bench.peers.eventstream_asgi.application"
EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.DjangoModelStorage"
EVENTSTREAM_CHANNELMANAGER_CLASS = "bench.peers.eventstream_urls.UserChannelManager"
if REDIS_URL:  # noqa: F405
    EVENTSTREAM_REDIS = parse_url(REDIS_URL)  # noqa: F405
# Django's own database handling, as its README leaves it: no connection pool (one bench.settings
# may add for livefeed). Each open stream keeps its request's connection until it ends.
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)  # noqa: F405
