from django.db import models
from django.utils import timezone


class EventQuerySet(models.QuerySet):
    def after(self, last_id: int, channels: list[str]) -> "EventQuerySet":
        """Return events of these channels newer than last_id, oldest first."""
        return self.filter(channel__in=channels, id__gt=last_id).order_by("id")

    def prune(self, older_than_seconds: float) -> int:
        """Delete events past the replay retention; return how many went."""
        cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
        deleted, _ = self.filter(created_at__lt=cutoff).delete()
        return deleted


class Event(models.Model):
    """One published event: the source a reconnecting stream replays from.

    Its id is the SSE `id:` on every process, and ids become visible in
    increasing order (see api._record), so "everything after id N" has no gaps.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=100)
    event = models.CharField(max_length=100)
    # The JSON text exactly as it goes on the wire, so replay re-sends the same bytes.
    data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["channel", "id"], name="livefeed_event_channel_id")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.event} #{self.pk}"
