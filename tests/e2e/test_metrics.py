"""`/metrics` tells an operator what the service is doing; the logs tie each line to its match."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pairline.client import Client
from tests.conftest import ServerFactory
from tests.e2e.rawws import guest_token
from tests.e2e.sse_client import SseClient
from tests.e2e.test_matching import confirmed_pair


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the node's /metrics, by name and labels."""
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


async def test_a_match_and_a_skip_show_in_the_metrics(start_server: ServerFactory) -> None:
    server = await start_server()
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await ann.send({"type": "ack", "seq": 10_000})  # refused: bad_request
        await ann.wait_for("error")
        await ann.skip()
        await bob.wait_for("partner_left")
        m = await scrape(server.url)

        assert m[("pairline_proposals_total", (("outcome", "confirmed"), ("reason", "")))] == 1
        assert m[("pairline_partner_left_total", (("reason", "skipped"),))] == 1
        assert m[("pairline_errors_total", (("code", "bad_request"),))] == 1
        # Both users: queued → matched → acked → confirmed.
        for name in (
            "pairline_wait_to_matched_seconds_count",
            "pairline_matched_to_confirmed_seconds_count",
            "pairline_ack_round_trip_seconds_count",
        ):
            assert m[(name, ())] == 2, name
        assert m[("pairline_skip_to_partner_notified_seconds_count", ())] == 1
        assert 0 < m[("pairline_matched_to_confirmed_seconds_sum", ())] < 10
        assert m[("pairline_connected_users", (("transport", "websocket"),))] == 2
        users = {state: m[("pairline_users", (("state", state),))] for state in ("idle", "queued")}
        in_a_match = sum(m[("pairline_users", (("state", s),))] for s in ("proposed", "in_call"))
        assert users["idle"] == 0 and users["queued"] + in_a_match == 2

    await server.stop()
    lines = [json.loads(line) for line in server.log if line.startswith("{")]
    of_match = [line for line in lines if line.get("match_id") == match_id]
    assert {line["event"] for line in of_match} >= {"match_confirmed", "call_ended"}
    for line in of_match:
        assert {line["user_a"], line["user_b"]} == {ann.user_id, bob.user_id}, line


async def test_connected_users_are_counted_per_transport(start_server: ServerFactory) -> None:
    server = await start_server()
    async with (
        Client(server.url) as ann,
        SseClient(server.url, await guest_token(server.url, "sse")) as bob,
    ):
        await bob.connect()
        await ann.join()
        m = await scrape(server.url)
        assert m[("pairline_connected_users", (("transport", "websocket"),))] == 1
        assert m[("pairline_connected_users", (("transport", "sse"),))] == 1
