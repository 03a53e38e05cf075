"""Every Redis key of the Redis backend, named in one place.

One queue partition's keys all start with the partition's prefix, `{prefix}:{{{partition}}}:`,
e.g. `pairline:{main}:`. The `{main}` hash tag puts the whole partition in one cluster slot, so
each transition's script touches a single slot.

| key (after the prefix) | type | holds |
|---|---|---|
| `queue` | ZSET | queued user ids; score = queue ticket (ms x 1000, < 2^53: exact as a double) |
| `user:<user id>` | HASH | a user with a session: name, session, node, presence, status, … |
| `match:<match id>` | HASH | a match being checked, proposed or in a call |
| `deadlines` | ZSET | deadline entries; score = due ms, member = `<seq>|<kind>|<key>` |
| `deadline_at` | HASH | `<kind>|<key>` → due ms of the live deadline (other entries are dead) |
| `online` | ZSET | users whose connection is open; score = last heard (for the stale sweep) |
| `blocks:<user id>` | SET | whom the user blocked |
| `recent` | ZSET | pairs whose call ended (the rematch rule); score = when; pruned by the sweep |
| `skips:<user id>` | HASH | the user's skip record: recent skip times, cool-down level and end |
| `skippers` | ZSET | users with a skip record; score = when it is blank (the sweep prunes it) |
| `pairings` | ZSET | confirmed match ids; score = when (the queue's ETA) |
| `bans` | HASH | banned user → until (epoch ms; 0: for good); an ended ban refuses nothing |
| `ban_ends` | ZSET | users in `bans` whose ban has an end; score = that end (pruned by the sweep) |
| `counters` | HASH | match id counter, last ticket, deadline and user sequence numbers |
| `node:<node id>` | SET | users connected through that node (to detach them all if it dies) |
| `media_changed:<match id>` | STRING | when someone last joined or left the call's room (expires) |
| `population` | HASH | users with a session by status (idle, queued, proposed, in_call) |
| `duty:<name>` | STRING | held by the node running a periodic job this period (expires) |
| `handoff:<node id>` | channel | sharded pub/sub: what transitions have for that node's users |

Why scripts build key names themselves: Redis Cluster needs a script's keys declared, but a
transition cannot know in advance which users' and matches' keys it will touch (pairing scans the
queue). Every script therefore gets one declared key, `KEYS[1]` = the partition prefix (hash tag
included), and appends the suffixes below, which the loader hands to every script as the Lua table
`KEY` (`lua_key_table`). All of them hash to the prefix's slot, as Cluster requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Suffix after the partition prefix; those ending in ":" are followed by an id.
SUFFIXES: Final[dict[str, str]] = {
    "queue": "queue",
    "user": "user:",
    "match": "match:",
    "deadlines": "deadlines",
    "deadline_at": "deadline_at",
    "online": "online",
    "blocks": "blocks:",
    "recent": "recent",
    "skips": "skips:",
    "skippers": "skippers",
    "pairings": "pairings",
    "bans": "bans",
    "ban_ends": "ban_ends",
    "counters": "counters",
    "node": "node:",
    "media_changed": "media_changed:",
    "duty": "duty:",
    "population": "population",
    "handoff": "handoff:",  # a channel, not a key: SPUBLISH'd by scripts in the same slot
}


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """The key names of one queue partition."""

    prefix: str = "pairline"
    partition: str = "main"

    def __post_init__(self) -> None:
        if not self.partition or any(c in self.partition for c in "{}"):
            raise ValueError(f"a partition name needs no braces: {self.partition!r}")

    @property
    def base(self) -> str:
        """The partition's prefix, hash tag included: the one key every script declares."""
        return f"{self.prefix}:{{{self.partition}}}:"

    def key(self, name: str, ident: str = "") -> str:
        """The key `name` (a `SUFFIXES` name), followed by `ident` for per-user/match/node keys."""
        suffix = SUFFIXES[name]
        if suffix.endswith(":") != bool(ident):
            raise ValueError(f"key {name!r} {'needs' if suffix.endswith(':') else 'takes no'} id")
        return self.base + suffix + ident

    def scan_pattern(self, name: str) -> str:
        """A SCAN pattern for every key of a per-id kind (`user`, `match`, …)."""
        suffix = SUFFIXES[name]
        if not suffix.endswith(":"):
            raise ValueError(f"key {name!r} takes no id")
        return self.base + suffix + "*"

    def queue(self) -> str:
        return self.key("queue")

    def user(self, user_id: str) -> str:
        return self.key("user", user_id)

    def match(self, match_id: str) -> str:
        return self.key("match", match_id)

    def node(self, node_id: str) -> str:
        return self.key("node", node_id)

    def handoff(self, node_id: str) -> str:
        """The sharded pub/sub channel on which a node hears what transitions have for its
        users (lib.lua's hand-off): in the partition's slot, so a script may SPUBLISH to it."""
        return self.key("handoff", node_id)


def lua_key_table() -> str:
    """`SUFFIXES` as the Lua table `KEY`, which the loader puts before every script."""
    entries = ", ".join(f'{name} = "{suffix}"' for name, suffix in SUFFIXES.items())
    return f"local KEY = {{{entries}}}\n"
