"""Many nodes as one service: users on different nodes meet, and a node's death loses nothing."""

from __future__ import annotations

import signal

import pytest

from pairline.client import Client
from tests.cluster.churn import run_churn
from tests.cluster.conftest import NodesFactory
from tests.e2e.test_matching import confirmed_pair


async def test_users_on_different_nodes_are_matched_and_hear_each_other(
    start_nodes: NodesFactory,
) -> None:
    one, two = await start_nodes(2)
    async with (
        Client(one.url, display_name="ann") as ann,
        Client(two.url, display_name="bob") as bob,
    ):
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await ann.chat("hello from node 1")
        assert (await bob.wait_for("chat")).raw["text"] == "hello from node 1"
        await bob.chat("hello from node 2")
        assert (await ann.wait_for("chat")).raw["text"] == "hello from node 2"
        await bob.skip()
        left = await ann.wait_for("partner_left")
        assert left.raw["match_id"] == match_id and left.raw["reason"] == "skipped"


async def test_queue_order_is_one_across_nodes(start_nodes: NodesFactory) -> None:
    one, two, three = await start_nodes(3)
    async with Client(one.url) as en, Client(two.url) as fr, Client(three.url) as en2:
        await en.join(lang="en")
        assert (await fr.join(lang="fr"))["position"] == 2
        await en2.join(lang="en")
        matched = await en2.wait_for("matched")
        assert matched.raw["partner"]["user_id"] == en.user_id


async def test_a_second_connection_on_another_node_takes_the_session_over(
    start_nodes: NodesFactory,
) -> None:
    one, two = await start_nodes(2)
    async with Client(one.url, reconnect=False) as tab1:
        await tab1.join()
        async with Client(two.url, token=tab1.token) as tab2:
            assert tab2.state["status"] == "queued"
            await tab1.wait_closed(timeout=5)
            assert tab1.closed_code == 4409
            async with Client(one.url) as bob:
                await bob.join()
                matched = await tab2.wait_for("matched")
                assert matched.raw["partner"]["user_id"] == bob.user_id


async def test_a_killed_nodes_user_resumes_its_call_on_another_node(
    start_nodes: NodesFactory,
) -> None:
    one, two = await start_nodes(2, PAIRLINE_RESUME_WINDOW_MS=10_000)
    async with (
        Client([one.url, two.url], display_name="ann") as ann,
        Client(two.url, display_name="bob") as bob,
    ):
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        first_session = ann.session
        await one.stop(signal.SIGKILL)
        # ann's SDK reconnects to node 2. Its session's stream died with node 1, so the session
        # is renewed, and the state it carries still holds the call. (What was sent to ann while
        # it was away went to node 1's channel and is lost: docs/operations.md.)
        await ann.wait_welcome(2, timeout=10)
        await bob.chat("still there?")
        assert (await ann.wait_for("chat", timeout=10)).raw["text"] == "still there?"
        assert ann.session != first_session
        assert ann.welcomes[-1]["state"]["status"] == "in_call"
        assert ann.welcomes[-1]["state"]["match"]["match_id"] == match_id
        await ann.chat("yes")
        assert (await bob.wait_for("chat")).raw["text"] == "yes"


async def test_a_dead_nodes_deadlines_are_completed_by_another(start_nodes: NodesFactory) -> None:
    one, two = await start_nodes(2)
    async with Client(one.url, reconnect=False) as ann, Client(two.url) as bob:
        await ann.join()
        await bob.join()
        await confirmed_pair(ann, bob)
        await ann.drop()  # node 1 starts ann's resume window (a deadline in Redis)...
        await bob.wait_for("partner_reconnecting")
        await one.stop(signal.SIGKILL)  # ...and dies; node 2 must end the window
        left = await bob.wait_for("partner_left", timeout=10)
        assert left.raw["reason"] == "disconnected" and left.raw["requeued"] is True


async def test_a_dead_nodes_users_are_detached_and_their_partners_told(
    start_nodes: NodesFactory,
) -> None:
    one, two = await start_nodes(2)
    async with Client(one.url, reconnect=False) as ann, Client(two.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await one.stop(signal.SIGKILL)  # ann never comes back
        reconnecting = await bob.wait_for("partner_reconnecting", timeout=10)
        assert reconnecting.raw["match_id"] == match_id
        left = await bob.wait_for("partner_left", timeout=10)
        assert left.raw["reason"] == "disconnected"


@pytest.mark.soak
@pytest.mark.timeout(240)
async def test_three_nodes_under_churn_keep_every_invariant(start_nodes: NodesFactory) -> None:
    nodes = await start_nodes(3, PAIRLINE_SKIP_LIMIT=0, PAIRLINE_RESUME_WINDOW_MS=3000)
    report = await run_churn([n.url for n in nodes], users=300, seconds=20, seed=1)
    assert report.violations == []
    assert report.confirmed > 300, report  # the run really churned
    assert min(report.actions.values()) > 0, report.actions


@pytest.mark.soak
@pytest.mark.timeout(240)
async def test_three_nodes_survive_one_killed_mid_run(start_nodes: NodesFactory) -> None:
    nodes = await start_nodes(3, PAIRLINE_SKIP_LIMIT=0, PAIRLINE_RESUME_WINDOW_MS=3000)

    async def kill_one() -> None:
        await nodes[0].stop(signal.SIGKILL)

    report = await run_churn([n.url for n in nodes], users=300, seconds=20, seed=2, midway=kill_one)
    assert report.violations == []
    assert report.confirmed > 300, report
