"""Capacity plan for pairline: the rates, nodes and Redis shards N concurrent users need.

    .venv/bin/python bench/capacity.py --users 10000 100000 1000000 [--headroom 2] [...]

Every input is a flag. The cost flags' defaults are the figures measured on the 2-core machine of
docs/benchmarks.md ("Redis backend" sections; bench/matchmaking.py and bench/redis_costs.py); the
behaviour flags' defaults are the assumptions docs/scaling.md states. Nothing else goes in.

How it counts, two ways that must agree:

1. Analytic (closed form, any N). A user that matchmakes cycles through: a wait in the queue
   (`--propose-s`: pairing, `matched`, both acks), a call (`--call-s` on average, cut short when
   either side disconnects), and, if its call ended with its own `end` (probability
   (1 - skip share) / 2: one side ends it), a pause (`--pause-s`) before it joins again; a
   `skip` re-queues both at once, so does the partner's `end` or disconnect. With M
   matchmaking users and a cycle of T s: matches/s = M / T / 2, users in a call = M * call / T.
   Every connected user gets a ping every `--ping-s` s (and answers it with a pong and an ack);
   users in a call send `--chat-per-min` chats a minute; each match relays `--signals-per-match`
   WebRTC signalling messages; connections last `--session-min` on average, so N / session
   connect (and as many disconnect) per second.
2. Simulated (discrete events, heapq). A sample of min(N, `--sample`) users in `--partitions`
   queue partitions (sizes ~ 1/rank^`--zipf`, as languages or regions are), spread at random over
   the nodes, goes through exactly that model with exponential durations for `--sim-s` simulated
   seconds after a warm-up of `--warmup-s`: joins queue per partition, FIFO pairing within a
   partition only, disconnects re-queue the partner. It counts matches, joins, skips, chats,
   connects per partition and per 1-s bin, and which relayed messages cross nodes (the pub/sub
   messages). Counts are scaled by N / sample. It runs in seconds whatever N is.

Costs turn counts into load: per match (everything a churn cycle did in the benchmark: join or
re-queue, proposal, acks, confirmation, skip/end, and the acks of every event, less the pings
that fell in the window), per ping (the idle benchmark), per chat or signal relayed (the chat
benchmark less the plain churn), per connection (guest token, upgrade, hello), per publish. Node
CPU is in µs per event on one Python process (one node = one process = at most one core); Redis
CPU is µs per event on Redis's single main thread. Then:

- nodes = max(node CPU cores x headroom, N / `--max-conns-per-node`), rounded up;
- each partition's Redis CPU (Redis CPU split by its share of the users); a partition is one
  hash tag, so one slot, so one shard, and cannot spread over shards: one above a shard's
  budget (1 / headroom of a core) is flagged and cut into as many equal partitions as it
  needs (language x region); shards = first-fit decreasing of those into shard budgets;
- pub/sub (sharded, SPUBLISH: a node's channel lives on one shard) spread evenly over shards.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

# ---- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """How users behave: the stated assumptions of docs/scaling.md."""

    partitions: int = 40
    zipf: float = 1.0
    lobby_share: float = 0.1  # connected but not matchmaking (browsing, settings, away)
    call_s: float = 60.0
    skip_share: float = 0.5  # of call endings; the rest are `end`
    pause_s: float = 10.0  # the ender's pause before it joins again
    propose_s: float = 0.5  # a queued user's wait once a partner is there (pairing + acks)
    session_min: float = 20.0
    ping_s: float = 15.0
    chat_per_min: float = 2.0  # per user in a call
    signals_per_match: float = 12.0  # WebRTC offer, answer, ICE candidates (peer-to-peer media)
    colocated: float = 0.0  # share of matches routed so that both users share a node


@dataclass(frozen=True)
class Costs:
    """Measured per-event costs (defaults: docs/benchmarks.md, Redis backend, 2-core machine)."""

    # Churn at 200 users, Redis, 1 node (unsaturated), less the window's pings.
    node_us_match: float = 5260.0
    redis_us_match: float = 1960.0
    scripts_match: float = 11.55
    frames_in_match: float = 8.0  # client -> server: commands and acks
    frames_out_match: float = 6.5  # server -> client: replies and events
    # --idle, 1,000 users, a ping every 2 s: one ping out, a pong and an ack in, two `heard`.
    node_us_ping: float = 980.0
    redis_us_ping: float = 324.0
    scripts_ping: float = 2.0
    # --chat-interval 0.5 less plain churn, per chat: `heard` + `relay`, the partner's ack.
    node_us_relay: float = 970.0
    redis_us_relay: float = 394.0
    scripts_relay: float = 3.0
    # Connecting (guest token, upgrade, hello: 2 scripts) measured, plus a `detach` at close
    # estimated as one script (node 400 µs, Redis 160 µs).
    node_us_connect: float = 2700.0
    redis_us_connect: float = 460.0
    scripts_connect: float = 3.0
    # 2 nodes vs 1 at 200 users: 1.85 publishes per match, half the pairs across nodes.
    remote_per_match: float = 3.7  # events to the partner per match (pub/sub if elsewhere)
    node_us_publish: float = 730.0  # sender's PUBLISH + receiver's decode and delivery
    redis_us_publish: float = 10.0  # SPUBLISH, 300 B, one subscriber (bench/redis_costs.py)
    kb_per_conn_node: float = 9.8
    kb_per_user_redis: float = 2.0


@dataclass(frozen=True)
class Budget:
    headroom: float = 2.0  # plan for 1/headroom of every core
    max_conns_per_node: int = 50_000
    sample: int = 10_000
    sim_s: float = 600.0
    warmup_s: float = 300.0
    seed: int = 1


# ---- analytic rates -----------------------------------------------------------------------


@dataclass
class Rates:
    """Events per second across the whole service, and where they go."""

    matches: float = 0.0
    joins: float = 0.0  # `join` commands (first join of a session, and after an `end`)
    skips: float = 0.0
    pings: float = 0.0
    chats: float = 0.0
    signals: float = 0.0
    connects: float = 0.0
    remote_matches: float = 0.0  # matches whose two users are on different nodes (simulated)
    remote_relays: float = 0.0  # chats and signals between users on different nodes (simulated)
    in_call: float = 0.0  # users in a call (not a rate)
    queued: float = 0.0  # users queued or being proposed (not a rate)
    per_partition_matches: list[float] = field(default_factory=list)
    burst: float = 1.0  # p99 / mean of matches per 1-s bin in the sample (simulation only)

    @property
    def relays(self) -> float:
        return self.chats + self.signals


def partition_shares(partitions: int, zipf: float) -> list[float]:
    """Share of users in each partition, largest first: ~ 1 / rank^zipf."""
    weights = [1 / (rank**zipf) for rank in range(1, partitions + 1)]
    return [w / sum(weights) for w in weights]


def cross_node(nodes: int, colocated: float = 0.0) -> float:
    """Probability that the two users of a match are on different nodes: placed at random,
    except the `colocated` share that routing puts on one node."""
    return (1 - colocated) * (nodes - 1) / nodes if nodes > 1 else 0.0


def analytic(n: int, b: Behaviour, nodes: int) -> Rates:
    """Expected rates in the steady state of the model (see the module docstring)."""
    m = n * (1 - b.lobby_share)
    session_s = b.session_min * 60
    # A call ends by a skip or end (rate 1/call_s) or when either side disconnects (2/session).
    ending = 1 / b.call_s + 2 / session_s
    call = 1 / ending
    normal = (1 / b.call_s) / ending
    # After its own `end`: a pause; after its own disconnect, the next user of its slot joins
    # within uniform(0, pause); a skip, the partner's end or disconnect re-queue at once.
    cycle = b.propose_s + call + normal * (1 - b.skip_share) / 2 * b.pause_s
    cycle += (1 / session_s) / ending * b.pause_s / 2
    r = Rates()
    r.matches = m / cycle / 2
    r.in_call = m * call / cycle
    r.queued = m * b.propose_s / cycle
    r.connects = n / session_s
    r.joins = r.matches * normal * (1 - b.skip_share) + r.connects * (1 - b.lobby_share)
    r.skips = r.matches * normal * b.skip_share
    r.pings = n / b.ping_s
    r.chats = r.in_call * b.chat_per_min / 60
    r.signals = r.matches * b.signals_per_match
    r.per_partition_matches = [r.matches * s for s in partition_shares(b.partitions, b.zipf)]
    return r


# ---- simulation -----------------------------------------------------------------------------


@dataclass
class Sim:
    """A discrete-event simulation of a sample of users; see the module docstring."""

    b: Behaviour
    users: int
    nodes: int
    rng: random.Random
    t_end: float
    t_measure: float
    partition: list[int] = field(default_factory=list)
    node: list[int] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)  # bumped at a disconnect: stale events die
    partner: list[int] = field(default_factory=list)
    call: list[int] = field(default_factory=list)  # the serial of u's current call
    started: list[float] = field(default_factory=list)  # when u's current call started
    queues: list[list[int]] = field(default_factory=list)
    queued_at: list[float] = field(default_factory=list)
    events: list[tuple[float, int, str, int, int]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    per_partition: Counter[int] = field(default_factory=Counter)
    bins: Counter[int] = field(default_factory=Counter)
    seq: int = 0

    def setup(self) -> None:
        shares = partition_shares(self.b.partitions, self.b.zipf)
        self.partition = self.rng.choices(range(self.b.partitions), shares, k=self.users)
        self.node = [self.rng.randrange(self.nodes) for _ in range(self.users)]
        self.epoch = [0] * self.users
        self.partner = [-1] * self.users
        self.call = [0] * self.users
        self.started = [0.0] * self.users
        self.queued_at = [-1.0] * self.users
        self.queues = [[] for _ in range(self.b.partitions)]
        for u in range(self.users):
            self.connect(u, 0.0, first=True)

    def at(self, t: float, kind: str, u: int, token: int | None = None) -> None:
        """Schedule an event for u; it dies unless u's epoch (or call serial) is still token."""
        self.seq += 1
        heapq.heappush(
            self.events, (t, self.seq, kind, u, self.epoch[u] if token is None else token)
        )

    def count(self, t: float, what: str, u: int, n: float = 1) -> None:
        if t >= self.t_measure:
            self.counts[what] += n
            if what == "match":
                self.per_partition[self.partition[u]] += 1
                self.bins[int(t)] += 1

    def connect(self, u: int, t: float, first: bool = False) -> None:
        """A (new) connection in slot u: in the lobby for good, or joining after a pause."""
        if not first:
            self.count(t, "connect", u)
        self.at(t + self.rng.expovariate(1 / (self.b.session_min * 60)), "disconnect", u)
        if self.rng.random() >= self.b.lobby_share:
            self.at(t + self.rng.uniform(0, self.b.pause_s), "join", u)

    def join(self, u: int, t: float, command: bool) -> None:
        """Queue u (a `join` command, or a re-queue by the server); pair it if it can."""
        if command:
            self.count(t, "join", u)
        queue = self.queues[self.partition[u]]
        while queue and (queue[0] == u or self.queued_at[queue[0]] < 0):
            queue.pop(0)  # left since it queued
        if not queue:
            queue.append(u)
            self.queued_at[u] = t
            return
        v = queue.pop(0)
        self.queued_at[v] = -1.0
        self.match(u, v, t)

    def match(self, u: int, v: int, t: float) -> None:
        self.partner[u], self.partner[v] = v, u
        self.call[u] = self.call[v] = self.seq
        self.started[u] = self.started[v] = t + self.b.propose_s
        self.count(t, "match", u)
        self.count(t, "signal", u, self.b.signals_per_match)
        if self.crossing(u, v):
            self.count(t, "remote_match", u)
            self.count(t, "remote_relay", u, self.b.signals_per_match)
        call = self.rng.expovariate(1 / self.b.call_s)
        self.at(t + self.b.propose_s + call, "call_end", u, token=self.call[u])

    def over(self, u: int, v: int, t: float) -> None:
        """The call of u and v is over: count the chats of its actual length."""
        self.partner[u] = self.partner[v] = -1
        length = max(0.0, t - self.started[u])
        chats = self.poisson(2 * length * self.b.chat_per_min / 60)
        self.count(t, "chat", u, chats)
        if self.crossing(u, v):
            self.count(t, "remote_relay", u, chats)

    def crossing(self, u: int, v: int) -> bool:
        """Whether u and v are on different nodes (a `colocated` share of pairs never is:
        the call serial, which both share, decides it)."""
        if self.node[u] == self.node[v]:
            return False
        return random.Random(self.call[u]).random() >= self.b.colocated

    def poisson(self, mean: float) -> int:
        """A Poisson draw (Knuth's method for small means, normal approximation above)."""
        if mean > 30:
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def call_end(self, u: int, t: float) -> None:
        v = self.partner[u]
        if v < 0 or self.partner[v] != u:
            return  # the call already ended (a disconnect)
        self.over(u, v, t)
        ender, other = (u, v) if self.rng.random() < 0.5 else (v, u)
        if self.rng.random() < self.b.skip_share:
            self.count(t, "skip", ender)
            self.join(ender, t, command=False)
        else:
            self.count(t, "end", ender)
            self.at(t + self.rng.expovariate(1 / self.b.pause_s), "join", ender)
        self.join(other, t, command=False)

    def disconnect(self, u: int, t: float) -> None:
        """u's connection ends; its partner is re-queued; a new user takes the slot."""
        self.count(t, "disconnect", u)
        v = self.partner[u]
        self.epoch[u] += 1
        self.queued_at[u] = -1.0
        self.partner[u] = -1
        if v >= 0 and self.partner[v] == u:
            self.over(u, v, t)
            self.join(v, t, command=False)
        self.connect(u, t)

    def run(self) -> None:
        self.setup()
        handlers = {"join": self._on_join, "call_end": self.call_end, "disconnect": self.disconnect}
        while self.events:
            t, _, kind, u, token = heapq.heappop(self.events)
            if t >= self.t_end:
                break
            if token == (self.call[u] if kind == "call_end" else self.epoch[u]):
                handlers[kind](u, t)

    def _on_join(self, u: int, t: float) -> None:
        if self.partner[u] < 0 and self.queued_at[u] < 0:
            self.join(u, t, command=True)


