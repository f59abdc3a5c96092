"""ASGI entry point of the demo site: `daphne project.asgi:application`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from livefeed.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
