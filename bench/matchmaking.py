"""Load benchmark of pairline's matchmaking: many users churning through 1:1 matches.

    .venv/bin/python bench/matchmaking.py --users 1000 [--url URL[,URL...] | --spawn]
        [--ws native|asgi] [--nodes N] [--redis URL|spawn] [--script-mix]
        [--duration 20] [--warmup 5] [--procs 2] [--burst | --idle] [--chat-interval S]
        [--json out.json]

Server: `--spawn` (the default without `--url`) starts `--nodes` (default 1) `pairline serve`
processes, each on a free port, with quiet logs, `PAIRLINE_WS_IMPL` from `--ws`,
`PAIRLINE_SKIP_LIMIT=0` (else the skip cool-down takes churning users out of the pool), one shared
random `PAIRLINE_SECRET` (a guest token must verify on every node), and a scratch working directory
each; it stops them after. Their CPU time comes from /proc/PID/stat (utime+stime), their memory
from /proc/PID/status (with `--url`, pass `--server-pid` once per node for these). User i connects
to node i mod N (round-robin), for its guest token and its WebSocket alike.

Redis: `--redis URL` gives every node `REDIS_URL=URL`, a fresh `PAIRLINE_REDIS_PREFIX`
(`bench-<hex>`, whose keys are deleted after the run) and `PAIRLINE_NODE_ID=bench-n<i>`; these win
over `--server-env`. `--redis spawn` first starts a private `redis-server` (free port, no
persistence) and stops it after: on a Redis that others use too, Redis's CPU and command counts
are theirs as much as ours. Two or more nodes need Redis (the memory store is per process).
Redis's CPU is `INFO cpu` used_cpu_sys + used_cpu_user, its commands `INFO commandstats` (commands
that scripts call count under their own names too), its memory `INFO memory` used_memory.
`--script-mix` (with `--redis spawn`) logs commands of 50 µs or more in the private Redis's
SLOWLOG and reports per script (sha1 mapped to the name as pairline's loader builds each script)
its calls per match and its mean Redis-internal µs; `coverage` = scripts seen there / EVALSHA
calls in commandstats (1.0: none ran faster than 50 µs).

Load: `--users` users over `--procs` worker processes (bench/loadgen.py), each a uvloop of raw
protocol clients (guest token, `hello`, ack every message at once, `pong` every `ping`), not the
SDK, whose per-message bookkeeping would make the generator the bottleneck on a small machine.
Churn, per user: `join`; on `match_confirmed` "talk" 0.5-2 s (uniform), then with probability
0.5 `skip` (the server re-queues both), else `end` and `join` again after 0.1-0.5 s. On
`partner_left` the server has re-queued it: it just waits.

Phases: connect everyone (not measured); all join at t_join; `--warmup` s (not measured); the
measured window [t0, t1) of `--duration` s. From t1 users send no command and ack no new
`matched` (so nothing is confirmed after t1), read on for `--grace` s, then close. `--burst`:
all join at once and stay in their first call; the window runs from t_join until every user is
confirmed (or `--duration` is over). `--idle`: users connect and never join, so the window holds
only pings and their pong and ack (with `--server-env PAIRLINE_PING_INTERVAL_MS=1000`, 1,000
users get 1,000 pings/s). `--chat-interval S`: in each call, each user also sends a `chat` every
S s, relayed to the partner, who acks it like any message.

Metrics: events count by receipt time inside the window; times are time.time(), one clock for
all processes of the machine.
- wait_ms p50/p90/p99/max: per `match_confirmed`, time since its user's wait began: its `join`,
  or its re-queueing (`partner_left` receipt, or the reply to its own `skip`); a proposal
  cancelled with `requeued:true` does not restart the wait.
- skip_to_partner_left_ms: skipper's `skip` send -> the partner's `partner_left{skipped}`
  receipt, joined on match_id across processes.
- confirmed_matches(_per_s): distinct match_ids confirmed in the window (/ its length).
- counts: `matched`/`match_confirmed` messages (two per match), commands sent; `cancelled`
  and `partner_left` by reason; `errors` by command:code; `dropped` connections by close code.
- server_cpu_s, and µs per confirmed match / skip / ping / chat sent: the window's whole server
  CPU (all nodes) divided by each count (each includes all the server did, so they are not
  additive; the ping figure is the one to use with --idle, the chat one with --chat-interval);
  nodes: per node its users, CPU in the window (s), and RSS when connected (MiB).
- redis (with --redis): cpu_s and cores in the window, cpu_us_per_match (Redis CPU / confirmed
  matches), evalsha/publish calls per match, evalsha_us_per_call (Redis's own time inside
  scripts, commandstats usec / calls), other_calls_per_match (everything else in commandstats:
  mostly commands the scripts call, plus heartbeats), kb_per_connected_user (used_memory growth
  while connecting / users); redis_cpu_us_per: Redis CPU per match / skip / ping / chat, as
  for the server; redis_calls_per: the top commands per match (per ping with --idle);
  script_mix (with --script-mix): per script `calls per match x mean µs inside Redis`, and its
  coverage.
- generator_cpu_s / generator_cores: workers' CPU in the window (is the generator the limit?).
- generator_loop_lag_ms: how late the workers' loops wake from a 50 ms sleep; every latency
  above includes up to this much generator-side delay.
- machine_busy_cores: all cores' busy time (/proc/stat) / window; other_load_cores is that less
  servers, generator and (a local) Redis: other processes competing (~0 for a clean run).
- ws_frames_per: WebSocket frames in the window per match (per ping with --idle), rx = server to
  client, tx = client to server (commands, acks, pongs, chats).
- connect_cpu_us_per_user: server and Redis CPU from before the workers start until all are
  connected (guest token, WebSocket upgrade, hello), per connected user, and EVALSHA per user.
- server_rss_mb before connecting / connected (idle) / at the end, summed over the nodes, peak
  (VmHWM, summed), and server_kb_per_idle_conn = (connected - before) / users.
- violations (must be 0), whole run: `overlap` (a user confirmed in a match while still in a
  call it had not left), `split_brain` (a match_id confirmed to one side only, or to a user it was
  not proposed to), `pairing` (a match proposed to 3+ users, or partners not naming each other).
- burst: join_to_confirmed_ms per user, all_confirmed_after_s (t_join -> last confirmation),
  never_confirmed, dropped.
- server_log: the server's log lines by event(/reason), `run:` up to t1, `end:` after.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import loadgen
from loadgen import Record
from redisprobe import (
    PrivateRedis,
    RedisProbe,
    ScriptTimes,
    Snapshot,
    delete_prefix,
    fresh_prefix,
    usage,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNTED = (
    "matched",
    "confirmed",
    "join_sent",
    "skip_sent",
    "end_sent",
    "queue_cancelled",
    "ping",
    "chat_sent",
    "chat",
)
EVER = (0.0, float("inf"))

# ---- the server ----------------------------------------------------------------------------


class Server:
    """`pairline serve` in a subprocess, logging to a file in a scratch directory."""

    def __init__(self, ws_impl: str, extra_env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.workdir = tempfile.TemporaryDirectory(prefix="pairline-bench-")
        self.log_path = Path(self.workdir.name) / "server.log"
        env = {**os.environ, "PAIRLINE_LOG_LEVEL": "warning", "PAIRLINE_WS_IMPL": ws_impl}
        # All simulated users come from 127.0.0.1: lift the per-address limits.
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

    urls: list[str]
    pids: list[int | None]
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


UNLIMITED_ADDRESS = {
    "PAIRLINE_MAX_CONNECTIONS_PER_IP": "1000000",
    "PAIRLINE_GUEST_TOKENS_PER_IP_PER_MIN": "1000000",
}


def node_env(
    args: argparse.Namespace, deployment: Deployment, index: int, secret: str
) -> dict[str, str]:
    """The environment of node `index`: --server-env, then the cluster settings, which win."""
    env = {"PAIRLINE_SECRET": secret}
    env |= dict(item.split("=", 1) for item in args.server_env)
    if deployment.redis_url:
        env |= {
            "REDIS_URL": deployment.redis_url,
            "PAIRLINE_REDIS_PREFIX": str(deployment.prefix),
            "PAIRLINE_NODE_ID": f"bench-n{index}",
        }
    return env


def deploy(args: argparse.Namespace, dep: Deployment) -> None:
    """Fill `dep`: start the private Redis (--redis spawn) and the nodes, or take --url's.

    `dep` is filled as things start, so that `teardown` stops them even if a later one fails.
    """
    if args.url:
        dep.urls = args.url.split(",")
        dep.pids = list(args.server_pid) or [None] * len(dep.urls)
        dep.redis_url = args.redis
    else:
        if args.redis == "spawn":
            dep.private_redis = PrivateRedis()
            dep.private_redis.wait_ready()
        dep.redis_url = dep.private_redis.url if dep.private_redis else args.redis
        dep.prefix = fresh_prefix() if dep.redis_url else None
        secret = secrets.token_urlsafe(24)
        for index in range(args.nodes):
            dep.servers.append(Server(args.ws, node_env(args, dep, index, secret)))
        for server in dep.servers:
            server.wait_ready()
        dep.urls = [server.url for server in dep.servers]
        dep.pids = [server.process.pid for server in dep.servers]
    if dep.redis_url:
        dep.probe = RedisProbe(dep.redis_url)
        if args.script_mix:
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


def _start_workers(args: argparse.Namespace, urls: list[str]) -> list[Connection]:
    """One process per --procs; worker k's users are the global indexes first..first+count-1."""
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    first = 0
    for index in range(args.procs):
        count = args.users // args.procs + (index < args.users % args.procs)
        mine, theirs = ctx.Pipe()
        plan = {**vars(args), "urls": urls, "first": first, "users": count, "index": index}
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


