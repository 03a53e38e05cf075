"""The driver of `pairline bench`: the nodes and Redis under test, the workers, the phases.

Spawned nodes (the default) are `pairline serve` subprocesses, each on a free port, with quiet
logs, `PAIRLINE_WS_IMPL` from `--ws`, `PAIRLINE_SKIP_LIMIT=0` (else the skip cool-down takes
churning users out of the pool), the per-address limits lifted (every user comes from
127.0.0.1), `PAIRLINE_REMATCH_AFTER_S=0` when the model blocks (else the rematch window alone
keeps a blocked pair apart and the blocked-pair check proves nothing), one shared random
`PAIRLINE_SECRET` (a guest token must verify on every node) and a scratch working directory
each; `--server-env` comes on top. Their CPU time is read from /proc/PID/stat, their memory from
/proc/PID/status (for `--url` nodes, from the `--server-pid`s given).

Phases: connect everyone (not measured); all join at t_join; `--warmup` s; the measured window
[t0, t1) of `--duration` s. From t1 users send no command and ack no new `matched` (so nothing is
confirmed after t1), read on until `--grace` s pass without a call event (at most a minute more),
then close. Burst: the window runs from t_join
until every user is confirmed (or `--duration` is over). Idle: users never join. Mass skip: as
burst, then `--rounds` times: one shared fire time, sent to every worker, when one side of every
pair skips; the next barrier comes once every user is in a new call (or `--duration` after the
fire); the window ends at the last barrier.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pairline.bench import loadgen
from pairline.bench.config import Options
from pairline.bench.redisprobe import (
    PrivateRedis,
    RedisProbe,
    ScriptTimes,
    Snapshot,
    delete_prefix,
    free_port,
    fresh_prefix,
    usage,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
# --mass-skip: from announcing a fire time to it (the pipes and the workers' loops need less),
# and how long before it the round's CPU reading is taken.
FIRE_LEAD_S = 0.25
READ_LEAD_S = 0.05
UNLIMITED_ADDRESS = {
    "PAIRLINE_MAX_CONNECTIONS_PER_IP": "1000000",
    "PAIRLINE_GUEST_TOKENS_PER_IP_PER_MIN": "1000000",
}

# ---- the server ----------------------------------------------------------------------------


class Server:
    """`pairline serve` in a subprocess, logging to a file in a scratch directory."""

    def __init__(self, ws_impl: str, extra_env: dict[str, str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.workdir = tempfile.TemporaryDirectory(prefix="pairline-bench-")
        self.log_path = Path(self.workdir.name) / "server.log"
        env = {**os.environ, "PAIRLINE_LOG_LEVEL": "warning", "PAIRLINE_WS_IMPL": ws_impl}
        env |= {"PAIRLINE_SKIP_LIMIT": "0", **UNLIMITED_ADDRESS, **extra_env}
        cmd = [sys.executable, "-m", "pairline", "serve", "--pairline-port", str(port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                cmd, env=env, cwd=self.workdir.name, stdout=subprocess.DEVNULL, stderr=log
            )

    def wait_ready(self, timeout: float = 30) -> None:
        # At log level warning uvicorn's "running on" line is not printed: poll /readyz.
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited at start-up:\n" + self.log_path.read_text())
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready within {timeout} s")

    def stop(self) -> list[str]:
        """Stop it; return its log lines."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        lines = self.log_path.read_text(errors="replace").splitlines(keepends=True)
        self.workdir.cleanup()
        return lines + ([f"(server exit code {code})\n"] if code not in (0, -15) else [])


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process, in seconds."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def memory_mb(pid: int | None) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MiB."""
    if pid is None:
        return {}
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    pairs = (line.split(":", 1) for line in lines if line.startswith(("VmRSS", "VmHWM")))
    return {key: int(rest.split()[0]) / 1024 for key, rest in pairs}


# ---- the deployment: nodes and the Redis they share -------------------------------------------


@dataclass
class Deployment:
    """The nodes (spawned, or given by --url) and the Redis they share, if any."""

    urls: list[str] = field(default_factory=list)
    pids: list[int | None] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    redis_url: str | None = None
    prefix: str | None = None
    private_redis: PrivateRedis | None = None
    probe: RedisProbe | None = None
    script_times: ScriptTimes | None = None

    @property
    def redis_is_local(self) -> bool:
        """Whether Redis runs on this machine (its CPU is then part of the machine's load)."""
        return bool(self.redis_url) and any(
            host in str(self.redis_url) for host in ("127.0.0.1", "localhost", "[::1]")
        )


