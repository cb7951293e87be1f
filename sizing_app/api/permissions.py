"""Who may call which API operation: the role table, as data, and the permission class enforcing it.

Each view names its operation per HTTP method; a user passes when one of its groups is listed for
that operation (superusers pass everywhere). Model permissions are deliberately not consulted.
"""
from __future__ import annotations

from rest_framework.permissions import BasePermission

from ..roles import COMPLIANCE, DASHBOARD, ENGINE, RISK

EVERY_ROLE = frozenset({ENGINE, DASHBOARD, COMPLIANCE, RISK})
PEOPLE = frozenset({DASHBOARD, COMPLIANCE, RISK})

# operation -> roles allowed. The engine sizes, reads factors and health, and posts its telemetry;
# dashboard and compliance read everything; risk reads everything and changes policy and runs.
ACCESS: dict[str, frozenset[str]] = {
    "symbols_list": EVERY_ROLE,
    "factors_latest_list": EVERY_ROLE,
    "factors_latest_detail": EVERY_ROLE,
    "factors_history": EVERY_ROLE,
    "decisions_list": PEOPLE,
    "decisions_detail": PEOPLE,
    "size_create": frozenset({ENGINE}),
    "size_batch_create": frozenset({ENGINE}),
    "execution_health_list": EVERY_ROLE,
    "execution_health_detail": EVERY_ROLE,
    "fills_bulk_create": frozenset({ENGINE}),
    "orders_bulk_create": frozenset({ENGINE}),
    "candles_bulk_create": frozenset({ENGINE}),
    "runs_list": PEOPLE,
    "runs_trigger": frozenset({RISK}),
    "policy_read": PEOPLE,
    "policy_global_update": frozenset({RISK}),
    "policy_symbol_update": frozenset({RISK}),
    "overrides_list": PEOPLE,
    "overrides_create": frozenset({RISK}),
    "overrides_revoke": frozenset({RISK}),
    "schema": EVERY_ROLE,
    "docs": EVERY_ROLE,
}


def user_roles(user) -> frozenset[str]:
    """The user's group names, read once and kept on the user object (one query per request at most)."""
    roles = getattr(user, "_api_roles", None)
    if roles is None:
        roles = frozenset(user.groups.values_list("name", flat=True))
        user._api_roles = roles
    return roles


def view_operation(view, method: str) -> str | None:
    operations = getattr(view, "operations", None) or {}
    return operations.get("GET" if method == "HEAD" else method)


class RolePermission(BasePermission):
    """Allows a request when the user's role is listed in ACCESS for the view's operation.

    Fails closed: a view without `operations`, or an operation missing from ACCESS, admits
    superusers only. A method the view does not implement passes here so DRF answers 405.
    """

    message = "Your role may not perform this operation."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        method = request.method.upper()
        operation = view_operation(view, method)
        if operation is None and (method == "OPTIONS" or not hasattr(view, method.lower())):
            return True  # DRF answers 405 Method Not Allowed (OPTIONS metadata is disabled)
        if user.is_superuser:
            return True
        if operation is None:
            return False
        return not ACCESS.get(operation, frozenset()).isdisjoint(user_roles(user))