def simulate(n: int, b: Behaviour, budget: Budget, nodes: int) -> Rates:
    """Run the simulation on a sample; return its rates scaled to n users."""
    sample = min(n, budget.sample)
    sim = Sim(
        b,
        sample,
        nodes,
        random.Random(budget.seed),
        t_end=budget.warmup_s + budget.sim_s,
        t_measure=budget.warmup_s,
    )
    sim.run()
    scale = n / sample / budget.sim_s
    c = sim.counts
    r = Rates()
    r.matches = c["match"] * scale
    r.joins = c["join"] * scale
    r.skips = c["skip"] * scale
    r.connects = c["connect"] * scale
    r.chats = c["chat"] * scale
    r.signals = c["signal"] * scale
    r.pings = n / b.ping_s
    r.per_partition_matches = [sim.per_partition[p] * scale for p in range(b.partitions)]
    r.remote_matches = c["remote_match"] * scale
    r.remote_relays = c["remote_relay"] * scale
    per_bin = sorted(sim.bins.get(s, 0) for s in range(int(budget.warmup_s), int(sim.t_end)))
    mean = sum(per_bin) / len(per_bin) if per_bin else 0
    r.burst = per_bin[int(0.99 * (len(per_bin) - 1))] / mean if mean else 1.0
    return r


