"""The four roles as the migrations leave them: exactly the declared permissions, and no write on the record.

What compliance relies on: no group and no user but a superuser may change or delete a sizing
decision, a snapshot or a recompute run.
"""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from sizing_app.roles import ROLE_PERMISSIONS, ROLES

RECORD_MODELS = ("sizingdecision", "sizingsnapshot", "recomputerun")
FORBIDDEN = {f"{action}_{model}" for action in ("change", "delete") for model in RECORD_MODELS}


def test_the_four_roles_exist():
    assert set(ROLES) == {"engine", "dashboard", "compliance", "risk"} == set(ROLE_PERMISSIONS)
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_holds_exactly_its_declared_permissions(role):
    granted = set(Group.objects.get(name=role).permissions.values_list("content_type__app_label", "codename"))
    assert granted == {("sizing_app", codename) for codename in ROLE_PERMISSIONS[role]}


def test_the_declared_permissions_exist_and_grant_no_write_on_the_record():
    declared = {codename for codenames in ROLE_PERMISSIONS.values() for codename in codenames}
    existing = set(Permission.objects.filter(content_type__app_label="sizing_app").values_list("codename", flat=True))
    assert declared <= existing
    assert not declared & FORBIDDEN


def test_nobody_holds_change_or_delete_on_the_record():
    forbidden = Permission.objects.filter(content_type__app_label="sizing_app", codename__in=FORBIDDEN)
    assert forbidden.count() == len(FORBIDDEN)  # the permissions exist: their absence below means something
    assert not Group.objects.filter(permissions__in=forbidden).exists()
    assert not get_user_model().objects.filter(user_permissions__in=forbidden).exists()


@pytest.mark.parametrize("role", ROLES)
def test_a_member_of_any_role_cannot_change_or_delete_the_record(role):
    user = get_user_model().objects.create_user(username=f"{role}-member", password="unused-in-tests")
    user.groups.add(Group.objects.get(name=role))
    for codename in FORBIDDEN:
        assert not user.has_perm(f"sizing_app.{codename}")
    for codename in ROLE_PERMISSIONS[role]:
        assert user.has_perm(f"sizing_app.{codename}")


def test_a_member_of_every_role_at_once_still_cannot():
    user = get_user_model().objects.create_user(username="everything", password="unused-in-tests", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=ROLES))
    assert not any(user.has_perm(f"sizing_app.{codename}") for codename in FORBIDDEN)


def test_only_a_superuser_can():
    superuser = get_user_model().objects.create_superuser(username="root", password="unused-in-tests")
    assert all(superuser.has_perm(f"sizing_app.{codename}") for codename in FORBIDDEN)
