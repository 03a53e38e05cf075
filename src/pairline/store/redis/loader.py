"""The transitions' Lua scripts: read once, loaded into Redis once, run by their SHA1.

Each script is sent as one source: the key table (keys.py), then `lib.lua`, then the script's
own file. Redis keeps loaded scripts until a restart, failover or SCRIPT FLUSH; a NOSCRIPT reply
loads the script again and retries once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from pairline.store.redis.keys import lua_key_table

SCRIPTS = (
    "attach",
    "renew_session",
    "detach",
    "node_lost",
    "heard",
    "join",
    "leave",
    "skip",
    "end",
    "ack",
    "relay",
    "media_lost",
    "media_gone",
    "media_absent",
    "expire",
    "sweep_stale",
    "snapshot",
    "queue_status",
    "next_deadline",
    "ban",
    "unban",
    "unblock",
    "load_skips",
)


@functools.cache
def source(name: str) -> str:
    """The full text Redis runs for the script `name`."""
    if name not in SCRIPTS:
        raise KeyError(f"no script {name!r}")
    folder = resources.files("pairline.store.redis") / "scripts"
    lib = (folder / "lib.lua").read_text(encoding="utf-8")
    own = (folder / f"{name}.lua").read_text(encoding="utf-8")
    return f"{lua_key_table()}{lib}\n-- {name}.lua\n{own}"


class ScriptRunner:
    """Runs the scripts on one client, loading each on first use."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._shas: dict[str, str] = {}

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str | int | bytes]) -> Any:
        sha = self._shas.get(name) or await self._load(name)
        try:
            return await self._client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:  # flushed, restarted or failed over since it was loaded
            sha = await self._load(name)
            return await self._client.evalsha(sha, len(keys), *keys, *args)

    async def _load(self, name: str) -> str:
        sha: str | bytes = await self._client.script_load(source(name))
        self._shas[name] = sha.decode() if isinstance(sha, bytes) else sha
        return self._shas[name]
