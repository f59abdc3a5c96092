from django.apps import AppConfig


class LivefeedConfig(AppConfig):
    name = "livefeed"
    verbose_name = "Live feed"
    default_auto_field = "django.db.models.BigAutoField"
