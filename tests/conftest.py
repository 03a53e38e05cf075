"""Shared fixtures: real pairline servers in subprocesses, and SDK clients against them."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pairline.client import Client
from tests.redis_server import redis_for_tests

# Short timings so liveness tests run in seconds; each test may override any of them.
FAST_SETTINGS: dict[str, str] = {
    "PAIRLINE_ACK_TIMEOUT_MS": "2000",
    "PAIRLINE_HEALTH_FRESH_MS": "2000",
    "PAIRLINE_HEALTH_TIMEOUT_MS": "500",
    "PAIRLINE_PING_INTERVAL_MS": "500",
    "PAIRLINE_PING_MISSES": "4",  # stale after 2 s: a loaded test machine must not look dead
    "PAIRLINE_SWEEP_INTERVAL_MS": "200",
    "PAIRLINE_RESUME_WINDOW_MS": "1500",
    "PAIRLINE_INTEREST_WAIT_MS": "1000",
    "PAIRLINE_LOG_FORMAT": "json",
    # Every test client comes from 127.0.0.1; tests of these limits set their own.
    "PAIRLINE_MAX_CONNECTIONS_PER_IP": "100000",
    "PAIRLINE_GUEST_TOKENS_PER_IP_PER_MIN": "100000",
}
_READY = re.compile(rb"Uvicorn running on http://[^:]+:(\d+)")


@dataclass
class RunningServer:
    process: asyncio.subprocess.Process
    url: str
    settings: dict[str, str]
    workdir: str  # its working folder: the SQLite records and the outbox live here by default
    log: list[str] = field(default_factory=list)
    _drain: asyncio.Task[None] | None = None

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.log.append("--- not stopped 20 s after the signal: killed\n")
            self.process.kill()
            code = await self.process.wait()
        if self._drain is not None:
            await self._drain
        return code

    def log_text(self) -> str:
        return "".join(self.log)


async def launch_server(settings: dict[str, str], workdir: str | None = None) -> RunningServer:
    """Start `pairline serve` on a free port, in `workdir` (default: a new temporary folder, so
    each server has its own records); return once it accepts connections."""
    workdir = workdir or tempfile.mkdtemp(prefix="pairline-test-")
    env = {**os.environ, **FAST_SETTINGS, **settings}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pairline",
        "serve",
        "--pairline-port",
        "0",
        env=env,
        cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        if not line:
            raise RuntimeError("pairline serve exited during start-up:\n" + "".join(log))
        log.append(line.decode(errors="replace"))
        if ready := _READY.search(line):
            break
    url = f"http://127.0.0.1:{int(ready.group(1))}"
    server = RunningServer(process, url, settings, workdir, log)

    async def drain() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            log.append(raw.decode(errors="replace"))

    server._drain = asyncio.create_task(drain())
    return server


ServerFactory = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server(request: pytest.FixtureRequest) -> AsyncIterator[ServerFactory]:
    """Start servers with given settings (keyword arguments: env names); all stopped after."""
    servers: list[RunningServer] = []

    async def start(**settings: Any) -> RunningServer:
        server = await launch_server({k: str(v) for k, v in settings.items()})
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for server in servers:
            sys.stderr.write(f"--- server log {server.url}\n{server.log_text()[-6000:]}\n")
    for server in servers:
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
async def server(start_server: ServerFactory) -> RunningServer:
    return await start_server()


ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def connect(server: RunningServer) -> AsyncIterator[ClientFactory]:
    """Connected SDK clients of the default server, closed after the test."""
    clients: list[Client] = []

    async def make(name: str = "user", url: str | None = None, **options: Any) -> Client:
        client = Client(url or server.url, display_name=name, **options)
        await client.connect()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server's URL (see tests/redis_server.py)."""
    with redis_for_tests() as url:
        yield url


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis.asyncio as aioredis

    prefix = f"pt-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
