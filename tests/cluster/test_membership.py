"""Node membership on a real Redis: the dead are taken over once, and a node taken for dead
while it stalled finds out and makes its clients reconnect."""

from __future__ import annotations

import redis.asyncio as aioredis

from pairline.cluster.membership import NodeMembership

TIMEOUT_MS = 10_000


class Node:
    def __init__(self, client: aioredis.Redis, prefix: str, node_id: str, clock: list[int]):
        self.lost: list[str] = []
        self.resyncs = 0
        self.membership = NodeMembership(
            client,
            nodes_key=f"{prefix}:nodes",
            epoch_key=f"{prefix}:epoch",
            node_id=node_id,
            node_timeout_ms=TIMEOUT_MS,
            on_node_lost=self._node_lost,
            on_data_lost=self._resync,
            clock=lambda: clock[0],
        )

    async def _node_lost(self, node_id: str) -> None:
        self.lost.append(node_id)

    async def _resync(self) -> None:
        self.resyncs += 1


async def test_a_node_taken_for_dead_while_it_stalled_resyncs_its_clients(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    clock = [1_000_000]
    a, b, c = (Node(client, redis_prefix, name, clock) for name in ("a", "b", "c"))
    for node in (a, b, c):
        await node.membership.start()
    for _ in range(2):  # a stalls; b and c beat on, and both find a silent too long
        clock[0] += TIMEOUT_MS * 6 // 10
        await b.membership.beat()
        await c.membership.beat()
    assert (b.lost, c.lost) == (["a"], [])  # taken over once
    assert (b.resyncs, c.resyncs) == (0, 0)

    clock[0] += 100
    await a.membership.beat()  # a wakes up: it was declared dead
    assert a.resyncs == 1
    await a.membership.beat()  # and is a member again: once is enough
    assert a.resyncs == 1
    members = await client.zrange(f"{redis_prefix}:nodes", 0, -1)
    assert sorted(members) == [b"a", b"b", b"c"]
    for node in (a, b, c):
        await node.membership.stop()
    await client.aclose()


async def test_a_wiped_redis_makes_each_node_resync_its_clients_once(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    clock = [1_000_000]
    a, b = (Node(client, redis_prefix, name, clock) for name in ("a", "b"))
    for node in (a, b):
        await node.membership.start()
    # Everything gone: the epoch and the member set alike (a restart without persistence).
    await client.delete(f"{redis_prefix}:nodes", f"{redis_prefix}:epoch")
    for _ in range(3):
        clock[0] += 200
        await a.membership.beat()
        await b.membership.beat()
    assert (a.resyncs, b.resyncs) == (1, 1)  # both signs seen in one beat: one reconnect
    assert (a.lost, b.lost) == ([], [])
    for node in (a, b):
        await node.membership.stop()
    await client.aclose()
