"""The report of a `pairline bench` run: from the raw readings and the event log to the figures.

Events count by receipt time inside the measured window [t0, t1); times are time.time(), one
clock for all processes of the machine. docs/benchmarks.md says what each figure means.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pairline.bench.checker import Findings
from pairline.bench.config import Options
from pairline.bench.log import Record

COUNTED = (
    "matched",
    "confirmed",
    "join_sent",
    "skip_sent",
    "end_sent",
    "block_sent",
    "held",
    "drop",
    "resumed",
    "reconnecting",
    "partner_resumed",
    "queue_cancelled",
    "ping",
    "chat_sent",
    "chat",
)
EVER = (0.0, float("inf"))


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
    for t, user, kind, match_id, detail in log:
        if kind == "left" and detail[0] == "skipped":
            sent = [ts for u, ts in skips.get(match_id, {}).items() if u != user]
            if sent and lo <= min(sent) < hi:
                out.append(t - min(sent))
    return out


def confirm_latencies(log: list[Record], lo: float, hi: float) -> dict[str, list[float]]:
    """Three views of getting into a call, for calls confirmed inside [lo, hi):

    - second_join: per match, the later of the two sides' entries into the queue (its `join`
      send, its own `skip` send, or its receipt of `partner_left`/`match_cancelled` with
      `requeued`) -> the later of their two `match_confirmed` receipts;
    - wait: per user, since its wait began (as above, but a cancelled proposal does not restart
      it) -> its `match_confirmed`;
    - matched: per user, its `matched` receipt -> its `match_confirmed` receipt (its ack's way
      to the server, the partner's ack, and the confirmation's way back).
    """
    matched_at: dict[tuple[str, str], float] = {}
    sides: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    out: dict[str, list[float]] = {"second_join": [], "wait": [], "matched": []}
    for t, user, kind, match_id, detail in log:
        if kind == "matched":
            matched_at[user, match_id] = t
        elif kind == "confirmed":
            wait_start, queued_at = detail
            sides[match_id].append((t, queued_at))
            if lo <= t < hi:
                if wait_start is not None:
                    out["wait"].append(t - wait_start)
                if (user, match_id) in matched_at:
                    out["matched"].append(t - matched_at[user, match_id])
    for both in sides.values():
        done = max(t for t, _ in both)
        if len(both) == 2 and lo <= done < hi and all(q is not None for _, q in both):
            out["second_join"].append(done - max(q for _, q in both if q is not None))
    return out


def _detail_counts(log: list[Record], kind: str, lo: float, hi: float) -> dict[str, int]:
    """Records of one kind in [lo, hi), by detail (by its first item when it is a tuple)."""
    return dict(
        Counter(
            str(r[4][0] if isinstance(r[4], tuple) else r[4])
            for r in log
            if r[2] == kind and lo <= r[0] < hi
        )
    )


def server_log_summary(lines: list[str], t_end: float) -> dict[str, int]:
    """Server log lines (JSON, or the console's) counted by event (and reason), split at the
    window's end."""
    counts: Counter[str] = Counter()
    for line in lines:
        stamp, event, reason = _log_fields(line)
        try:
            phase = "run" if datetime.fromisoformat(stamp).timestamp() <= t_end else "end"
        except ValueError:
            phase = "?"
        counts[f"{phase}:{event}" + (f"/{reason}" if reason else "")] += 1
    return dict(counts)


def _log_fields(line: str) -> tuple[str, str, str | None]:
    """(timestamp, event, reason) of one server log line."""
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            reason = entry.get("reason")
            return str(entry.get("timestamp", "")), str(entry.get("event", ""))[:60], reason
    stamp = line.split()[0] if line.split() else ""
    event = line.split("]", 1)[1].split()[0] if "] " in line else line.strip()[:60]
    found = re.search(r"\breason=(\S+)", line)
    return stamp, event, found.group(1) if found else None


def burst_metrics(log: list[Record], raw: dict[str, Any]) -> dict[str, Any]:
    """Per user: its join send -> its first match_confirmed."""
    first: dict[str, tuple[float, float]] = {}
    for t, user, kind, _, detail in log:
        if kind == "confirmed" and user not in first and detail[0] is not None:
            first[user] = (t, t - detail[0])
    last = max((t for t, _ in first.values()), default=raw["t_join"])
    return {
        "join_to_confirmed_ms": percentiles((w for _, w in first.values()), (50, 90, 99)),
        "all_confirmed_after_s": round(last - raw["t_join"], 3),
        "never_confirmed": raw["connected"] - len(first),
    }


def skip_round(log: list[Record], lo: float, hi: float) -> dict[str, Any]:
    """One mass skip, the skips sent in [lo, hi): their number; skip send -> the partner's
    `partner_left{skipped}` (s); how many partners were never told; the skippers' reply times
    (s); and when the last `match_confirmed` in [lo, hi) was received (None: none was)."""
    sent = [(r[1], r[3]) for r in log if r[2] == "skip_sent" and lo <= r[0] < hi]
    told: dict[str, set[str]] = defaultdict(set)  # match_id -> users told partner_left{skipped}
    for _, user, kind, match_id, detail in log:
        if kind == "left" and detail[0] == "skipped":
            told[match_id].add(user)
    replies = [r for r in log if r[2] == "reply" and r[4][0] == "skip"]
    confirms = [r[0] for r in log if r[2] == "confirmed" and lo <= r[0] < hi]
    return {
        "skips": len(sent),
        "partner_left": skip_latencies(log, lo, hi),
        "missing": sum(not told.get(match_id, set()) - {user} for user, match_id in sent),
        "reply": [r[4][1] for r in replies if lo <= r[0] - r[4][1] < hi],
        "last_confirmed": max(confirms, default=None),
    }


def _round_report(got: dict[str, Any], round_: dict[str, Any], users: int) -> dict[str, Any]:
    """One round of --mass-skip as flat figures (see mass_skip_metrics)."""
    last, cpu, redis = got["last_confirmed"], round_["server_cpu_s"], round_["redis"]
    replies = percentiles(got["reply"], (50, 99))
    out: dict[str, Any] = {"skips": got["skips"], **percentiles(got["partner_left"])}
    out |= {
        "missing": got["missing"],
        "reply_p50": replies["p50"],
        "reply_p99": replies["p99"],
        "not_in_call_before": users - round_["in_call"],
        "not_in_call_after": users - round_["in_call_after"],
        "in_call_again_s": None if last is None else round(last - round_["t_fire"], 3),
        "server_cpu_us_per_skip": None if cpu is None else _per(cpu * 1e6, got["skips"], 0),
    }
    if redis is not None:
        out["redis_cpu_us_per_skip"] = _per(redis["cpu_s"] * 1e6, got["skips"], 0)
    return out


def mass_skip_metrics(log: list[Record], raw: dict[str, Any]) -> dict[str, Any]:
    """Over all rounds: skip send -> partner_left{skipped}, the partners never told, and the
    skippers' reply times. Per round (`round_<i>`), the same, plus the users not in a call at
    its barrier and at the next, how long after the fire the last match_confirmed came, and the
    CPU per skip from the fire to the next barrier (the re-pairing included)."""
    lefts: list[float] = []
    replies: list[float] = []
    missing = 0
    rounds: dict[str, Any] = {}
    for i, round_ in enumerate(raw["skip_rounds"], 1):
        got = skip_round(log, round_["t_fire"], round_["t_ready"])
        lefts += got["partner_left"]
        replies += got["reply"]
        missing += got["missing"]
        rounds[f"round_{i}"] = _round_report(got, round_, raw["connected"])
    return {
        "skip_to_partner_left_ms": percentiles(lefts),
        "partner_left_missing": missing,
        "skip_reply_ms": percentiles(replies),
    } | rounds


def _summed_mb(mems: list[dict[str, float]], key: str) -> float | None:
    """One /proc/PID/status figure summed over the nodes (None if any node lacks it)."""
    if not mems or not all(mems):
        return None
    return round(sum(m[key] for m in mems), 1)


def _per(value: float, count: int, digits: int = 2) -> float | None:
    return round(value / count, digits) if count else None


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


def nodes_report(raw: dict[str, Any], users: int) -> dict[str, Any]:
    """Per node: its users (round-robin), CPU in the window (s), RSS when connected (MiB)."""
    out: dict[str, Any] = {}
    nodes = len(raw["node_cpu_s"])
    for i, cpu in enumerate(raw["node_cpu_s"]):
        rss = raw["mem"]["connected"][i].get("VmRSS")
        cpu_text = "?" if cpu is None else f"{cpu:.2f}"
        share = len(range(i, users, nodes))
        out[f"n{i}"] = f"users={share} cpu_s={cpu_text} rss_mb={rss and round(rss, 1)}"
    return out


def redis_report(raw: dict[str, Any], matches: int, window: float) -> dict[str, Any]:
    """Redis's CPU, calls and memory in the window, per confirmed match where it applies."""
    use = raw["redis"]
    calls, usec = use["calls"], use["usec"]
    # The hand-offs are SPUBLISH calls inside the scripts (counted here besides them).
    evalsha, publish = calls.get("evalsha", 0), calls.get("publish", 0) + calls.get("spublish", 0)
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


def _latencies(log: list[Record], inside: list[Record], lo: float, hi: float) -> dict[str, Any]:
    """The churn mode's throughput and latency figures."""
    window = hi - lo
    kinds = Counter(r[2] for r in inside)
    confirms = confirm_latencies(log, lo, hi)
    matches = len({r[3] for r in inside if r[2] == "confirmed"})
    return {
        "confirmed_matches_per_s": round(matches / window, 1),
        "skips_per_s": round(kinds["skip_sent"] / window, 1),
        "second_join_to_confirmed_ms": percentiles(confirms["second_join"]),
        "wait_ms": percentiles(confirms["wait"]),
        "matched_to_confirmed_ms": percentiles(confirms["matched"]),
        "skip_to_partner_left_ms": percentiles(skip_latencies(log, lo, hi)),
        "reply_ms": percentiles(r[4][1] for r in inside if r[2] == "reply"),
        "resume_ms": percentiles(r[4][1] for r in inside if r[2] == "resumed"),
    }


def _costs(raw: dict[str, Any], per: dict[str, int], window: float) -> dict[str, Any]:
    """Server, generator and machine CPU in the window; server CPU per unit of work."""
    cpu, gen_cpu = raw["server_cpu_s"], raw["generator_cpu_s"]
    redis_cpu = raw["redis"]["cpu_s"] if raw["redis"] and raw["redis_local"] else 0.0
    known_busy = (cpu or 0) + gen_cpu + redis_cpu
    return {
        "server_cpu_s": None if cpu is None else round(cpu, 2),
        "server_cpu_us_per": {k: round(cpu / n * 1e6) for k, n in per.items() if cpu and n},
        "ws_frames_per": frames_report(raw["frames"], per),
        "generator_cpu_s": round(gen_cpu, 2),
        "generator_cores": round(gen_cpu / window, 2),
        "generator_loop_lag_ms": percentiles(
            (g for t, g in raw["lags"] if raw["t0"] <= t < raw["t1"]), (50, 99)
        ),
        "machine_busy_cores": round(raw["machine_busy_s"] / window, 2),
        "other_load_cores": round((raw["machine_busy_s"] - known_busy) / window, 2),
    }


def analyze(raw: dict[str, Any], opts: Options, findings: Findings) -> dict[str, Any]:
    """The report of one run, as a dict of figures (print_report shows it)."""
    log: list[Record] = raw["log"]
    lo, hi = raw["t0"], raw["t1"]
    window = hi - lo
    inside = [r for r in log if lo <= r[0] < hi]
    kinds = Counter(r[2] for r in inside)
    matches = len({r[3] for r in inside if r[2] == "confirmed"})
    nodes = len(raw["node_cpu_s"])
    store = "redis" if raw["redis"] is not None or opts.redis else "memory"
    rep: dict[str, Any] = {
        "run": f"{opts.mode} ws={opts.ws if opts.spawn else '?'} "
        f"store={store} nodes={nodes} users={opts.users} procs={opts.procs} "
        f"connected in {raw['connect_s']:.1f} s, window {window:.2f} s",
        "connected": raw["connected"],
        "drain_s": round(raw["drain_s"], 1),
    }
    if opts.mode == "burst":
        rep |= burst_metrics(log, raw)
    elif opts.mode == "mass_skip":
        rep |= burst_metrics(log, raw) | mass_skip_metrics(log, raw)
    elif opts.mode == "churn":
        rep |= _latencies(log, inside, lo, hi)
    per = {
        "match": matches,
        "skip": kinds["skip_sent"],
        "ping": kinds["ping"],
        "chat": kinds["chat_sent"],
    }
    rep |= {
        "confirmed_matches": matches,
        "counts": {k: kinds[k] for k in COUNTED}
        | {"fresh_sessions": sum(r[2] == "resumed" and r[4][0] for r in inside)},
        "cancelled": _detail_counts(log, "cancelled", lo, hi),
        "partner_left": _detail_counts(log, "left", lo, hi),
        "errors": _detail_counts(log, "error", lo, hi),
        "dropped": _detail_counts(log, "dropped", *EVER),
        "lost": _detail_counts(log, "lost", *EVER),
        "connect_failed": _detail_counts(log, "connect_failed", *EVER),
        "generator_crashes": [r[4] for r in log if r[2] == "crash"][:3],
        "violations": findings.counts(),
        "violation_examples": findings.examples(),
    }
    rep |= _costs(raw, per, window)
    rep["connect_cpu_us_per_user"] = connect_report(raw)
    rep |= memory_report(raw)
    if nodes > 1:
        rep["nodes"] = nodes_report(raw, opts.users)
    if raw["redis"] is not None:
        rep["redis"] = redis_report(raw, matches, window)
        rep["redis_cpu_us_per"] = {
            k: round(raw["redis"]["cpu_s"] * 1e6 / n) for k, n in per.items() if n
        }
        rep["redis_calls_per"] = redis_calls_report(raw, per)
    if "script_mix" in raw:
        rep["script_mix"] = script_mix_report(raw, per)
    return rep


def failed(rep: dict[str, Any]) -> list[str]:
    """Why the run must not pass: violations, generator crashes, nobody connected."""
    why = [f"{name}={n}" for name, n in rep["violations"].items() if n]
    if rep["generator_crashes"]:
        why.append(f"generator crashes: {len(rep['generator_crashes'])}+")
    if not rep["connected"]:
        why.append("no user connected")
    return why


def print_report(rep: dict[str, Any]) -> None:
    """One line per metric; dicts as k=v pairs; then the violations and the server's last lines."""
    skipped = {"server_log_tail", "violation_examples", "generator_crashes"}
    for key, value in rep.items():
        if key in skipped:
            continue
        if isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items()) or "-"
        print(f"{key:>28}  {value}")
    for crash in rep["generator_crashes"]:
        print("  generator crash:", crash.rstrip().replace("\n", " | ")[:300])
    for name, lines in rep["violation_examples"].items():
        for line in lines:
            print(f"  {name}: {line}")
    for line in rep.get("server_log_tail", [])[-5:]:
        print("  server log:", line.rstrip()[:300])
    why = failed(rep)
    print(f"{'verdict':>28}  {'FAIL: ' + ', '.join(why) if why else 'ok: no violations'}")


def to_json(rep: dict[str, Any]) -> str:
    return json.dumps(rep, indent=2, default=str) + "\n"