def run_load(args: argparse.Namespace, dep: Deployment) -> dict[str, Any]:
    """Take the workers through every phase; return the raw material for `analyze`."""
    before = Reading.take(dep)
    pipes = _start_workers(args, dep.urls)
    mem: dict[str, Any] = {"before": [memory_mb(pid) for pid in dep.pids]}
    raw: dict[str, Any] = {"mem": mem, "started": time.time()}
    raw["redis_mem"] = {"before": dep.probe.snapshot().used_memory if dep.probe else None}
    raw["connected"] = sum(_expect(p, "connected", 300) for p in pipes)
    raw["connect_s"] = time.time() - raw["started"]
    mem["connected"] = [memory_mb(pid) for pid in dep.pids]
    raw["redis_mem"]["connected"] = dep.probe.snapshot().used_memory if dep.probe else None
    raw["connecting"] = _window(before, Reading.take(dep))
    t_join = time.time() + 0.5
    t0 = t_join + (0.0 if args.burst else args.warmup)
    sched = {"t_join": t_join, "t0": t0, "t1": t0 + args.duration}
    for pipe in pipes:
        pipe.send(sched)
    _sleep_until(t0 - 0.01)
    r0 = _mark(dep, window_starts=True)
    if not args.burst:
        _sleep_until(sched["t1"])
        r1 = _mark(dep, window_starts=False)
    settled = max(_expect(p, "settled", args.duration + args.warmup + 60) for p in pipes)
    if args.burst:  # the window ends when the last worker saw all its users confirmed
        r1, sched["t1"] = _mark(dep, window_starts=False), settled
    if dep.script_times is not None:
        times = dep.script_times
        raw["script_mix"] = dict(times.counts), dict(times.usec), times.lost
    mem["end"] = [memory_mb(pid) for pid in dep.pids]
    results = [_expect(p, "result", args.grace + 60) for p in pipes]
    return (
        raw
        | sched
        | _window(r0, r1)
        | {
            "log": [record for r in results for record in r["log"]],
            "lags": [lag for r in results for lag in r["lags"]],
            "generator_cpu_s": sum(r["cpu_window"] for r in results),
            "frames": sum((Counter(r["frames"]) for r in results), Counter()),
        }
    )


