from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

DEMO_USERS = [("alice", "alice-demo", True), ("bob", "bob-demo", False)]
DEMO_GROUP = "Demo team"


class Command(BaseCommand):
    help = "Create the demo logins and group (idempotent) and print them."

    def handle(self, *args, **options):
        User = get_user_model()
        team, _ = Group.objects.get_or_create(name=DEMO_GROUP)
        for username, password, staff in DEMO_USERS:
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
        self.stdout.write(f"Demo logins: alice / alice-demo (staff), bob / bob-demo; both in the group {DEMO_GROUP!r}")
