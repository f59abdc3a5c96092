from django.core.management.base import BaseCommand

from livefeed.digest import deliver


class Command(BaseCommand):
    help = (
        "Email each user the notifications still unread EMAIL_DELAY seconds after their last update, "
        "one digest per user (run it from cron every minute; overlapping runs email each one once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--delay", type=float, help="Seconds a notification waits unread (overrides EMAIL_DELAY).")

    def handle(self, *args, delay=None, **options):
        sent = deliver(delay)
        self.stdout.write(f"Sent {sent} email(s).")
