"""Django admin for compliance and risk: the read-only ledger, snapshots, runs and telemetry, and policy.

Nobody edits recorded rows here, superusers included; policy edits go through policy.services.
Each module registers its own admins: importing them here is what Django's admin autodiscovery sees.
"""
from django.contrib import admin

from . import ledger, policy, telemetry  # noqa: F401  (register their admins)

admin.site.site_header = "Adaptive sizing administration"
admin.site.site_title = "Adaptive sizing admin"
admin.site.index_title = "Ledger, snapshots and policy"
admin.site.site_url = "/dashboard/"  # "View site" opens the Execution Health Overview
