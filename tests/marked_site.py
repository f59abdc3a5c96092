"""The demo site with a middleware that replaces the stream's content (tests.middleware.Marking), for real servers."""

from project.settings import *  # noqa: F403

MIDDLEWARE = [*MIDDLEWARE, "tests.middleware.Marking"]  # noqa: F405
