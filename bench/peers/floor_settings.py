"""bench.settings with the floor's one route (bench/peers/floor.py); with BENCH_FLOOR=bare, no middleware."""

import os

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.peers.floor"
ASGI_APPLICATION = "bench.peers.floor.application"
if os.environ.get("BENCH_FLOOR") == "bare":
    MIDDLEWARE = []