def node_env(opts: Options, dep: Deployment, index: int, secret: str) -> dict[str, str]:
    """The environment of node `index`: the model's needs, --server-env, then the cluster
    settings, which win."""
    env = {"PAIRLINE_SECRET": secret}
    if opts.churn.block_p > 0:
        env["PAIRLINE_REMATCH_AFTER_S"] = "0"
    env |= dict(item.split("=", 1) for item in opts.server_env)
    if dep.redis_url:
        env |= {
            "REDIS_URL": dep.redis_url,
            "PAIRLINE_REDIS_PREFIX": str(dep.prefix),
            "PAIRLINE_NODE_ID": f"bench-n{index}",
        }
    return env


def deploy(opts: Options, dep: Deployment) -> None:
    """Fill `dep`: start the private Redis (--redis spawn) and the nodes, or take --url's.

    `dep` is filled as things start, so that `teardown` stops them even if a later one fails.
    """
    if opts.urls:
        dep.urls = list(opts.urls)
        dep.pids = list(opts.server_pids) or [None] * len(dep.urls)
        dep.redis_url = opts.redis
    else:
        if opts.redis == "spawn":
            dep.private_redis = PrivateRedis()
            dep.private_redis.wait_ready()
        dep.redis_url = dep.private_redis.url if dep.private_redis else opts.redis
        dep.prefix = fresh_prefix() if dep.redis_url else None
        secret = secrets.token_urlsafe(24)
        for index in range(opts.nodes):
            dep.servers.append(Server(opts.ws, node_env(opts, dep, index, secret)))
        for server in dep.servers:
            server.wait_ready()
        dep.urls = [server.url for server in dep.servers]
        dep.pids = [server.process.pid for server in dep.servers]
    if dep.redis_url:
        dep.probe = RedisProbe(dep.redis_url)
        if opts.script_mix:
            dep.script_times = ScriptTimes(dep.redis_url, dep.prefix or "")
            dep.script_times.start()


def teardown(dep: Deployment) -> tuple[list[str], int | None]:
    """Stop everything `deploy` started; return the nodes' log lines and the keys deleted."""
    lines: list[str] = []
    for server in dep.servers:
        lines += server.stop()
    if dep.script_times is not None:
        dep.script_times.stop()
    if dep.probe is not None:
        dep.probe.close()
    deleted = None
    if dep.redis_url and dep.prefix and dep.servers:
        deleted = delete_prefix(dep.redis_url, dep.prefix)
    if dep.private_redis is not None:
        dep.private_redis.stop()
    return lines, deleted


# ---- running the workers --------------------------------------------------------------------


