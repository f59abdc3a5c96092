from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from livefeed.categories import choose_language
from livefeed.models import Preference

# Who, password, staff, and the language livefeed speaks to them (bob's shows the translated notifications).
DEMO_USERS = [("alice", "alice-demo", True, ""), ("bob", "bob-demo", False, "fr")]
DEMO_GROUP = "Demo team"


class Command(BaseCommand):
    help = "Create the demo logins and group (idempotent) and print them."

    def handle(self, *args, **options):
        User = get_user_model()
        team, _ = Group.objects.get_or_create(name=DEMO_GROUP)
        for username, password, staff, language in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            # set_password() changes the hash (a new salt), and with it the
            # session auth hash: every signed-in demo session would end on
            # each `make demo`. Only reset a password that no longer works.
            if not user.check_password(password):
                user.set_password(password)
            user.is_staff = user.is_superuser = staff
            user.email = user.email or f"{username}@example.com"  # where the email digests go
            user.save()
            user.groups.add(team)
            # Only until they choose one themselves: a later run keeps their choice.
            if language and not Preference.objects.filter(user=user, category="").exclude(language="").exists():
                choose_language(user, language)
        self.stdout.write(
            f"Demo logins: alice / alice-demo (staff), bob / bob-demo (reads French); both in the group {DEMO_GROUP!r}"
        )
