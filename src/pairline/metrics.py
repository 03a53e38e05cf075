"""What a node exports at `/metrics` (Prometheus text format).

Latencies are measured where the user is: on the node holding its connection, from what that
node pushes and receives. Counters of transitions (proposals, calls ended) are counted by the
node that ran the transition, once per cluster: sum them over nodes. `pairline_users` comes from
the shared store (every node reports the same cluster-wide figure: take one, not the sum);
`pairline_connected_users` is this node's own.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# 1 ms … 10 s: a match takes milliseconds when all is well, seconds when something is not.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Waiting in the queue can last minutes on a quiet service.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

WAIT_TO_MATCHED = Histogram(
    "pairline_wait_to_matched_seconds",
    "From entering the queue (join, or re-queued) to `matched`.",
    buckets=WAIT_BUCKETS,
)
MATCHED_TO_CONFIRMED = Histogram(
    "pairline_matched_to_confirmed_seconds",
    "From `matched` to `match_confirmed`, per user (both acks and media preparation).",
    buckets=LATENCY_BUCKETS,
)
ACK_ROUND_TRIP = Histogram(
    "pairline_ack_round_trip_seconds",
    "From pushing `matched` to receiving the user's ack of it.",
    buckets=LATENCY_BUCKETS,
)
SKIP_TO_PARTNER_NOTIFIED = Histogram(
    "pairline_skip_to_partner_notified_seconds",
    "From receiving `skip` to handing the partner's `partner_left` to its connection.",
    buckets=LATENCY_BUCKETS,
)
CONFIRM_TO_MEDIA = Histogram(
    "pairline_confirm_to_media_seconds",
    "From `match_confirmed` to the user's media in the LiveKit room (participant_joined).",
    buckets=LATENCY_BUCKETS,
)

PROPOSALS = Counter(
    "pairline_proposals",
    "Proposed matches by outcome: confirmed, or rolled back and why.",
    ["outcome", "reason"],
)
PARTNER_LEFT = Counter("pairline_partner_left", "Calls ended, by the partner's reason.", ["reason"])
STALE_REMOVALS = Counter(
    "pairline_stale_removals", "Users removed for an unresponsive connection (closed with 4408)."
)
RESUMES = Counter(
    "pairline_resumes",
    "Resume attempts: ok (the session went on) or expired (a fresh session instead).",
    ["result"],
)
ALONE_IN_ROOM = Counter(
    "pairline_alone_in_room", "Calls ended because one user sat alone in the LiveKit room."
)
ERRORS = Counter("pairline_errors", "`error` messages and error answers, by code.", ["code"])
RATE_LIMITED = Counter(
    "pairline_rate_limited",
    "Refusals by a limit: messages (closed 4429), connections, relay, guest_tokens, store "
    "(a join shed while the store is overloaded).",
    ["limit"],
)

USERS = Gauge("pairline_users", "Users with a session, by state (cluster-wide).", ["state"])
CONNECTED = Gauge(
    "pairline_connected_users", "Users connected to this node, by transport.", ["transport"]
)

# Label children looked up once: `labels()` costs more than the increment itself.
CONFIRMED = PROPOSALS.labels("confirmed", "")
RESUMED, RESUME_EXPIRED = RESUMES.labels("ok"), RESUMES.labels("expired")
