from typing import Any

from django.apps import AppConfig, apps
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_save


class LivefeedConfig(AppConfig):
    name = "livefeed"
    verbose_name = "Live feed"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from livefeed import answers, channels, checks, signals  # noqa: F401 - checks register themselves
        from livefeed.models import Notification

        channels.register(answers.PATTERN, answers.authorize)
        post_save.connect(signals.notification_saved, sender=Notification, dispatch_uid="livefeed_saved")
        user_logged_out.connect(signals.user_logged_out, dispatch_uid="livefeed_logged_out")
        m2m_changed.connect(
            signals.recipients_added, sender=Notification.recipients.through, dispatch_uid="livefeed_added"
        )
        self._connect_revocations(signals)

    def _connect_revocations(self, signals: Any) -> None:
        # Early re-authorization of open streams (livefeed.revocation checks them periodically anyway).
        if not apps.is_installed("django.contrib.auth"):
            return  # only in trimmed settings (a check's test): streams need auth anyway
        user_model = get_user_model()
        post_save.connect(signals.user_saved, sender=user_model, dispatch_uid="livefeed_user_saved")
        groups = getattr(user_model, "groups", None)
        if groups is not None:
            m2m_changed.connect(signals.user_groups_changed, sender=groups.through, dispatch_uid="livefeed_user_groups")
