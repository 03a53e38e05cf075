"""Everything one node runs, built from settings and opened and closed as one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from pairline.api.recordkeeping import RecordKeeping
from pairline.api.seen import SeenEvents
from pairline.auth import GuestTokens
from pairline.core.rules import Rules
from pairline.engine import Engine
from pairline.identity import Authenticator, OperatorTokens
from pairline.limits import KeyedBuckets
from pairline.media import Media, open_media
from pairline.records.events import ReportFiled
from pairline.settings import Settings
from pairline.store import Store, open_store
from pairline.transport.flood import FloodGuard
from pairline.transport.gateway import Gateway
from pairline.transport.registry import SessionRegistry
from pairline.webhooks import WebhookSender

if TYPE_CHECKING:
    from livekit.api import WebhookReceiver

    from pairline.cluster.node import ClusterNode
    from pairline.media.room_watch import RoomWatch

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
    auth: Authenticator
    flood: FloodGuard
    guest_token_limit: KeyedBuckets  # per client address
    cluster: ClusterNode | None = None
    keeping: RecordKeeping | None = None  # opened by start()
    report_hook: WebhookSender | None = None
    livekit_receiver: WebhookReceiver | None = None  # set when LiveKit is configured
    livekit_seen: SeenEvents = field(default_factory=SeenEvents)
    room_watch: RoomWatch | None = None  # set when LiveKit is configured
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
        auth = Authenticator(tokens, _operator_tokens(settings))
        gateway = Gateway(
            engine,
            registry,
            auth,
            node_id=settings.node_id,
            heartbeat_ms=settings.ping_interval_ms,
            # The store's "last heard" lags by at most a quarter of the freshness a pairing
            # asks for, or of the silence that makes a user stale.
            heard_interval_ms=min(settings.health_fresh_ms, rules.stale_after_ms) // 4,
            replay_limit=settings.replay_limit,
            state_dies_with_node=settings.redis_url is None,
            relay_limit=KeyedBuckets(settings.relay_rate_per_s, settings.relay_burst),
        )
        flood = FloodGuard(
            settings.message_rate_per_s, settings.message_burst, settings.max_connections_per_ip
        )
        per_minute = settings.guest_tokens_per_ip_per_min
        guest_token_limit = KeyedBuckets(per_minute / 60, per_minute)
        runtime = cls(
            settings,
            store,
            media,
            registry,
            engine,
            gateway,
            tokens,
            auth,
            flood,
            guest_token_limit,
            cluster,
        )
        if cluster is not None:
            cluster.bind(
                on_handed_off=engine.carry_out_handed_off,
                on_node_lost=engine.node_lost,
                on_resync=gateway.resync,
            )
            bus = cluster.bus
            gateway.ready = lambda: bus.listening
        runtime._watch_livekit_rooms()
        return runtime

    def _watch_livekit_rooms(self) -> None:
        """With LiveKit: its webhooks' verifier, and the watch over its rooms."""
        webhook_receiver = getattr(self.media, "webhook_receiver", None)
        if webhook_receiver is None:
            return  # peer-to-peer (LiveKit's SDK is not even imported)
        from pairline.media.livekit import LiveKitMedia
        from pairline.media.room_watch import RoomWatch

        assert isinstance(self.media, LiveKitMedia)
        self.livekit_receiver = webhook_receiver()
        self.room_watch = RoomWatch(
            self.media,
            self.store,
            self.engine.media_absent,
            alone_ms=self.settings.alone_ms,
            sweep_ms=self.settings.livekit_sweep_ms,
        )

    async def start(self) -> None:
        await self.auth.start()
        self.keeping = await RecordKeeping.open(self.settings)
        self.engine.journal = self.keeping.outbox
        self.report_hook = _report_hook(self.settings)
        if self.report_hook is not None:
            self.report_hook.start()
            self.engine.on_report = self._send_report
        if self.cluster is not None:
            await self.cluster.start()
        # With Redis, calls outlive a node: only the memory store's calls died with the last run.
        await self.keeping.recover(self.store, calls_die_with_node=self.settings.redis_url is None)
        await self.engine.start()
        if self.room_watch is not None:
            self.room_watch.start()
        self.ready = True

    def _send_report(self, report: ReportFiled) -> None:
        if self.report_hook is not None:
            self.report_hook.submit("report.filed", msgspec.to_builtins(report))

    async def stop(self) -> None:
        self.ready = False
        if self.room_watch is not None:
            await self.room_watch.stop()
        await self.gateway.shutdown()
        await self.engine.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        await self.store.close()
        close_media = getattr(self.media, "close", None)
        if close_media is not None:
            await close_media()  # LiveKit's HTTP session
        if self.keeping is not None:
            await self.keeping.close()
        if self.report_hook is not None:
            await self.report_hook.stop()
        await self.auth.close()


def _report_hook(settings: Settings) -> WebhookSender | None:
    """Each report goes to the operator's moderation tool, signed and retried."""
    if not settings.report_webhook_url:
        return None
    return WebhookSender(settings.report_webhook_url, settings.report_webhook_secret or "")


def _operator_tokens(settings: Settings) -> OperatorTokens | None:
    """The operator's own user tokens, when configured. Their users' ids are keyed by
    PAIRLINE_SECRET, which must therefore be set (and shared by every node) for blocks to hold."""
    if not (settings.jwt_secret or settings.jwks_url):
        return None
    return OperatorTokens(
        id_key=settings.secret.encode(),
        secret=settings.jwt_secret,
        jwks_url=settings.jwks_url if not settings.jwt_secret else None,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


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