def _expect(pipe: Connection, tag: str, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError(f"no {tag!r} from a worker within {timeout:.0f} s")
    got, value = pipe.recv()
    if got != tag:
        raise RuntimeError(f"expected {tag!r} from a worker, got {got!r}")
    return value


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


@dataclass
class Reading:
    """CPU of each node, of the machine and of Redis at one moment."""

    cpu: list[float | None]
    busy: float
    redis: Snapshot | None

    @classmethod
    def take(cls, dep: Deployment) -> Reading:
        snap = dep.probe.snapshot() if dep.probe else None
        return cls([cpu_seconds(pid) for pid in dep.pids], machine_busy_s(), snap)


def _start_workers(opts: Options, urls: list[str]) -> list[Connection]:
    """One process per --procs; worker k's users are the global indexes first..first+count-1."""
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    first = 0
    for index in range(opts.procs):
        count = opts.users // opts.procs + (index < opts.users % opts.procs)
        mine, theirs = ctx.Pipe()
        plan = loadgen.Plan(opts, urls, index, first, count)
        ctx.Process(target=loadgen.worker_main, args=(plan, theirs), daemon=True).start()
        pipes.append(mine)
        first += count
    return pipes


def _window(r0: Reading, r1: Reading) -> dict[str, Any]:
    per_node = [
        None if a is None or b is None else b - a for a, b in zip(r0.cpu, r1.cpu, strict=True)
    ]
    return {
        "node_cpu_s": per_node,
        "server_cpu_s": None if None in per_node else sum(c for c in per_node if c is not None),
        "machine_busy_s": r1.busy - r0.busy,
        "redis": usage(r0.redis, r1.redis) if r0.redis and r1.redis else None,
    }


def _mark(dep: Deployment, window_starts: bool) -> Reading:
    """A reading at one end of the window; the SLOWLOG count starts or stops right after it."""
    reading = Reading.take(dep)
    if dep.script_times is not None:
        (dep.script_times.begin if window_starts else dep.script_times.end)()
    return reading


def _mass_skip_rounds(
    opts: Options, dep: Deployment, pipes: list[Connection]
) -> list[dict[str, Any]]:
    """--mass-skip: after each barrier (every worker's "ready": the users it has in a new call),
    announce one shared fire time; after the last, None. Per round: the fire time, when the
    next barrier was complete, the users in a call before and after, and the CPU in between."""
    patience = opts.duration + 60
    in_call = sum(_expect(pipe, "ready", patience) for pipe in pipes)
    rounds = []
    for _ in range(opts.rounds):
        fire = time.time() + FIRE_LEAD_S
        for pipe in pipes:
            pipe.send(fire)
        _sleep_until(fire - READ_LEAD_S)
        before = Reading.take(dep)
        after = sum(_expect(pipe, "ready", patience) for pipe in pipes)
        ready, reading = time.time(), _window(before, Reading.take(dep))
        counts = {"in_call": in_call, "in_call_after": after}
        rounds.append({"t_fire": fire, "t_ready": ready} | counts | reading)
        in_call = after
    for pipe in pipes:
        pipe.send(None)
    return rounds


def run_load(opts: Options, dep: Deployment) -> dict[str, Any]:
    """Take the workers through every phase; return the raw material for report.analyze."""
    burst = opts.mode in ("burst", "mass_skip")  # the window ends when the workers settle
    before = Reading.take(dep)
    pipes = _start_workers(opts, dep.urls)
    mem: dict[str, Any] = {"before": [memory_mb(pid) for pid in dep.pids]}
    raw: dict[str, Any] = {"mem": mem, "started": time.time()}
    raw["redis_mem"] = {"before": dep.probe.snapshot().used_memory if dep.probe else None}
    raw["connected"] = sum(_expect(p, "connected", 300) for p in pipes)
    raw["connect_s"] = time.time() - raw["started"]
    mem["connected"] = [memory_mb(pid) for pid in dep.pids]
    raw["redis_mem"]["connected"] = dep.probe.snapshot().used_memory if dep.probe else None
    raw["connecting"] = _window(before, Reading.take(dep))
    t_join = time.time() + 0.5
    t0 = t_join + (0.0 if burst else opts.warmup)
    sched = {"t_join": t_join, "t0": t0, "t1": t0 + opts.duration}
    for pipe in pipes:
        pipe.send(sched)
    _sleep_until(t0 - 0.01)
    r0 = _mark(dep, window_starts=True)
    if opts.mode == "mass_skip":
        raw["skip_rounds"] = _mass_skip_rounds(opts, dep, pipes)
    elif not burst:
        _sleep_until(sched["t1"])
        r1 = _mark(dep, window_starts=False)
    settled = max(_expect(p, "settled", opts.duration + opts.warmup + 60) for p in pipes)
    if burst:  # the window ends when the last worker saw all its users confirmed
        r1, sched["t1"] = _mark(dep, window_starts=False), settled
    if dep.script_times is not None:
        times = dep.script_times
        raw["script_mix"] = dict(times.counts), dict(times.usec), times.lost
    mem["end"] = [memory_mb(pid) for pid in dep.pids]
    results = [_expect(p, "result", opts.grace + loadgen.DRAIN_CAP_S + 60) for p in pipes]
    return (
        raw
        | sched
        | _window(r0, r1)
        | {
            "log": [record for r in results for record in r["log"]],
            "lags": [lag for r in results for lag in r["lags"]],
            "generator_cpu_s": sum(r["cpu_window"] for r in results),
            "drain_s": max((r["drain_s"] for r in results), default=0.0),
            "frames": sum((Counter(r["frames"]) for r in results), Counter()),
        }
    )


def run(opts: Options) -> tuple[dict[str, Any], Deployment, list[str], int | None]:
    """Deploy, load, tear down: the raw readings, the deployment, the nodes' log lines, and the
    Redis keys deleted after the run."""
    dep = Deployment()
    try:
        deploy(opts, dep)
        raw = run_load(opts, dep)
        raw["redis_local"] = dep.redis_is_local
    finally:
        lines, deleted = teardown(dep)
        sys.stderr.write("".join(lines[-20:]) if sys.exc_info()[0] else "")
    return raw, dep, lines, deleted
