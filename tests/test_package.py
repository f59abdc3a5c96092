"""The built wheel is a working Django app on its own, outside this repository and its demo."""

import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

from tests import servers

pytestmark = pytest.mark.e2e

SETTINGS = """
SECRET_KEY = "not-the-demo"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "channels", "livefeed",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "site_urls"
ASGI_APPLICATION = "site_asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "site.sqlite3"}}
CHANNEL_LAYERS = {"default": {
    "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [REDIS_URL]},
}}
USE_TZ = True
"""
URLS = """
from django.urls import include, path
urlpatterns = [path("feed/", include("livefeed.urls"))]
"""
ASGI = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
from django.core.asgi import get_asgi_application
application = get_asgi_application()
"""
# Where livefeed was imported from, then a signed-in session of a new user.
SIGN_IN = "import livefeed\nprint(livefeed.__file__)\n" + servers.sign_in_code("pat")


def test_wheel_installs_and_streams_with_a_minimal_project(tmp_path, redis_url):
    wheels, site, project = tmp_path / "wheels", tmp_path / "site-packages", tmp_path / "project"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", wheels, servers.package_source(tmp_path / "source")],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:  # compiled, or Django shows French readers English
        assert "livefeed/locale/fr/LC_MESSAGES/django.mo" in archive.namelist()
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True, capture_output=True)
    project.mkdir()
    (project / "site_settings.py").write_text(f"REDIS_URL = {redis_url!r}\n" + textwrap.dedent(SETTINGS))
    (project / "site_urls.py").write_text(URLS)
    (project / "site_asgi.py").write_text(ASGI)
    # The wheel and the minimal project only: the repository is not importable from here.
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{project}", "DJANGO_SETTINGS_MODULE": "site_settings"}
    env.pop("DATABASE_URL", None)

    def django(*args):
        result = subprocess.run(
            [sys.executable, "-m", "django", *args], cwd=project, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    django("migrate", "-v0")
    module_path, session_key = django("shell", "-c", SIGN_IN).split()[-2:]
    assert module_path.startswith(str(site))
    port = servers.free_port()
    args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "site_asgi:application"]
    server = servers.Process(f"wheel-daphne-{port}", args, port, env, cwd=project).start()
    try:
        stream = servers.SSEClient(port, "/feed/stream/", headers={"Cookie": f"sessionid={session_key}"})
        assert stream.response.status == 200
        stream.connected()
        django("shell", "-c", "import livefeed; livefeed.publish('broadcast', 'hello', {'from': 'the wheel'})")
        (event,) = stream.events(1)
        stream.close()
    finally:
        server.stop()
    assert (event.type, event.data) == ("hello", '{"from":"the wheel"}')
