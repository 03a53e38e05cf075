"""Every setting of a pairline node, read once from the environment into one typed object.

Names follow protocol.md §8: `PAIRLINE_*` for pairline's own settings, the conventional bare names
for `REDIS_URL`, `DATABASE_URL` and LiveKit's `LIVEKIT_*`. `pairline serve` exposes each as a flag
of the same name in kebab case (`--pairline-port 9000`), which wins over the environment.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A node sheds new joins (`rate_limited`) once this many store requests wait and the wait ahead
# would exceed REDIS_MAX_WAIT_MS at the rate they have been completing (store/redis/gate.py).
REDIS_MAX_PENDING = 256
REDIS_MAX_WAIT_MS = 2000
REDIS_POOL_TIMEOUT_S = 5.0  # waiting for a free connection, then StoreUnavailable


class Settings(BaseSettings):
    """The configuration of one node. Durations are in the unit their name says."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False)

    host: str = Field("127.0.0.1", validation_alias=AliasChoices("PAIRLINE_HOST"))
    port: int = Field(8000, validation_alias=AliasChoices("PAIRLINE_PORT"))
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL"))
    database_url: str = Field(
        "sqlite:///pairline.db", validation_alias=AliasChoices("DATABASE_URL")
    )
    # Every Redis key starts with this; one Redis can serve several pairline deployments.
    redis_prefix: str = Field("pairline", validation_alias=AliasChoices("PAIRLINE_REDIS_PREFIX"))
    # A node sheds new joins (`rate_limited`) while at least this many store requests wait and
    # the wait ahead is longer than the next setting, at the rate requests have been completing.
    redis_max_pending: int = Field(
        REDIS_MAX_PENDING, ge=0, validation_alias=AliasChoices("PAIRLINE_REDIS_MAX_PENDING")
    )
    redis_max_wait_ms: int = Field(
        REDIS_MAX_WAIT_MS, ge=0, validation_alias=AliasChoices("PAIRLINE_REDIS_MAX_WAIT_MS")
    )
    # A node whose heartbeat in Redis is older than this is dead: its users' resume windows start.
    node_timeout_ms: int = Field(5000, validation_alias=AliasChoices("PAIRLINE_NODE_TIMEOUT_MS"))
    livekit_url: str | None = Field(None, validation_alias=AliasChoices("LIVEKIT_URL"))
    livekit_api_key: str | None = Field(None, validation_alias=AliasChoices("LIVEKIT_API_KEY"))
    livekit_api_secret: str | None = Field(
        None, validation_alias=AliasChoices("LIVEKIT_API_SECRET")
    )
    jwt_secret: str | None = Field(None, validation_alias=AliasChoices("PAIRLINE_JWT_SECRET"))
    jwks_url: str | None = Field(None, validation_alias=AliasChoices("PAIRLINE_JWKS_URL"))
    jwt_audience: str | None = Field(None, validation_alias=AliasChoices("PAIRLINE_JWT_AUDIENCE"))
    jwt_issuer: str | None = Field(None, validation_alias=AliasChoices("PAIRLINE_JWT_ISSUER"))
    admin_token: str | None = Field(None, validation_alias=AliasChoices("PAIRLINE_ADMIN_TOKEN"))
    # Each report is POSTed here, signed with the secret (see pairline.webhooks), and retried.
    report_webhook_url: str | None = Field(
        None, validation_alias=AliasChoices("PAIRLINE_REPORT_WEBHOOK_URL")
    )
    report_webhook_secret: str | None = Field(
        None, validation_alias=AliasChoices("PAIRLINE_REPORT_WEBHOOK_SECRET")
    )
    # Records wait here (a local SQLite file) until the database has them: see pairline.records.
    outbox_path: str = Field(
        "pairline-outbox.db", validation_alias=AliasChoices("PAIRLINE_OUTBOX_PATH")
    )

    # Flood protection. Messages per connection: a bucket of `burst` refilled at `rate` per
    # second (ICE candidates come in bursts); past it the connection is closed with 4429.
    message_rate_per_s: float = Field(
        30.0, validation_alias=AliasChoices("PAIRLINE_MESSAGE_RATE_PER_S")
    )
    message_burst: int = Field(120, validation_alias=AliasChoices("PAIRLINE_MESSAGE_BURST"))
    # `chat` and `signal` relayed to the partner, per user: past it each one is refused with
    # `rate_limited` (not relayed) and the connection stays. A WebRTC negotiation is an offer,
    # an answer and a few dozen ICE candidates at once: the burst covers two of them.
    relay_rate_per_s: float = Field(
        10.0, validation_alias=AliasChoices("PAIRLINE_RELAY_RATE_PER_S")
    )
    relay_burst: int = Field(100, validation_alias=AliasChoices("PAIRLINE_RELAY_BURST"))
    max_connections_per_ip: int = Field(
        50, validation_alias=AliasChoices("PAIRLINE_MAX_CONNECTIONS_PER_IP")
    )
    guest_tokens_per_ip_per_min: int = Field(
        60, validation_alias=AliasChoices("PAIRLINE_GUEST_TOKENS_PER_IP_PER_MIN")
    )

    # Signs guest tokens. Unset: a random key per process, so guest tokens die with it; every
    # node of a cluster must share one.
    secret: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        validation_alias=AliasChoices("PAIRLINE_SECRET"),
    )
    guest_token_ttl_s: int = Field(
        86_400, validation_alias=AliasChoices("PAIRLINE_GUEST_TOKEN_TTL_S")
    )

    health_fresh_ms: int = Field(2000, validation_alias=AliasChoices("PAIRLINE_HEALTH_FRESH_MS"))
    health_timeout_ms: int = Field(
        2000, validation_alias=AliasChoices("PAIRLINE_HEALTH_TIMEOUT_MS")
    )
    ack_timeout_ms: int = Field(5000, validation_alias=AliasChoices("PAIRLINE_ACK_TIMEOUT_MS"))
    ping_interval_ms: int = Field(
        15_000, validation_alias=AliasChoices("PAIRLINE_PING_INTERVAL_MS")
    )
    ping_misses: int = Field(2, validation_alias=AliasChoices("PAIRLINE_PING_MISSES"))
    sweep_interval_ms: int = Field(
        5000, validation_alias=AliasChoices("PAIRLINE_SWEEP_INTERVAL_MS")
    )
    resume_window_ms: int = Field(
        10_000, validation_alias=AliasChoices("PAIRLINE_RESUME_WINDOW_MS")
    )
    interest_wait_ms: int = Field(5000, validation_alias=AliasChoices("PAIRLINE_INTEREST_WAIT_MS"))
    rematch_after_s: int = Field(300, validation_alias=AliasChoices("PAIRLINE_REMATCH_AFTER_S"))
    skip_limit: int = Field(10, validation_alias=AliasChoices("PAIRLINE_SKIP_LIMIT"))
    skip_window_s: int = Field(600, validation_alias=AliasChoices("PAIRLINE_SKIP_WINDOW_S"))
    skip_cooldowns_s: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [60, 300, 900],
        validation_alias=AliasChoices("PAIRLINE_SKIP_COOLDOWNS_S"),
    )
    good_call_s: int = Field(60, validation_alias=AliasChoices("PAIRLINE_GOOD_CALL_S"))

    # JSON list of RTCIceServer objects handed to peer-to-peer clients.
    ice_servers: Annotated[list[dict[str, Any]], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("PAIRLINE_ICE_SERVERS")
    )
    # A TURN server of the coturn kind (`use-auth-secret`): each user gets short-lived
    # credentials for it, in the TURN REST style, beside the ICE servers above.
    turn_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("PAIRLINE_TURN_URLS")
    )
    turn_secret: str | None = Field(None, validation_alias=AliasChoices("PAIRLINE_TURN_SECRET"))
    turn_ttl_s: int = Field(3600, validation_alias=AliasChoices("PAIRLINE_TURN_TTL_S"))
    # LiveKit rooms. A call whose room holds one user (the other's media never came, or left
    # and did not come back) for `alone_ms` ends, both re-queued; an empty room closes after
    # LiveKit's empty/departure timeouts (its `room_finished` ends the call if still open).
    alone_ms: int = Field(10_000, validation_alias=AliasChoices("PAIRLINE_ALONE_MS"))
    livekit_token_ttl_s: int = Field(
        600, validation_alias=AliasChoices("PAIRLINE_LIVEKIT_TOKEN_TTL_S")
    )
    livekit_empty_timeout_s: int = Field(
        30, validation_alias=AliasChoices("PAIRLINE_LIVEKIT_EMPTY_TIMEOUT_S")
    )
    livekit_departure_timeout_s: int = Field(
        20, validation_alias=AliasChoices("PAIRLINE_LIVEKIT_DEPARTURE_TIMEOUT_S")
    )
    # How often (across all nodes, one of them) rooms without a live match are deleted.
    livekit_sweep_ms: int = Field(
        60_000, validation_alias=AliasChoices("PAIRLINE_LIVEKIT_SWEEP_MS")
    )
    # Messages kept per session for resume; a client further behind gets a fresh session.
    replay_limit: int = Field(1024, validation_alias=AliasChoices("PAIRLINE_REPLAY_LIMIT"))
    # Largest WebSocket frame accepted; a larger one closes the connection with 4400.
    max_frame_bytes: int = Field(
        64 * 1024, validation_alias=AliasChoices("PAIRLINE_MAX_FRAME_BYTES")
    )
    # The WebSocket path: `native` (a bare asyncio protocol inside uvicorn) or `asgi`
    # (uvicorn's own WebSocket through the ASGI app): kept switchable to measure both.
    ws_impl: Literal["native", "asgi"] = Field(
        "native", validation_alias=AliasChoices("PAIRLINE_WS_IMPL")
    )
    # `auto`: a readable console on a terminal, JSON lines otherwise (production).
    log_format: Literal["auto", "console", "json"] = Field(
        "auto", validation_alias=AliasChoices("PAIRLINE_LOG_FORMAT")
    )
    log_level: str = Field("info", validation_alias=AliasChoices("PAIRLINE_LOG_LEVEL"))
    node_id: str = Field(
        default_factory=lambda: secrets.token_hex(4),
        validation_alias=AliasChoices("PAIRLINE_NODE_ID"),
    )

    @field_validator("skip_cooldowns_s", mode="before")
    @classmethod
    def _split_cooldowns(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("turn_urls", mode="before")
    @classmethod
    def _split_turn_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            import json

            return json.loads(value) if value.strip() else []
        return value

    @field_validator("skip_cooldowns_s")
    @classmethod
    def _cooldowns_present(cls, value: list[int]) -> list[int]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("needs at least one positive duration, e.g. 60,300,900")
        return value

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name → the environment variable that sets it."""
        names: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            assert isinstance(alias, AliasChoices)
            first = alias.choices[0]
            assert isinstance(first, str)
            names[name] = first
        return names
