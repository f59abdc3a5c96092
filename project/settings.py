"""Settings of the livefeed demo site.

Everything that differs between a laptop and a deployment comes from the
environment, with defaults that make `git clone` + the README's first command a
working single-process demo (SQLite and the in-memory channel layer).
"""

import os
from pathlib import Path

import dj_database_url
import django

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-livefeed-demo-only"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",  # first, so `manage.py runserver` serves ASGI (docs/design.md#trap-1)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "livefeed",
    "project",  # the demo site: its templates and demo_setup command
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.gzip.GZipMiddleware",  # on purpose: the stream must bypass it
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql") and os.environ.get("DATABASE_POOL"):
    # Django's PostgreSQL pool, which it recommends over CONN_MAX_AGE under ASGI:
    # each stream's connect trip borrows a connection for a moment instead of
    # opening one (docs/deploy.md). DATABASE_POOL is the most it opens.
    pool = {"min_size": 1, "max_size": int(os.environ["DATABASE_POOL"])}
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = pool
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Publishers and the stream's replay query meet on one file: wait for the
    # write lock instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

REDIS_URL = os.environ.get("REDIS_URL", "")
# "host:port,host:port": Redis Sentinels watching the primary named REDIS_MASTER.
REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")
if REDIS_SENTINELS:
    sentinels = [(host, int(port)) for host, port in (entry.rsplit(":", 1) for entry in REDIS_SENTINELS.split(","))]
    REDIS_HOSTS: list = [{"sentinels": sentinels, "master_name": os.environ.get("REDIS_MASTER", "mymaster")}]
else:
    # Several comma-separated URLs: channels-redis shards the channels over them.
    REDIS_HOSTS = [url for url in REDIS_URL.split(",") if url]
if REDIS_HOSTS:
    # One PUBLISH per group_send and per-process fan-out; works with redis-py 8
    # (docs/design.md#trap-6, docs/design.md#trap-7). At-most-once: the event log covers gaps.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": REDIS_HOSTS},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# The languages livefeed ships catalogs for: the preferences page offers these.
LANGUAGES = [("en", "English"), ("fr", "French")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LIVEFEED = {
    "HEARTBEAT": float(os.environ.get("LIVEFEED_HEARTBEAT", 15)),
    # Without Redis, events sent from another process (shell, a worker) reach
    # this server only through the event log: sweep it often.
    "RECOVERY_INTERVAL": 2.0 if REDIS_HOSTS else 0.5,
    "SHUTDOWN_SPREAD": int(os.environ.get("LIVEFEED_SHUTDOWN_SPREAD", 10_000)),
    "DUE_INTERVAL": float(os.environ.get("LIVEFEED_DUE_INTERVAL", 30)),
    "SHUTDOWN_GRACE": float(os.environ.get("LIVEFEED_SHUTDOWN_GRACE", 0.5)),
    # docs/notifications.md: what reaches people by email, and when. The demo
    # emails "general" too (the admin's default), a minute after it stays unread.
    "CATEGORIES": {
        "general": {"email": True},
        "mentions": {"label": "Mentions", "email": True},
        "security": {"label": "Security", "email": True, "required": True},
    },
    "EMAIL_DELAY": float(os.environ.get("LIVEFEED_EMAIL_DELAY", 60)),
    "SITE_URL": os.environ.get("LIVEFEED_SITE_URL", "http://127.0.0.1:8000"),
}

# Email: SMTP when EMAIL_HOST is set, else printed on the server's console. Django 6.1
# deprecates EMAIL_BACKEND and EMAIL_HOST for MAILERS; 5.2 knows only the former.
_SMTP = (
    {"host": os.environ["EMAIL_HOST"], "port": int(os.environ.get("EMAIL_PORT", 25))}
    if os.environ.get("EMAIL_HOST")
    else None
)
_BACKEND = f"django.core.mail.backends.{'smtp' if _SMTP else 'console'}.EmailBackend"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _BACKEND, "OPTIONS": _SMTP or {}}}
else:
    EMAIL_BACKEND = _BACKEND
    if _SMTP:
        EMAIL_HOST, EMAIL_PORT = _SMTP["host"], _SMTP["port"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "livefeed-demo@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"livefeed": {"handlers": ["console"], "level": os.environ.get("LIVEFEED_LOG_LEVEL", "INFO")}},
}
