from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

import livefeed
from livefeed.models import Notification


class Command(BaseCommand):
    help = "Send a notification to users, a group or everyone through livefeed.notify()."

    def add_arguments(self, parser):
        audience = parser.add_mutually_exclusive_group(required=True)
        audience.add_argument("--user", action="append", metavar="USERNAME", help="repeatable")
        audience.add_argument("--group", metavar="NAME")
        audience.add_argument("--all", action="store_true", dest="everyone", help="every active user")
        parser.add_argument("--title", required=True)
        parser.add_argument("--body", default="")
        parser.add_argument("--level", default="info", choices=Notification.Level.values)
        parser.add_argument("--url", default="")

    def handle(self, *args, user, group, everyone, title, body, level, url, **options):
        User = get_user_model()
        users = list(User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": user or []}))
        if missing := set(user or []) - {found.get_username() for found in users}:
            raise CommandError(f"No such user: {', '.join(sorted(missing))}")
        found_group = Group.objects.filter(name=group).first() if group else None
        if group and not found_group:
            raise CommandError(f"No such group: {group}")
        audience = {"recipient": users} if user else {"group": found_group} if group else {"everyone": everyone}
        sent = livefeed.notify(**audience, title=title, body=body, level=level, url=url)
        count = sent.deliveries.count()
        self.stdout.write(f"Sent notification {sent.pk} to {count} recipient{'s' * (count != 1)}.")
