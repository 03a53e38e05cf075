"""The Redis backend: one Lua script per transition, one cluster slot per queue partition."""

from pairline.store.redis.store import RedisStore

__all__ = ["RedisStore"]
