"""Everything a node needs beyond a single process: the bus, membership, routing delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pairline.cluster.bus import NodeBus
from pairline.cluster.delivery import ClusterDelivery
from pairline.cluster.membership import NodeMembership
from pairline.store.base import Effects
from pairline.store.redis import codec
from pairline.store.redis.keys import PartitionKeys
from pairline.transport.registry import SessionRegistry


class ClusterNode:
    """Opens and closes the cluster services of one node, around the engine's lifetime."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        node_id: str,
        node_timeout_ms: int,
        registry: SessionRegistry,
    ) -> None:
        # The engine and gateway are built after the delivery they need: `bind` closes the loop.
        self._on_handed_off: Callable[[Effects], None] | None = None
        self._on_node_lost: Callable[[str], Awaitable[None]] | None = None
        self._on_resync: Callable[[], Awaitable[None]] | None = None
        self.delivery = ClusterDelivery(node_id, registry)
        self.bus = NodeBus(
            client,
            channel=PartitionKeys(prefix).handoff(node_id),
            node_id=node_id,
            on_message=self._handed_off,
            on_gap=self._listener_back,
        )
        self.membership = NodeMembership(
            client,
            nodes_key=f"{prefix}:nodes",
            epoch_key=f"{prefix}:epoch",
            node_id=node_id,
            node_timeout_ms=node_timeout_ms,
            on_node_lost=self._node_lost,
            on_data_lost=self._resync,
        )

    def bind(
        self,
        *,
        on_handed_off: Callable[[Effects], None],
        on_node_lost: Callable[[str], Awaitable[None]],
        on_resync: Callable[[], Awaitable[None]],
    ) -> None:
        self._on_handed_off = on_handed_off
        self._on_node_lost = on_node_lost
        self._on_resync = on_resync

    def _handed_off(self, payload: bytes) -> None:
        assert self._on_handed_off is not None
        _, effects = codec.handed_off(payload)  # (a failure is logged by the bus)
        self._on_handed_off(effects)

    async def _node_lost(self, node_id: str) -> None:
        assert self._on_node_lost is not None
        await self._on_node_lost(node_id)

    async def _listener_back(self) -> None:
        """Hand-offs published while the listener was away are lost: clients reconnect. If Redis
        itself lost its data meanwhile (a restart), the beat sees that too and makes them
        reconnect; asked first, it does so once for both (a second reconnect can catch a client
        mid-command, on a session that no longer knows the command's id)."""
        try:
            if await self.membership.beat():
                return
        except (RedisError, OSError):
            pass  # the resync below covers the loss either way
        await self._resync()

    async def _resync(self) -> None:
        assert self._on_resync is not None
        await self._on_resync()

    async def start(self) -> None:
        await self.bus.start()
        await self.membership.start()

    async def stop(self) -> None:
        await self.membership.stop()
        await self.bus.stop()
