"""Recompute runs: the history, and queueing a recompute now (a JSON 503 when the broker is away)."""
from __future__ import annotations

import logging

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from ...models import RecomputeRun
from ...recompute import tasks
from .. import serializers as s
from ..errors import ServiceUnavailable
from ..filters import RunFilter
from ..pagination import RunCursorPagination
from .base import ApiGenericView

logger = logging.getLogger(__name__)

# Runs ----------------------------------------------------------------------------------------------
# A broker that refuses, or accepts and never answers, is a 503 within about 1.3 s (0.5 + 0.25 + 0.5)
# instead of a request hung until gunicorn kills it. The send has its own connection with tighter
# timeouts than the workers' (settings: CELERY_BROKER_TRANSPORT_OPTIONS), and one retry, for a
# broker that dropped the connection or is restarting; a second would not fit in 2 s once stalled.
BROKER_PUBLISH_TRANSPORT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
BROKER_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.25, "interval_step": 0, "interval_max": 0.25}


class RunsView(ApiGenericView):
    operations = {"GET": "runs_list", "POST": "runs_trigger"}
    error_statuses = {"POST": (503,)}
    queryset = RecomputeRun.objects.all()
    serializer_class = s.RunOutputSerializer
    filterset_class = RunFilter
    pagination_class = RunCursorPagination

    @extend_schema(operation_id="runs_list", tags=["runs"], responses=s.RunOutputSerializer(many=True),
                   summary="Recompute runs, newest first, cursor-paginated.")
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(operation_id="runs_trigger", tags=["runs"], request=None, filters=False,
                   responses={202: s.RunTriggerOutputSerializer},
                   summary="Queue a recompute of every active symbol now (503 when the broker is down).")
    def post(self, request):
        try:
            with tasks.recompute.app.connection_for_write(transport_options=BROKER_PUBLISH_TRANSPORT_OPTIONS) as broker:
                result = tasks.recompute.apply_async(kwargs={"trigger": "api"}, connection=broker, retry=True,
                                                     retry_policy=BROKER_RETRY_POLICY)
        except Exception:  # any broker failure: the run was not queued, the caller may retry
            logger.warning("could not queue a recompute", exc_info=True)
            raise ServiceUnavailable("The task broker is unreachable: the recompute was not queued.") from None
        return Response({"message": "Recompute queued.", "task_id": result.id or ""}, status=status.HTTP_202_ACCEPTED)
