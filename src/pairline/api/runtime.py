"""Everything one node runs, built from settings and opened and closed as one."""

from __future__ import annotations

from dataclasses import dataclass

from pairline.auth import GuestTokens
from pairline.core.rules import Rules
from pairline.engine import Engine
from pairline.media import Media, open_media
from pairline.settings import Settings
from pairline.store import Store, open_store
from pairline.transport.gateway import Gateway
from pairline.transport.registry import SessionRegistry


@dataclass
class Runtime:
    settings: Settings
    store: Store
    media: Media
    registry: SessionRegistry
    engine: Engine
    gateway: Gateway
    tokens: GuestTokens
    ready: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        rules = Rules.from_settings(settings)
        store = open_store(settings, rules)
        media = open_media(settings)
        registry = SessionRegistry(settings.ping_interval_ms)
        engine = Engine(
            store,
            registry,
            media,
            rules,
            node_id=settings.node_id,
            sweep_interval_ms=settings.sweep_interval_ms,
        )
        tokens = GuestTokens(settings.secret, settings.guest_token_ttl_s)
        gateway = Gateway(
            engine,
            registry,
            tokens,
            node_id=settings.node_id,
            heartbeat_ms=settings.ping_interval_ms,
            replay_limit=settings.replay_limit,
            state_dies_with_node=settings.redis_url is None,
        )
        return cls(settings, store, media, registry, engine, gateway, tokens)

    async def start(self) -> None:
        await self.engine.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.gateway.shutdown()
        await self.engine.stop()
        await self.store.close()
