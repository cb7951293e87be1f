"""The four roles (Django groups) and exactly the model permissions each needs.

A data migration creates them; tests assert them; the API checks group membership.
"""
ENGINE, DASHBOARD, COMPLIANCE, RISK = "engine", "dashboard", "compliance", "risk"
ROLES = (ENGINE, DASHBOARD, COMPLIANCE, RISK)

_READ_MARKET = ["view_symbol", "view_sizingsnapshot", "view_recomputerun"]
_READ_LEDGER = ["view_sizingdecision"]
_READ_POLICY = ["view_globalpolicy", "view_override"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    # The engine sizes orders and posts its telemetry; it never changes policy.
    ENGINE: _READ_MARKET + ["add_sizingdecision", "add_fill", "add_order", "add_candle", "view_fill",
                            "view_order", "view_candle"],
    DASHBOARD: _READ_MARKET + _READ_LEDGER + _READ_POLICY,
    # Compliance reads everything on record, including policy history, and changes nothing.
    COMPLIANCE: _READ_MARKET + _READ_LEDGER + _READ_POLICY + [
        "view_fill", "view_order", "view_candle", "view_historicalsymbol", "view_historicalglobalpolicy",
        "view_historicaloverride",
    ],
    # Risk switches modes and pins overrides, and reads what it needs to decide.
    RISK: _READ_MARKET + _READ_LEDGER + _READ_POLICY + [
        "change_symbol", "change_globalpolicy", "add_override", "change_override",
        "view_historicalsymbol", "view_historicalglobalpolicy", "view_historicaloverride",
    ],
}


def sync_role_groups(group_model, permission_model) -> None:
    """Make each role group hold exactly its declared permissions (used by the migration)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        permissions = list(permission_model.objects.filter(content_type__app_label="sizing_app",
                                                           codename__in=codenames))
        missing = set(codenames) - {permission.codename for permission in permissions}
        if missing:
            raise RuntimeError(f"role {role}: permissions not found: {sorted(missing)}")
        group.permissions.set(permissions)