# ---- load and plan --------------------------------------------------------------------------


@dataclass
class Load:
    """What the rates cost, and the resulting plan."""

    scripts: float
    publishes: float
    frames_in: float
    frames_out: float
    node_by: dict[str, float]  # node cores by what they are spent on
    redis_by: dict[str, float]  # Redis cores by what they are spent on
    redis_cores_partition: list[float]
    nodes: int
    shards: int
    pieces: int  # partitions once each one above a shard's budget is split
    oversized: list[int]
    node_mem_gb: float
    redis_mem_gb: float

    @property
    def node_cores(self) -> float:
        return sum(self.node_by.values())

    @property
    def redis_cores_pubsub(self) -> float:
        return self.redis_by["pub/sub"]


def publishes(r: Rates, c: Costs, nodes: int, simulated: bool, colocated: float) -> float:
    """Pub/sub messages/s: every event or relayed message for a user on another node."""
    if simulated:
        return r.remote_matches * c.remote_per_match + r.remote_relays
    return cross_node(nodes, colocated) * (r.matches * c.remote_per_match + r.relays)


def first_fit(loads: Iterable[float], capacity: float) -> int:
    """Shards needed to hold the partitions' loads, largest first (one partition per slot)."""
    bins: list[float] = []
    for load in sorted(loads, reverse=True):
        for i, used in enumerate(bins):
            if used + load <= capacity:
                bins[i] += load
                break
        else:
            bins.append(load)
    return len(bins)


