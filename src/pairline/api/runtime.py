"""Everything one node runs, built from settings and opened and closed as one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pairline.auth import GuestTokens
from pairline.core.rules import Rules
from pairline.engine import Engine
from pairline.media import Media, open_media
from pairline.settings import Settings
from pairline.store import Store, open_store
from pairline.transport.gateway import Gateway
from pairline.transport.registry import SessionRegistry

if TYPE_CHECKING:
    from pairline.cluster.node import ClusterNode

# With shared state, deadlines set by other nodes must fire here too if those nodes die.
CLUSTER_DEADLINE_POLL_S = 1.0


@dataclass
class Runtime:
    settings: Settings
    store: Store
    media: Media
    registry: SessionRegistry
    engine: Engine
    gateway: Gateway
    tokens: GuestTokens
    cluster: ClusterNode | None = None
    ready: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        rules = Rules.from_settings(settings)
        store = open_store(settings, rules)
        media = open_media(settings)
        registry = SessionRegistry(settings.ping_interval_ms)
        cluster = _cluster_node(settings, store, registry)
        engine = Engine(
            store,
            cluster.delivery if cluster else registry,
            media,
            rules,
            node_id=settings.node_id,
            sweep_interval_ms=settings.sweep_interval_ms,
            deadline_poll_s=CLUSTER_DEADLINE_POLL_S if cluster else None,
        )
        tokens = GuestTokens(settings.secret, settings.guest_token_ttl_s)
        gateway = Gateway(
            engine,
            registry,
            tokens,
            node_id=settings.node_id,
            heartbeat_ms=settings.ping_interval_ms,
            # The store's "last heard" lags by at most a quarter of the freshness a pairing
            # asks for, or of the silence that makes a user stale.
            heard_interval_ms=min(settings.health_fresh_ms, rules.stale_after_ms) // 4,
            replay_limit=settings.replay_limit,
            state_dies_with_node=settings.redis_url is None,
        )
        runtime = cls(settings, store, media, registry, engine, gateway, tokens, cluster)
        if cluster is not None:
            cluster.bind(on_node_lost=engine.node_lost, on_resync=gateway.resync)
        return runtime

    async def start(self) -> None:
        if self.cluster is not None:
            await self.cluster.start()
        await self.engine.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.gateway.shutdown()
        await self.engine.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        await self.store.close()


def _cluster_node(
    settings: Settings, store: Store, registry: SessionRegistry
) -> ClusterNode | None:
    """The cluster services, when the state is shared through Redis."""
    if not settings.redis_url:
        return None
    from pairline.cluster.node import ClusterNode
    from pairline.store.redis import RedisStore

    assert isinstance(store, RedisStore)
    return ClusterNode(
        store.client,
        prefix=settings.redis_prefix,
        node_id=settings.node_id,
        node_timeout_ms=settings.node_timeout_ms,
        registry=registry,
    )