# ---- analysis ---------------------------------------------------------------------------------


def percentiles(values: Iterable[float], points: Iterable[int] = (50, 90, 99)) -> dict[str, Any]:
    """Nearest-rank percentiles of durations in seconds, reported in ms."""
    data = sorted(values)
    out: dict[str, Any] = {"n": len(data)}
    for p in points:
        out[f"p{p}"] = round(data[max(0, -(-p * len(data) // 100) - 1)] * 1000, 1) if data else None
    out["max"] = round(data[-1] * 1000, 1) if data else None
    return out


def skip_latencies(log: list[Record], lo: float, hi: float) -> list[float]:
    """Partner's `partner_left{skipped}` receipt minus the other side's `skip` send."""
    skips: dict[str, dict[str, float]] = defaultdict(dict)  # match_id -> {skipper: t}
    for t, user, kind, match_id, _ in log:
        if kind == "skip_sent":
            skips[match_id][user] = t
    out = []
    for t, user, kind, match_id, reason in log:
        if kind == "left" and reason == "skipped":
            sent = [ts for u, ts in skips.get(match_id, {}).items() if u != user]
            if sent and lo <= min(sent) < hi:
                out.append(t - min(sent))
    return out


def violations(log: list[Record]) -> dict[str, int]:
    """The invariant checks of the docstring, over the whole run."""
    proposed: dict[str, dict[str, str]] = defaultdict(dict)  # match_id -> {user: partner}
    confirmed: dict[str, set[str]] = defaultdict(set)
    for _, user, kind, match_id, extra in log:
        if kind == "matched":
            proposed[match_id][user] = extra
        elif kind == "confirmed":
            confirmed[match_id].add(user)
    split = sum(len(us) != 2 or bool(us - proposed[m].keys()) for m, us in confirmed.items())
    pairing = sum(
        len(sides) > 2 or (len(sides) == 2 and any(sides.get(p) != u for u, p in sides.items()))
        for sides in proposed.values()
    )
    overlap = sum(r[2] == "overlap" for r in log)
    return {"overlap": overlap, "split_brain": split, "pairing": pairing}


def _by_extra(log: list[Record], kind: str, lo: float, hi: float) -> dict[str, int]:
    return dict(Counter(str(r[4]) for r in log if r[2] == kind and lo <= r[0] < hi))


def server_log_summary(lines: list[str], t_end: float) -> dict[str, int]:
    """Server log lines counted by event (and reason=), split at the window's end."""
    counts: Counter[str] = Counter()
    for line in lines:
        try:
            phase = "run" if datetime.fromisoformat(line.split()[0]).timestamp() <= t_end else "end"
        except (ValueError, IndexError):
            phase = "?"
        event = line.split("]", 1)[1].split()[0] if "] " in line else line.strip()[:60]
        reason = re.search(r"\breason=(\S+)", line)
        counts[f"{phase}:{event}" + (f"/{reason.group(1)}" if reason else "")] += 1
    return dict(counts)


def burst_metrics(log: list[Record], raw: dict[str, Any]) -> dict[str, Any]:
    """Per user: its join send -> its first match_confirmed."""
    first: dict[str, tuple[float, float]] = {}
    for t, user, kind, _, wait in log:
        if kind == "confirmed" and user not in first and wait is not None:
            first[user] = (t, wait)
    last = max((t for t, _ in first.values()), default=raw["t_join"])
    return {
        "join_to_confirmed_ms": percentiles((w for _, w in first.values()), (50, 99)),
        "all_confirmed_after_s": round(last - raw["t_join"], 3),
        "never_confirmed": raw["connected"] - len(first),
    }


def _summed_mb(mems: list[dict[str, float]], key: str) -> float | None:
    """One /proc/PID/status figure summed over the nodes (None if any node lacks it)."""
    if not mems or not all(mems):
        return None
    return round(sum(m[key] for m in mems), 1)


def frames_report(frames: Counter[str], per: dict[str, int]) -> dict[str, Any]:
    """WebSocket frames in the window (rx: server -> client, tx: client -> server), per match,
    or per ping when there was no match (--idle)."""
    unit = "match" if per["match"] else "ping"
    out: dict[str, Any] = {"unit": unit}
    for way in ("rx", "tx"):
        out[way] = _per(frames[way], per[unit])
    return out


def connect_report(raw: dict[str, Any]) -> dict[str, Any]:
    """Server and Redis CPU while connecting (guest token + WebSocket + hello), per user."""
    phase, users = raw["connecting"], raw["connected"]
    out: dict[str, Any] = {}
    if phase["server_cpu_s"] is not None and users:
        out["server"] = round(phase["server_cpu_s"] * 1e6 / users)
    if phase["redis"] is not None and users:
        out["redis"] = round(phase["redis"]["cpu_s"] * 1e6 / users)
        out["redis_evalsha"] = _per(phase["redis"]["calls"].get("evalsha", 0), users)
    return out


def memory_report(raw: dict[str, Any]) -> dict[str, Any]:
    """Server RSS by stage (summed over nodes), peak, and the growth per idle connection."""
    mem = raw["mem"]
    stages = {k: _summed_mb(m, "VmRSS") for k, m in mem.items()}
    out: dict[str, Any] = {
        "server_rss_mb": {k: v for k, v in stages.items() if v is not None},
        "server_peak_rss_mb": _summed_mb(mem["end"], "VmHWM"),
    }
    if stages["before"] is not None and stages["connected"] is not None and raw["connected"]:
        grew = stages["connected"] - stages["before"]
        out["server_kb_per_idle_conn"] = round(grew * 1024 / raw["connected"], 1)
    return out


def nodes_report(raw: dict[str, Any], args: argparse.Namespace, urls: int) -> dict[str, Any]:
    """Per node: its users (round-robin), CPU in the window (s), RSS when connected (MiB)."""
    out: dict[str, Any] = {}
    for i, cpu in enumerate(raw["node_cpu_s"]):
        users = len(range(i, args.users, urls))
        rss = raw["mem"]["connected"][i].get("VmRSS")
        cpu_text = "?" if cpu is None else f"{cpu:.2f}"
        out[f"n{i}"] = f"users={users} cpu_s={cpu_text} rss_mb={rss and round(rss, 1)}"
    return out


def _per(value: float, count: int, digits: int = 2) -> float | None:
    return round(value / count, digits) if count else None


def redis_report(raw: dict[str, Any], matches: int, window: float) -> dict[str, Any]:
    """Redis's CPU, calls and memory in the window, per confirmed match where it applies."""
    use = raw["redis"]
    calls, usec = use["calls"], use["usec"]
    evalsha, publish = calls.get("evalsha", 0), calls.get("publish", 0)
    other = sum(calls.values()) - evalsha - publish
    out: dict[str, Any] = {
        "cpu_s": round(use["cpu_s"], 3),
        "cores": round(use["cpu_s"] / window, 3),
        "cpu_us_per_match": _per(use["cpu_s"] * 1e6, matches, 0),
        "evalsha_per_match": _per(evalsha, matches),
        "evalsha_us_per_call": _per(usec.get("evalsha", 0), evalsha, 1),
        "publish_per_match": _per(publish, matches),
        "other_calls_per_match": _per(other, matches, 1),
        "clients": use["clients"],
    }
    before, connected = raw["redis_mem"]["before"], raw["redis_mem"]["connected"]
    if before is not None and connected is not None and raw["connected"]:
        out["kb_per_connected_user"] = round((connected - before) / 1024 / raw["connected"], 2)
    return out


def redis_calls_report(raw: dict[str, Any], per: dict[str, int]) -> dict[str, Any]:
    """The 12 commands Redis ran most in the window, per confirmed match (per ping if none)."""
    unit = "match" if per["match"] else "ping"
    top = sorted(raw["redis"]["calls"].items(), key=lambda kv: -kv[1])[:12]
    return {"unit": unit} | {name: _per(n, per[unit]) for name, n in top}


def script_mix_report(raw: dict[str, Any], per: dict[str, int]) -> dict[str, Any]:
    """Per script (and other command): calls per match (or per ping, with no match) and the
    mean Redis-internal µs per call, from the SLOWLOG."""
    counts, usec, lost = raw["script_mix"]
    unit = "match" if per["match"] else "ping"
    evalsha = raw["redis"]["calls"].get("evalsha", 0)
    coverage = _per(sum(counts.values()), evalsha, 3)
    out: dict[str, Any] = {"per": unit, "coverage": coverage, "lost_entries": lost}
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        out[name] = f"{_per(n, per[unit])}x{round(usec[name] / n, 1)}us"
    return out


def analyze(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    log: list[Record] = raw["log"]
    lo, hi = raw["t0"], raw["t1"]
    window = hi - lo
    inside = [r for r in log if lo <= r[0] < hi]
    kinds = Counter(r[2] for r in inside)
    matches = len({r[3] for r in inside if r[2] == "confirmed"})
    cpu, gen_cpu = raw["server_cpu_s"], raw["generator_cpu_s"]
    nodes = len(raw["node_cpu_s"])
    store = "redis" if raw["redis"] is not None or args.redis else "memory"
    mode = "burst" if args.burst else "idle" if args.idle else "churn"
    rep: dict[str, Any] = {
        "run": f"{mode} ws={'?' if args.url else args.ws} "
        f"store={store} nodes={nodes} users={args.users} procs={args.procs} "
        f"connected={raw['connected']} in {raw['connect_s']:.1f} s, window {window:.2f} s",
    }
    if args.burst:
        rep |= burst_metrics(log, raw)
    else:
        waits = [r[4] for r in inside if r[2] == "confirmed" and r[4] is not None]
        rep["wait_ms"] = percentiles(waits)
        rep["skip_to_partner_left_ms"] = percentiles(skip_latencies(log, lo, hi))
        rep["confirmed_matches_per_s"] = round(matches / window, 1)
    per = {
        "match": matches,
        "skip": kinds["skip_sent"],
        "ping": kinds["ping"],
        "chat": kinds["chat_sent"],
    }
    redis_cpu = raw["redis"]["cpu_s"] if raw["redis"] and raw["redis_local"] else 0.0
    known_busy = (cpu or 0) + gen_cpu + redis_cpu
    rep |= {
        "confirmed_matches": matches,
        "counts": {k: kinds[k] for k in COUNTED},
        "cancelled": _by_extra(log, "cancelled", lo, hi),
        "partner_left": _by_extra(log, "left", lo, hi),
        "errors": _by_extra(log, "error", lo, hi),
        "dropped": _by_extra(log, "dropped", *EVER),
        "connect_failed": _by_extra(log, "connect_failed", *EVER),
        "generator_crashes": [r[4] for r in log if r[2] == "crash"][:3],
        "violations": violations(log),
        "server_cpu_s": None if cpu is None else round(cpu, 2),
        "server_cpu_us_per": {k: round(cpu / n * 1e6) for k, n in per.items() if cpu and n},
        "ws_frames_per": frames_report(raw["frames"], per),
        "generator_cpu_s": round(gen_cpu, 2),
        "generator_cores": round(gen_cpu / window, 2),
        "generator_loop_lag_ms": percentiles((g for t, g in raw["lags"] if lo <= t < hi), (50, 99)),
        "machine_busy_cores": round(raw["machine_busy_s"] / window, 2),
        "other_load_cores": round((raw["machine_busy_s"] - known_busy) / window, 2),
    }
    rep["connect_cpu_us_per_user"] = connect_report(raw)
    rep |= memory_report(raw)
    if nodes > 1:
        rep["nodes"] = nodes_report(raw, args, nodes)
    if raw["redis"] is not None:
        rep["redis"] = redis_report(raw, matches, window)
        rep["redis_cpu_us_per"] = {
            k: round(raw["redis"]["cpu_s"] * 1e6 / n) for k, n in per.items() if n
        }
        rep["redis_calls_per"] = redis_calls_report(raw, per)
    if "script_mix" in raw:
        rep["script_mix"] = script_mix_report(raw, per)
    return rep


def print_report(rep: dict[str, Any]) -> None:
    """One line per metric; dicts as k=v pairs."""
    for key, value in rep.items():
        if key == "server_log_tail" or (key == "generator_crashes" and not value):
            continue
        if isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items()) or "-"
        print(f"{key:>24}  {value}")
    for line in rep["server_log_tail"][-5:]:
        print("  server log:", line.rstrip()[:300])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1000)
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--url", help="benchmark running nodes (http://host:port[,...])")
    where.add_argument("--spawn", action="store_true", help="start the nodes (the default)")
    ap.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="with --url: each node's pid, in --url's order, for CPU/RSS",
    )
    ap.add_argument("--nodes", type=int, default=1, help="nodes to spawn (>1 needs --redis)")
    ap.add_argument(
        "--redis",
        metavar="URL|spawn",
        help="nodes share this Redis (fresh key prefix); `spawn`: a private redis-server",
    )
    ap.add_argument(
        "--script-mix", action="store_true", help="count EVALSHA per script via MONITOR"
    )
    ap.add_argument("--ws", choices=("native", "asgi"), default="native")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds after the first joins")
    ap.add_argument("--grace", type=float, default=2.0, help="reading on after the window")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--burst", action="store_true")
    ap.add_argument(
        "--idle", action="store_true", help="connect and never join: measures pings only"
    )
    ap.add_argument(
        "--chat-interval",
        type=float,
        default=0.0,
        metavar="S",
        help="in a call, each user sends a chat every S s (0: none)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args(argv)
    if args.nodes < 1 or (args.nodes > 1 and not args.redis):
        ap.error("--nodes N > 1 needs --redis (the memory store lives in one process)")
    if args.url and args.redis == "spawn":
        ap.error("--redis spawn starts a Redis for spawned nodes only; give --url's Redis URL")
    if args.script_mix and args.redis != "spawn":
        ap.error("--script-mix needs --redis spawn (it turns on SLOWLOG for every command)")
    return args


def main() -> None:
    args = parse_args()
    dep = Deployment([], [])
    lines: list[str] = []
    deleted: int | None = None
    try:
        deploy(args, dep)
        raw = run_load(args, dep)
        raw["redis_local"] = dep.redis_is_local
    finally:
        lines, deleted = teardown(dep)
        sys.stderr.write("".join(lines[-20:]) if sys.exc_info()[0] else "")
    report = analyze(raw, args)
    if dep.prefix:
        report["redis_prefix"] = f"{dep.prefix} ({deleted} keys deleted after the run)"
    report["server_log"] = server_log_summary(lines, raw["t1"]) if dep.servers else None
    report["server_log_tail"] = lines[-50:]
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
