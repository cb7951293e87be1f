"""The client's retries against a real server that fails: each one ends in exactly the ledger rows it should.

- A 503 (answered once by a proxy in front of the server, and on PostgreSQL for real: the
  server's database cut off and brought back) is retried, even without an order_ref: one row.
- A server that is down and restarted refuses connections: retried, one row.
- An answer lost after the server recorded the decision (the proxy drops or stalls it): with an
  order_ref the retry gets the original back (one row, replayed); without one the client does not
  retry and says so, and the single row the server did write shows why a blind retry would be wrong.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from sizing_client import RetryEvent, RetryPolicy, SizingClient, SizingUnavailable

from sizing_app.models import SizingDecision
from tests.faults.tcp_proxy import ProxyProcess

from .conftest import LIVE_TIMEOUT
from .live import FaultProxy, LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GROSS = 1000.0
SIZE = "/api/v1/size/"
BATCH = "/api/v1/size/batch/"
# Patient enough for a loaded machine, still bounded: no test here can hang past its deadline.
PATIENT = RetryPolicy(max_attempts=500, deadline=60.0, backoff_initial=0.05, backoff_max=0.5)


@pytest.fixture()
def proxy(server) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(server.port, stall_seconds=8.0).start()
    yield fault_proxy
    fault_proxy.stop()


def only_row() -> SizingDecision:
    (row,) = SizingDecision.objects.all()
    return row


def test_a_503_is_retried_against_the_server_into_exactly_one_row(proxy, tokens):
    proxy.fail("POST", SIZE, "answer_503")
    events: list[RetryEvent] = []
    with SizingClient(proxy.url, tokens["engine"], timeout=LIVE_TIMEOUT, on_retry=events.append) as client:
        decision = client.size("SOLUSDC", GROSS)  # no order_ref needed: a 503 promises nothing was written
    assert [seen.fault for seen in proxy.requests_to("POST", SIZE)] == ["answer_503", ""]
    assert [event.status for event in events] == [503] and events[0].delay >= 1.0  # the Retry-After
    row = only_row()
    assert (row.pk, row.final_size, decision.replayed) == (decision.id, decision.final_size, False)


def test_an_answer_lost_after_recording_is_retried_with_its_order_ref_into_the_original(proxy, tokens):
    proxy.fail("POST", SIZE, "forward_then_stall")  # the server records; the client's read times out
    events: list[RetryEvent] = []
    # 3 s: far above the server's time to size one order, far below the proxy's 8 s stall.
    with SizingClient(proxy.url, tokens["engine"], timeout=3.0, retry=PATIENT, on_retry=events.append) as client:
        decision = client.size("SOLUSDC", GROSS, order_ref="lost-1")
    assert [seen.fault for seen in proxy.requests_to("POST", SIZE)] == ["forward_then_stall", ""]
    assert "ReadTimeout" in events[0].reason
    row = only_row()
    assert decision.replayed is True  # the retry was answered with the decision the first attempt recorded
    assert (row.pk, row.order_ref, row.final_size) == (decision.id, "lost-1", decision.final_size)


def test_a_batch_whose_answer_was_dropped_is_retried_into_the_same_rows(proxy, tokens):
    proxy.fail("POST", BATCH, "forward_then_drop")
    orders = [("SOLUSDC", GROSS, "lost-a"), ("BTCUSDC", 20.0, "lost-b")]
    with SizingClient(proxy.url, tokens["engine"], timeout=LIVE_TIMEOUT, retry=PATIENT) as client:
        decisions = client.size_batch(orders)
    assert len(proxy.requests_to("POST", BATCH)) == 2
    assert [d.replayed for d in decisions] == [True, True]
    assert sorted(SizingDecision.objects.values_list("pk", flat=True)) == sorted(d.id for d in decisions)


def test_an_answer_lost_without_an_order_ref_is_not_retried(proxy, tokens):
    proxy.fail("POST", SIZE, "forward_then_drop")
    with SizingClient(proxy.url, tokens["engine"], timeout=LIVE_TIMEOUT, retry=PATIENT) as client:
        with pytest.raises(SizingUnavailable, match="no order_ref") as raised:
            client.size("SOLUSDC", GROSS)
    assert raised.value.outcome_unknown is True and raised.value.attempts == 1
    assert len(proxy.requests_to("POST", SIZE)) == 1  # sent once, never again
    # The server did record it (recorded, never applied): a blind retry would have made a second row.
    assert only_row().order_ref == ""


def test_a_server_restarted_while_the_client_retries_gives_exactly_one_row(server, tokens):
    server.kill()  # connections are refused from now until the new server listens
    events: list[RetryEvent] = []

    def restart_on_first_failure(event: RetryEvent) -> None:
        events.append(event)
        if len(events) == 1:
            server.spawn()  # not waited for: the client's retries meet its start-up

    with SizingClient(server.url, tokens["engine"], timeout=LIVE_TIMEOUT, retry=PATIENT,
                      on_retry=restart_on_first_failure) as client:
        decision = client.size("SOLUSDC", GROSS)  # no order_ref: a refused connection never reached a server
    assert events and all("ConnectError before the request was sent" in event.reason for event in events)
    assert only_row().pk == decision.id


# --- PostgreSQL: a real 503, the server's own database path cut ----------------------------------------

@pytest.fixture()
def server_behind_database_proxy(stack, market, tokens, tmp_path: Path) -> Iterator[tuple[LiveServer, ProxyProcess]]:
    """A server whose PostgreSQL connections go through a TCP proxy the test can kill and restart."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): SQLite is a file, there is no connection to cut")
    settings_dict = connection.settings_dict
    database_proxy = ProxyProcess(int(settings_dict["PORT"] or 5432), target_host=settings_dict["HOST"] or "127.0.0.1")
    database_proxy.start()
    url = urlsplit(stack.env["DATABASE_URL"])
    netloc = url.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{database_proxy.port}"
    server = LiveServer({**stack.env, "DATABASE_URL": urlunsplit(url._replace(netloc=netloc))},
                        cwd=stack.var_dir, log_dir=tmp_path, token=tokens["engine"]).start()
    yield server, database_proxy
    server.kill()
    database_proxy.kill()


def test_a_503_from_a_database_outage_is_retried_until_it_ends_into_exactly_one_row(server_behind_database_proxy,
                                                                                   tokens):
    server, database_proxy = server_behind_database_proxy
    database_proxy.kill()  # every server connection to PostgreSQL drops; new ones are refused
    events: list[RetryEvent] = []

    def end_the_outage_on_the_first_503(event: RetryEvent) -> None:
        events.append(event)
        if len(events) == 1:
            database_proxy.start()

    with SizingClient(server.url, tokens["engine"], timeout=LIVE_TIMEOUT, retry=PATIENT,
                      on_retry=end_the_outage_on_the_first_503) as client:
        decision = client.size("SOLUSDC", GROSS)  # no order_ref: the server's 503 promises nothing was written
    assert events[0].status == 503 and "service_unavailable" in events[0].reason, events
    assert all(event.status == 503 for event in events), [event.reason for event in events]
    row = only_row()
    assert (row.pk, row.final_size) == (decision.id, decision.final_size)
