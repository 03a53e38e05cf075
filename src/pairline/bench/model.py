"""The churn model of `pairline bench`: what each simulated user does, and when.

A user joins; once `match_confirmed` arrives it "talks" for a uniform `talk_min`..`talk_max` s,
then hangs up in one of four ways (one draw each time):

- with probability `drop_p` it **drops** its connection (no close handshake) and, after a pause
  of 0.05-0.5 s, reconnects with `hello{resume, last_seq}` to the same node; the call goes on
  (its partner sees `partner_reconnecting`, then `partner_resumed`) and a new talk begins;
- otherwise, with probability `skip_p` it sends `skip` (the server re-queues both);
- otherwise, with probability `block_p` it sends `block` (as `end`, and the pair may never meet
  again); the share of `end` is what is left: 1 - skip_p - block_p;
- otherwise `end`.

After its own `end` or `block` (and any time the server leaves it idle) it joins again after a
pause of `rejoin_min`..`rejoin_max` s. After `partner_left` the server has re-queued it: it waits.

An `ignore_matched` share of the users (a trait drawn once per user) never ack `matched`: their
partner gets `match_cancelled{ack_timeout, requeued:true}` after the ack timeout, they get
`match_cancelled{ack_timeout, requeued:false}`, ack everything then, and join again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

HangUp = Literal["drop", "skip", "block", "end"]


@dataclass(frozen=True)
class Churn:
    """The knobs of the model (the `pairline bench` flags of the same names)."""

    skip_p: float = 0.5
    block_p: float = 0.02
    drop_p: float = 0.05
    ignore_matched: float = 0.01
    talk_min: float = 0.5
    talk_max: float = 2.0
    rejoin_min: float = 0.1
    rejoin_max: float = 0.5
    reconnect_min: float = 0.05
    reconnect_max: float = 0.5

    def problems(self) -> list[str]:
        """What makes these knobs unusable (empty when they are fine)."""
        found = [
            f"{name} must be within 0..1"
            for name in ("skip_p", "block_p", "drop_p", "ignore_matched")
            if not 0.0 <= getattr(self, name) <= 1.0
        ]
        if self.skip_p + self.block_p > 1.0:
            found.append("skip_p + block_p must be at most 1 (the rest ends with `end`)")
        for low in ("talk", "rejoin", "reconnect"):
            lo, hi = getattr(self, f"{low}_min"), getattr(self, f"{low}_max")
            if not 0.0 <= lo <= hi:
                found.append(f"need 0 <= {low}_min <= {low}_max")
        return found

    def talk(self, rng: random.Random) -> float:
        """How long a call lasts before this user hangs up (if the partner does not first)."""
        return rng.uniform(self.talk_min, self.talk_max)

    def hang_up(self, rng: random.Random) -> HangUp:
        """How this user ends its turn of talking."""
        if rng.random() < self.drop_p:
            return "drop"
        roll = rng.random()
        if roll < self.skip_p:
            return "skip"
        return "block" if roll < self.skip_p + self.block_p else "end"

    def rejoin_pause(self, rng: random.Random) -> float:
        return rng.uniform(self.rejoin_min, self.rejoin_max)

    def reconnect_pause(self, rng: random.Random) -> float:
        return rng.uniform(self.reconnect_min, self.reconnect_max)

    def ignores_matched(self, rng: random.Random) -> bool:
        """Drawn once per user: whether it is one of those that never ack `matched`."""
        return rng.random() < self.ignore_matched


# The model of bench/matchmaking.py before `pairline bench`: skip or end, half each, nothing else.
CLASSIC = Churn(block_p=0.0, drop_p=0.0, ignore_matched=0.0)