def split(loads: list[float], capacity: float) -> list[float]:
    """Each partition above `capacity` cut into equal pieces that fit (language x region)."""
    out: list[float] = []
    for load in loads:
        pieces = max(1, math.ceil(load / capacity))
        out += [load / pieces] * pieces
    return out


def cores_by_source(r: Rates, c: Costs, pub: float, node: bool) -> dict[str, float]:
    """Node (node=True) or Redis CPU cores per kind of event."""
    kind = "node" if node else "redis"
    cost = {k: getattr(c, f"{kind}_us_{k}") for k in ("match", "ping", "relay", "connect")}
    return {
        "matches": r.matches * cost["match"] / 1e6,
        "pings": r.pings * cost["ping"] / 1e6,
        "relays": r.relays * cost["relay"] / 1e6,
        "connects": r.connects * cost["connect"] / 1e6,
        "pub/sub": pub * getattr(c, f"{kind}_us_publish") / 1e6,
    }


def load(n: int, r: Rates, b: Behaviour, c: Costs, budget: Budget, nodes: int, sim: bool) -> Load:
    """Cores, nodes and shards for rates r (per-event costs c, headroom from budget)."""
    pub = publishes(r, c, nodes, sim, b.colocated)
    node_by = cores_by_source(r, c, pub, node=True)
    redis_by = cores_by_source(r, c, pub, node=False)
    partition_cores = sum(v for k, v in redis_by.items() if k != "pub/sub")
    total_matches = sum(r.per_partition_matches) or 1.0
    per_partition = [partition_cores * m / total_matches for m in r.per_partition_matches]
    capacity = 1 / budget.headroom
    pieces = split(per_partition, capacity)
    shards = max(
        first_fit(pieces, capacity),
        math.ceil((partition_cores + redis_by["pub/sub"]) / capacity),
    )
    scripts = (
        r.matches * c.scripts_match
        + r.pings * c.scripts_ping
        + r.relays * c.scripts_relay
        + r.connects * c.scripts_connect
    )
    node_cores = sum(node_by.values())
    return Load(
        scripts=scripts,
        publishes=pub,
        frames_in=r.matches * c.frames_in_match + 2 * r.pings + 2 * r.relays,
        frames_out=r.matches * c.frames_out_match + r.pings + r.relays,
        node_by=node_by,
        redis_by=redis_by,
        redis_cores_partition=per_partition,
        nodes=max(
            math.ceil(node_cores * budget.headroom), math.ceil(n / budget.max_conns_per_node)
        ),
        shards=shards,
        pieces=len(pieces),
        oversized=[i for i, cores in enumerate(per_partition) if cores > capacity],
        node_mem_gb=n * c.kb_per_conn_node / 1024**2,
        redis_mem_gb=n * c.kb_per_user_redis / 1024**2,
    )


