"""Redis for `pairline bench`: a private server, a key prefix, and what Redis itself spent.

- `PrivateRedis` starts `redis-server` on a free loopback port with no persistence, so that its
  CPU time and command counts are the benchmark's alone (`--redis spawn`).
- `fresh_prefix` / `delete_prefix`: every run gets its own `PAIRLINE_REDIS_PREFIX`, and its keys
  are removed afterwards (SCAN MATCH prefix* + UNLINK), so a shared Redis is left as it was.
- `RedisProbe.snapshot` reads `INFO cpu` (used_cpu_sys + used_cpu_user: Redis's own CPU time,
  in µs resolution), `INFO commandstats` (calls and µs per command; commands that scripts call
  are counted under their own names as well as inside `evalsha`), `INFO memory` and
  `INFO clients`; `usage` turns two snapshots into the window's figures.
- `ScriptTimes` (opt-in, `--script-mix`, private Redis only): each script's count and
  Redis-internal µs from SLOWLOG (sha1 mapped to the name through pairline's own loader).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

# Commands that are the benchmark's own polling, not pairline's load.
PROBE_COMMANDS = frozenset(
    {"info", "client|list", "scan", "unlink", "ping", "slowlog|get", "slowlog|reset", "config|set"}
)


def fresh_prefix() -> str:
    """A key prefix no one else uses: `bench-<8 hex>`."""
    return f"bench-{secrets.token_hex(4)}"


def delete_prefix(url: str, prefix: str) -> int:
    """Remove every key that starts with `prefix`; return how many there were."""
    client = redis.Redis.from_url(url)
    removed = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += int(client.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(client.unlink(*batch))
    finally:
        client.close()
    return removed


def free_port() -> int:
    """A loopback port nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """`redis-server` on a free loopback port, no RDB, no AOF, in a scratch directory."""

    def __init__(self, binary: str = "redis-server") -> None:
        path = shutil.which(binary)
        if path is None:
            raise RuntimeError(f"{binary} not found: pass --redis URL instead of spawn")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = tempfile.TemporaryDirectory(prefix="pairline-bench-redis-")
        cmd = [path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", self.workdir.name, "--loglevel", "warning"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 10) -> None:
        client = redis.Redis.from_url(self.url)
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        return
                if self.process.poll() is not None:
                    raise RuntimeError("redis-server exited at start-up")
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server not ready within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.workdir.cleanup()


@dataclass
class Snapshot:
    """What Redis reported at one moment."""

    t: float
    cpu_s: float
    calls: dict[str, int]
    usec: dict[str, int]
    used_memory: int
    clients: int
    pid: int


def _calls_and_usec(stats: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    calls: dict[str, int] = {}
    usec: dict[str, int] = {}
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        calls[name], usec[name] = int(value["calls"]), int(value["usec"])
    return calls, usec


class RedisProbe:
    """Reads Redis's INFO; one synchronous connection, used only between phases."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def snapshot(self) -> Snapshot:
        info = self.client.info("everything")
        calls, usec = _calls_and_usec(self.client.info("commandstats"))
        return Snapshot(
            t=time.time(),
            cpu_s=float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
            calls=calls,
            usec=usec,
            used_memory=int(info["used_memory"]),
            clients=int(info["connected_clients"]),
            pid=int(info["process_id"]),
        )

    def close(self) -> None:
        self.client.close()


def usage(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """From two snapshots: Redis CPU, and calls and µs per command, pairline's commands only."""
    calls = {k: v - a.calls.get(k, 0) for k, v in b.calls.items() if k not in PROBE_COMMANDS}
    usec = {k: v - a.usec.get(k, 0) for k, v in b.usec.items() if k not in PROBE_COMMANDS}
    return {
        "cpu_s": b.cpu_s - a.cpu_s,
        "calls": {k: v for k, v in calls.items() if v},
        "usec": {k: usec[k] for k, v in calls.items() if v},
        "clients": b.clients,
    }


def script_names() -> dict[str, str]:
    """sha1 -> script name, from the sources pairline loads (empty if that cannot be read)."""
    try:
        from pairline.store.redis.loader import SCRIPTS, source
    except ImportError:
        return {}
    return {hashlib.sha1(source(n).encode()).hexdigest(): n for n in SCRIPTS}


@dataclass
class ScriptTimes:
    """Per-script counts and Redis-internal µs from a private Redis's SLOWLOG.

    With `slowlog-log-slower-than T` Redis logs every command that ran T µs or longer with its
    duration (the time spent executing it). Redis 7 logs the commands that scripts call too, so
    T (default 50 µs) is set above nearly all of those and below nearly all script runs; compare
    the scripts counted here with commandstats' EVALSHA calls (`coverage` in the report). A
    thread polls `SLOWLOG GET` and keeps the entries it had not seen (by id): EVALSHA under
    `prefix` by script name. `lost` counts entries that rolled out of the log between two
    polls. Only for a Redis nobody else uses: it changes its config.
    """

    url: str
    prefix: str
    period_s: float = 0.2
    fetch: int = 4000
    threshold_us: int = 50
    counts: Counter[str] = field(default_factory=Counter)
    usec: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    counting: bool = False
    _last_id: int = -1
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _names: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self._names = script_names()
        client = redis.Redis.from_url(self.url)
        client.config_set("slowlog-max-len", self.fetch * 2)
        client.config_set("slowlog-log-slower-than", self.threshold_us)
        client.slowlog_reset()
        client.close()
        self._thread = threading.Thread(target=self._run, name="script-times", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client = redis.Redis.from_url(self.url)
        while not self._stop.wait(self.period_s):
            self._poll(client)
        client.close()

    def _sync_poll(self, counting: bool) -> None:
        """Take what the log holds now, then count (or stop counting) from here on."""
        client = redis.Redis.from_url(self.url)
        try:
            self._poll(client)
            self.counting = counting
        finally:
            client.close()

    def begin(self) -> None:
        """The window starts: what ran before is skipped."""
        self._sync_poll(True)

    def end(self) -> None:
        """The window ends: what ran up to now is counted, nothing after."""
        self._sync_poll(False)

    def _poll(self, client: redis.Redis) -> None:
        with self._lock:
            self._poll_locked(client)

    def _poll_locked(self, client: redis.Redis) -> None:
        entries = [e for e in client.slowlog_get(self.fetch) if e["id"] > self._last_id]
        if not entries:
            return
        oldest = min(e["id"] for e in entries)
        if self._last_id >= 0 and oldest > self._last_id + 1 and self.counting:
            self.lost += oldest - self._last_id - 1
        self._last_id = max(e["id"] for e in entries)
        if self.counting:
            for entry in entries:
                self._add(entry["command"], int(entry["duration"]))

    def _add(self, command: bytes, duration: int) -> None:
        words = command.split(b" ", 4)
        if words[0].lower() != b"evalsha" or len(words) < 4:
            return
        if not words[3].decode(errors="replace").startswith(self.prefix):
            return
        sha = words[1].decode()
        name = self._names.get(sha, sha[:8])
        self.counts[name] += 1
        self.usec[name] += duration

    def stop(self) -> None:
        self.counting = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
