from django.core.management.base import BaseCommand, CommandError

from livefeed import conf
from livefeed.models import Event


class Command(BaseCommand):
    help = "Delete event log rows older than LIVEFEED['REPLAY_RETENTION'] (run it from cron)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, metavar="SECONDS", help="default: REPLAY_RETENTION")

    def handle(self, *args, older_than, **options):
        seconds = conf.get("REPLAY_RETENTION") if older_than is None else older_than
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise CommandError(f"Retention must be a number of seconds ≥ 0, not {seconds!r}.")
        deleted = Event.objects.prune(seconds)
        self.stdout.write(f"Deleted {deleted} event{'s' * (deleted != 1)} older than {seconds:g} s.")
