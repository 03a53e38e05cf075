"""Load benchmark of pairline's matchmaking: many users churning through 1:1 matches.

    .venv/bin/python bench/matchmaking.py --users 1000 [--url URL | --spawn] [--ws native|asgi]
        [--duration 20] [--warmup 5] [--procs 2] [--burst] [--json out.json]

Server: `--spawn` (the default without `--url`) starts `pairline serve` on a free port with quiet
logs, `PAIRLINE_WS_IMPL` from `--ws`, `PAIRLINE_SKIP_LIMIT=0` (else the skip cool-down takes
churning users out of the pool) and a scratch working directory, and stops it after. Its CPU time
comes from /proc/PID/stat (utime+stime), its memory from /proc/PID/status (with `--url`, pass
`--server-pid` for these).

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
confirmed (or `--duration` is over).

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
- server_cpu_s, and µs per confirmed match / per skip: the window's whole server CPU divided by
  each count (both include all the server did, so they are not additive).
- generator_cpu_s / generator_cores: workers' CPU in the window (is the generator the limit?).
- generator_loop_lag_ms: how late the workers' loops wake from a 50 ms sleep; every latency
  above includes up to this much generator-side delay.
- machine_busy_cores: all cores' busy time (/proc/stat) / window; other_load_cores is that less
  server and generator: other processes competing (~0 for a clean run).
- server_rss_mb before connecting / connected (idle) / at the end, peak (VmHWM), and
  server_kb_per_idle_conn = (connected - before) / users.
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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import loadgen
from loadgen import Record

CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNTED = ("matched", "confirmed", "join_sent", "skip_sent", "end_sent", "queue_cancelled")
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
        env |= {"PAIRLINE_SKIP_LIMIT": "0", **extra_env}
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


def run_load(args: argparse.Namespace, url: str, pid: int | None) -> dict[str, Any]:
    """Take the workers through every phase; return the raw material for `analyze`."""
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    for index in range(args.procs):
        count = args.users // args.procs + (index < args.users % args.procs)
        mine, theirs = ctx.Pipe()
        plan = {**vars(args), "url": url, "users": count, "index": index}
        ctx.Process(target=loadgen.worker_main, args=(plan, theirs), daemon=True).start()
        pipes.append(mine)
    raw: dict[str, Any] = {"mem": {"before": memory_mb(pid)}, "started": time.time()}
    raw["connected"] = sum(_expect(p, "connected", 300) for p in pipes)
    raw["connect_s"], raw["mem"]["connected"] = time.time() - raw["started"], memory_mb(pid)
    t_join = time.time() + 0.5
    t0 = t_join + (0.0 if args.burst else args.warmup)
    sched = {"t_join": t_join, "t0": t0, "t1": t0 + args.duration}
    for pipe in pipes:
        pipe.send(sched)
    _sleep_until(t0 - 0.01)
    cpu0, busy0 = cpu_seconds(pid), machine_busy_s()
    if not args.burst:
        _sleep_until(sched["t1"])
        cpu1, busy1 = cpu_seconds(pid), machine_busy_s()
    settled = max(_expect(p, "settled", args.duration + args.warmup + 60) for p in pipes)
    if args.burst:  # the window ends when the last worker saw all its users confirmed
        cpu1, busy1, sched["t1"] = cpu_seconds(pid), machine_busy_s(), settled
    raw["mem"]["end"] = memory_mb(pid)
    results = [_expect(p, "result", args.grace + 60) for p in pipes]
    return (
        raw
        | sched
        | {
            "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            "machine_busy_s": busy1 - busy0,
            "log": [record for r in results for record in r["log"]],
            "lags": [lag for r in results for lag in r["lags"]],
            "generator_cpu_s": sum(r["cpu_window"] for r in results),
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


def analyze(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    log: list[Record] = raw["log"]
    lo, hi = raw["t0"], raw["t1"]
    window = hi - lo
    inside = [r for r in log if lo <= r[0] < hi]
    kinds = Counter(r[2] for r in inside)
    matches = len({r[3] for r in inside if r[2] == "confirmed"})
    cpu, gen_cpu, mem = raw["server_cpu_s"], raw["generator_cpu_s"], raw["mem"]
    rep: dict[str, Any] = {
        "run": f"{'burst' if args.burst else 'churn'} ws={'?' if args.url else args.ws} "
        f"users={args.users} procs={args.procs} connected={raw['connected']} "
        f"in {raw['connect_s']:.1f} s, window {window:.2f} s",
    }
    if args.burst:
        rep |= burst_metrics(log, raw)
    else:
        waits = [r[4] for r in inside if r[2] == "confirmed" and r[4] is not None]
        rep["wait_ms"] = percentiles(waits)
        rep["skip_to_partner_left_ms"] = percentiles(skip_latencies(log, lo, hi))
        rep["confirmed_matches_per_s"] = round(matches / window, 1)
    per = {"match": matches, "skip": kinds["skip_sent"]}
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
        "server_cpu_us_per": {
            k: round(cpu / n * 1e6) if cpu and n else None for k, n in per.items()
        },
        "generator_cpu_s": round(gen_cpu, 2),
        "generator_cores": round(gen_cpu / window, 2),
        "generator_loop_lag_ms": percentiles((g for t, g in raw["lags"] if lo <= t < hi), (50, 99)),
        "machine_busy_cores": round(raw["machine_busy_s"] / window, 2),
        "other_load_cores": round((raw["machine_busy_s"] - (cpu or 0) - gen_cpu) / window, 2),
        "server_rss_mb": {k: round(m["VmRSS"], 1) for k, m in mem.items() if m},
        "server_peak_rss_mb": round(mem["end"]["VmHWM"], 1) if mem["end"] else None,
    }
    if mem["before"] and raw["connected"]:
        grew = mem["connected"]["VmRSS"] - mem["before"]["VmRSS"]
        rep["server_kb_per_idle_conn"] = round(grew * 1024 / raw["connected"], 1)
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
    where.add_argument("--url", help="benchmark a running server (http://host:port)")
    where.add_argument("--spawn", action="store_true", help="start a server (the default)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's pid, for CPU/RSS")
    ap.add_argument("--ws", choices=("native", "asgi"), default="native")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds after the first joins")
    ap.add_argument("--grace", type=float, default=2.0, help="reading on after the window")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--burst", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the report here")
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    server = None
    if args.url is None:
        server = Server(args.ws, dict(item.split("=", 1) for item in args.server_env))
    url, pid = (server.url, server.process.pid) if server else (args.url, args.server_pid)
    lines: list[str] = []
    try:
        if server is not None:
            server.wait_ready()
        raw = run_load(args, url, pid)
    finally:
        if server is not None:
            lines = server.stop()
            sys.stderr.write("".join(lines[-20:]) if sys.exc_info()[0] else "")
    report = analyze(raw, args)
    report["server_log"] = server_log_summary(lines, raw["t1"]) if server else None
    report["server_log_tail"] = lines[-50:]
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
