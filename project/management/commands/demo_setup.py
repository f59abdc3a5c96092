from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERS = [("alice", "alice-demo", True), ("bob", "bob-demo", False)]


class Command(BaseCommand):
    help = "Create the demo logins (idempotent) and print them."

    def handle(self, *args, **options):
        User = get_user_model()
        for username, password, staff in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = user.is_superuser = staff
            user.save()
        self.stdout.write("Demo logins: alice / alice-demo (staff), bob / bob-demo")
