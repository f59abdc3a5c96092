"""The django-eventstream peer: Django's own ASGI application, as its README deploys it, plus /__bench__/stats.

    DJANGO_SETTINGS_MODULE=bench.peers.eventstream_settings daphne bench.peers.eventstream_asgi:application

Its settings and route: bench/peers/eventstream_settings.py and eventstream_urls.py.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.eventstream_settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from bench.stats import with_stats  # noqa: E402

application = with_stats(get_asgi_application())
