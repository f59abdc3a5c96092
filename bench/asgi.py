"""The demo's ASGI application plus /__bench__/stats (asyncio tasks, threads) for bench.run."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from bench import patches  # noqa: E402
from bench.stats import with_stats  # noqa: E402
from project.asgi import application as django_application  # noqa: E402

patches.code()

application = with_stats(django_application)