def plan_nodes(n: int, b: Behaviour, c: Costs, budget: Budget) -> int:
    """Nodes for n users: iterate, since pub/sub (and so node CPU) grows with the node count."""
    nodes = 1
    for _ in range(20):
        needed = load(n, analytic(n, b, nodes), b, c, budget, nodes, sim=False).nodes
        if needed == nodes:
            break
        nodes = needed
    return nodes


# ---- output ---------------------------------------------------------------------------------


def fmt(x: float) -> str:
    """A rate or count with thousands separators; small values keep a decimal."""
    return f"{x:,.1f}" if abs(x) < 100 else f"{x:,.0f}"


def report(n: int, b: Behaviour, c: Costs, budget: Budget) -> list[str]:
    """The lines for one user count: analytic and simulated rates side by side, then the plan."""
    nodes = plan_nodes(n, b, c, budget)
    exp = analytic(n, b, nodes)
    sim = simulate(n, b, budget, nodes)
    le, ls = load(n, exp, b, c, budget, nodes, False), load(n, sim, b, c, budget, nodes, True)
    rows = [
        ("matches/s", exp.matches, sim.matches),
        ("join commands/s", exp.joins, sim.joins),
        ("skips/s", exp.skips, sim.skips),
        ("connects/s (= disconnects/s)", exp.connects, sim.connects),
        ("pings/s", exp.pings, sim.pings),
        ("chats + signals relayed/s", exp.relays, sim.relays),
        ("WebSocket frames in/s (client->server)", le.frames_in, ls.frames_in),
        ("WebSocket frames out/s (server->client)", le.frames_out, ls.frames_out),
        ("Redis script calls/s", le.scripts, ls.scripts),
        ("pub/sub messages/s", le.publishes, ls.publishes),
        ("node CPU, cores", le.node_cores, ls.node_cores),
        ("Redis CPU, cores (scripts)", sum(le.redis_cores_partition),
         sum(ls.redis_cores_partition)),
        ("Redis CPU, cores (pub/sub)", le.redis_cores_pubsub, ls.redis_cores_pubsub),
        ("largest partition's Redis CPU, cores", max(le.redis_cores_partition),
         max(ls.redis_cores_partition)),
    ]  # fmt: skip
    sample = min(n, budget.sample)
    lines = [
        f"== {n:,} users: {exp.in_call:,.0f} in a call, {exp.queued:,.0f} queued or proposed, "
        f"{n * b.lobby_share:,.0f} in the lobby; {b.partitions} partitions, {nodes} nodes "
        f"(simulated: {sample:,} users for {budget.sim_s:.0f} s, x{n / sample:,.0f})",
        f"{'':42} {'analytic':>12} {'simulated':>12} {'diff':>6}",
    ]
    for name, a, s in rows:
        diff = f"{(s - a) / a * 100:+.1f}%" if a else "-"
        lines.append(f"{name:42} {fmt(a):>12} {fmt(s):>12} {diff:>6}")
    per_user_us = sum(ls.redis_cores_partition) * 1e6 / n
    fits = 1e6 / budget.headroom / per_user_us
    skips_h = exp.skips * 3600 / (n * (1 - b.lobby_share))
    lines.append(
        f"per user: {per_user_us:.1f} µs/s of Redis CPU, so one partition fits one shard up to "
        f"{fits:,.0f} users; {skips_h:.0f} skips per matchmaking user per hour"
    )
    lines += plan_lines(ls, budget, sim.burst)
    return lines


