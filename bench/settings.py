"""The demo site's settings, with the production switches a benchmark needs."""

import os

# As docs/deploy.md recommends under ASGI: a stream's connect borrows a pooled
# connection for its one trip instead of opening one (and PostgreSQL forking).
os.environ.setdefault("DATABASE_POOL", "4")

from project.settings import *  # noqa: E402, F403

DEBUG = False  # DEBUG keeps every query in memory and is not what anyone deploys
LIVEFEED = {
    **LIVEFEED,  # noqa: F405
    # The bench measures the engine, not its caps: room for 10,000 streams and a warm-up.
    "MAX_STREAMS": 100_000,
}
if os.environ.get("BENCH_MOVE_GATHER"):  # the mover's wait, for runs that price it
    LIVEFEED["MOVE_GATHER"] = float(os.environ["BENCH_MOVE_GATHER"])

from bench import patches  # noqa: E402

patches.settings(globals())
