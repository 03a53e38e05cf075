"""What one Redis core sustains per call: pairline's scripts against the floor, and pub/sub.

    .venv/bin/python bench/redis_costs.py [--requests 50000] [--clients 20] [--json out.json]

Starts a private `redis-server` (no persistence) and, for each case, runs `redis-benchmark`
(`-c` clients, `-n` requests, no pipelining: one command per round trip, as a node's pool sends
them) against it. Redis's own CPU comes from `INFO cpu` (used_cpu_sys + used_cpu_user) before and
after, so each case gives µs of Redis CPU per call, everything included (parsing, the script,
the socket writes), and calls/s one Redis core sustains = 1e6 / that. `usec_per_call` is
commandstats' time inside the command alone. Cases:

- `eval return 1`: the floor of any script call.
- `heard, no such user`: pairline's fixed cost per script (the key table and lib.lua's local
  functions built on every call, the rules JSON decoded, the reply encoded) doing no work.
- `heard, online user`: the script every client message runs first (an ack, a pong, a chat),
  for an attached, online user that is not in a match.
- `publish` / `spublish`, 300 bytes, one `redis-cli` subscriber: one node-to-node message.
- `client: heard via redis-py asyncio`: the other side of the same call, the node's. `heard` for
  the online user through `redis.asyncio` with a pool (as pairline's store), `--clients`
  concurrent callers; this process's CPU (time.process_time) per call, Redis's too. Whether
  redis-py found `hiredis` (its C reply parser) is printed with it.

redis-benchmark runs on the same 2 cores as Redis, so Redis is not at 100% of a core here;
the µs per call are what counts, not the rate redis-benchmark reached.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from pairline.bench.redisprobe import PrivateRedis

PAYLOAD = "x" * 300
PREFIX = "bench-costs:{main}:"


def rules_json() -> str:
    """The rules every pairline script gets as ARGV[1], as a node with default settings sends."""
    from pairline.core.rules import Rules
    from pairline.settings import Settings

    return json.dumps(dataclasses.asdict(Rules.from_settings(Settings())))


def load_script(client: redis.Redis, name: str) -> str:
    """Load pairline's script `name` as its loader builds it; return its sha1."""
    from pairline.store.redis.loader import source

    return str(client.script_load(source(name)))


def attach_user(client: redis.Redis, user_id: str) -> None:
    """An online user with a session, as a `hello` leaves it."""
    sha = load_script(client, "attach")
    now = str(int(time.time() * 1000))
    client.evalsha(sha, 1, PREFIX, rules_json(), now, "", user_id, "bench", "n0", "s_bench")


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def run_case(
    client: redis.Redis, port: int, command: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """One redis-benchmark run; Redis's CPU and commandstats around it."""
    client.config_resetstat()
    cpu0, t0 = redis_cpu(client), time.time()
    options = ["-p", str(port), "-c", str(args.clients), "-n", str(args.requests), "-q"]
    subprocess.run(
        ["redis-benchmark", *options, *command],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cpu, wall = redis_cpu(client) - cpu0, time.time() - t0
    stats = client.info("commandstats").get(f"cmdstat_{command[0].lower()}", {})
    return {
        "calls_per_s": round(args.requests / wall),
        "redis_cores": round(cpu / wall, 2),
        "cpu_us_per_call": round(cpu * 1e6 / args.requests, 1),
        "calls_per_s_per_core": round(args.requests / cpu) if cpu else None,
        "usec_per_call": stats.get("usec_per_call"),
    }


async def _client_calls(url: str, command: list[str], calls: int, concurrency: int) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, max_connections=concurrency)
    per_task = calls // concurrency

    async def caller() -> None:
        for _ in range(per_task):
            await client.execute_command(*command)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    await client.aclose()


def run_client_case(
    client: redis.Redis, url: str, command: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """The node's side: CPU of this process per call through redis-py's asyncio client."""
    from redis.utils import HIREDIS_AVAILABLE

    calls = args.requests // args.clients * args.clients
    cpu0, own0, t0 = redis_cpu(client), time.process_time(), time.time()
    asyncio.run(_client_calls(url, command, calls, args.clients))
    wall, own, cpu = time.time() - t0, time.process_time() - own0, redis_cpu(client) - cpu0
    return {
        "calls_per_s": round(calls / wall),
        "client_cpu_us_per_call": round(own * 1e6 / calls, 1),
        "cpu_us_per_call": round(cpu * 1e6 / calls, 1),
        "hiredis": HIREDIS_AVAILABLE,
    }


def with_subscriber(port: int, verb: str, channel: str) -> subprocess.Popen[bytes]:
    """A redis-cli subscriber that throws away what it receives."""
    cmd = ["redis-cli", "-p", str(port), verb, channel]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return process


def cases(client: redis.Redis) -> dict[str, list[str]]:
    """Each case's command line for redis-benchmark."""
    heard = load_script(client, "heard")
    rules = rules_json()
    attach_user(client, "u_online")

    def heard_of(user_id: str) -> list[str]:
        return ["EVALSHA", heard, "1", PREFIX, rules, "1700000000000", "", user_id]

    return {
        "eval return 1": ["EVAL", "return 1", "0"],
        "heard, no such user": heard_of("u_nobody"),
        "heard, online user": heard_of("u_online"),
        "publish 300 B, 1 subscriber": ["PUBLISH", "bench-costs:node:n1", PAYLOAD],
        "spublish 300 B, 1 subscriber": ["SPUBLISH", "bench-costs:node:n1", PAYLOAD],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if shutil.which("redis-benchmark") is None:
        sys.exit("redis-benchmark not found (Debian: apt-get install redis-tools)")
    server = PrivateRedis()
    results: dict[str, Any] = {}
    try:
        server.wait_ready()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        all_cases = cases(client)
        heard_cmd = all_cases["heard, online user"]
        for name, command in all_cases.items():
            verb = {"PUBLISH": "subscribe", "SPUBLISH": "ssubscribe"}.get(command[0])
            sub = with_subscriber(server.port, verb, command[1]) if verb else None
            try:
                results[name] = run_case(client, server.port, command, args)
            finally:
                if sub is not None:
                    sub.terminate()
                    sub.wait()
            print(f"{name:>30}  " + " ".join(f"{k}={v}" for k, v in results[name].items()))
        name = "client: heard via redis-py asyncio"
        results[name] = run_client_case(client, server.url, heard_cmd, args)
        print(f"{name:>30}  " + " ".join(f"{k}={v}" for k, v in results[name].items()))
        client.close()
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