def _shares(by: dict[str, float]) -> str:
    total = sum(by.values()) or 1.0
    return ", ".join(f"{k} {v / total:.0%}" for k, v in by.items())


def plan_lines(ld: Load, budget: Budget, burst: float) -> list[str]:
    """The plan from the simulated load."""
    capacity = 1 / budget.headroom
    out = [
        f"node CPU by source: {_shares(ld.node_by)}",
        f"Redis CPU by source: {_shares(ld.redis_by)}",
        f"plan (headroom x{budget.headroom:g}: {capacity:.0%} of a core per node process and per "
        f"Redis shard): {ld.nodes} nodes, {ld.shards} Redis shards (primaries); "
        f"node memory {ld.node_mem_gb:.1f} GB in all, Redis memory {ld.redis_mem_gb:.1f} GB",
        f"matches per 1-s bin in the sample: p99 / mean = {burst:.2f}",
    ]
    if ld.oversized:
        worst = max(ld.redis_cores_partition)
        out.append(
            f"!! {len(ld.oversized)} partition(s) above one shard's budget (largest "
            f"{worst:.2f} cores > {capacity:.2f}): split into {ld.pieces} partitions "
            "(language x region), as the shard count assumes"
        )
    return out


def _add_flags(ap: argparse.ArgumentParser, cls: type, title: str) -> None:
    group = ap.add_argument_group(title)
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        group.add_argument(flag, type=type(f.default), default=f.default, help=f"({f.default})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    _add_flags(ap, Behaviour, "behaviour (assumptions)")
    _add_flags(ap, Costs, "costs (measured)")
    _add_flags(ap, Budget, "budget and simulation")
    args = ap.parse_args(argv)
    pick = vars(args)
    b = Behaviour(**{f.name: pick[f.name] for f in fields(Behaviour)})
    c = Costs(**{f.name: pick[f.name] for f in fields(Costs)})
    budget = Budget(**{f.name: pick[f.name] for f in fields(Budget)})
    for n in args.users:
        print("\n".join(report(n, b, c, budget)), end="\n\n")


if __name__ == "__main__":
    main()
