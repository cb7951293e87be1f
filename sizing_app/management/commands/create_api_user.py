"""Create or update a user in one role and print its API token on the last line."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from ...roles import ROLES


class Command(BaseCommand):
    help = "Create or update USERNAME in ROLE (engine, dashboard, compliance, risk) and print its API token."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", help="Also set a password (for people who log in to admin/dashboard).")
        parser.add_argument("--superuser", action="store_true", help="Make the user a superuser (ops only).")

    @transaction.atomic
    def handle(self, *args, username, role, password=None, superuser=False, **options):
        try:
            group = Group.objects.get(name=role)
        except Group.DoesNotExist:
            raise CommandError(f"Role group {role!r} is missing: run `manage.py migrate` first.") from None
        user_model = get_user_model()
        try:
            # The same rules as the admin's user form (letters, digits and @.+-_, at most 150
            # characters): an empty, over-long or NUL-bearing name is refused, not stored.
            user_model._meta.get_field(user_model.USERNAME_FIELD).clean(username, None)
        except ValidationError as exc:
            raise CommandError(f"Invalid username {username[:200]!r}: {' '.join(exc.messages)}") from None
        user, created = user_model.objects.get_or_create(username=username)
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        # People in a role log in to admin; engine accounts only ever use their token.
        user.is_staff = role != "engine" or superuser
        user.is_superuser = superuser
        user.save()
        user.groups.set([group])
        token, _ = Token.objects.get_or_create(user=user)
        self.stderr.write(f"{'created' if created else 'updated'} user {username} in role {role}")
        self.stdout.write(token.key)
