"""The demo site with streams that end after a second (MAX_AGE), for real servers."""

from project.settings import *  # noqa: F403

LIVEFEED = {**LIVEFEED, "MAX_AGE": 1}  # noqa: F405
