from django.core.management.base import BaseCommand

from livefeed.due import run_due


class Command(BaseCommand):
    help = (
        "Bring back snoozed notifications that are due and remove expired ones, live (run it from cron "
        "every minute when no server process runs the job: LIVEFEED['DUE_INTERVAL'] = None)."
    )

    def handle(self, *args, **options):
        woken, removed = run_due()
        self.stdout.write(f"Brought back {woken} snoozed, removed {removed} expired.")
