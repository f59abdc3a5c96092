"""The demo site's settings, with the production switches a benchmark needs."""

from project.settings import *  # noqa: F403

DEBUG = False  # DEBUG keeps every query in memory and is not what anyone deploys
LIVEFEED = {
    **LIVEFEED,  # noqa: F405
    # The bench measures the engine, not its caps: room for 10,000 streams and a warm-up.
    "MAX_STREAMS": 100_000,
}

from bench import patches  # noqa: E402

patches.settings(globals())
