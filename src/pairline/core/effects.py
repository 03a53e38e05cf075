"""What a transition asks the outside world to do, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pairline.core.model import Match


@dataclass(frozen=True, slots=True)
class Send:
    """Push one message (without `seq`; the user's session numbers it) to a user, whose
    connection lives on `node_id`.

    `order` numbers the user's events in the order the store produced them: with many nodes
    they can reach the user's node by different paths, and its session restores this order.
    """

    user_id: str
    node_id: str
    message: dict[str, Any]
    order: int


@dataclass(frozen=True, slots=True)
class Probe:
    """Ping a user now: a health check whose answer the store is waiting for."""

    user_id: str
    node_id: str


@dataclass(frozen=True, slots=True)
class EndSession:
    """The session is over: discard it, closing its connection with `close_code` if one is open."""

    user_id: str
    node_id: str
    session_id: str
    close_code: int | None


@dataclass(frozen=True, slots=True)
class Confirmed:
    """Both acked: the engine attaches media and sends `match_confirmed` to both."""

    match: Match
    nodes: tuple[str, str]  # where each of match.users is connected
    orders: tuple[int, int]  # each user's event order for its `match_confirmed` (see Send)


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A confirmed call is over (for records and media teardown)."""

    match: Match


@dataclass(frozen=True, slots=True)
class MatchFailed:
    """A proposal was rolled back; logged with the users' states."""

    match: Match
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Blocked:
    """`blocker` blocked `blocked` for good (to be recorded)."""

    blocker: str
    blocked: str
    match_id: str


@dataclass(frozen=True, slots=True)
class SkipPenaltyChanged:
    """The user's skip record (`core.cooldown.SkipRecord`) changed: a skip was counted, a
    cool-down started or a good call forgave it. Its whole new value (to be recorded), so that
    cool-downs and their escalation survive a restart (`Store.load_skip_penalties`).

    A transition emits these after all its other effects, one per changed user, in the order the
    users' records first changed."""

    user_id: str
    skips: tuple[int, ...]  # times of the recent skips, oldest first
    level: int  # cool-downs served so far
    cooldown_until: int  # epoch ms; 0 or past: not cooling down


@dataclass(frozen=True, slots=True)
class WakeAt:
    """A deadline was set: the engine's timer must fire no later than this."""

    at: int


Effect = (
    Send
    | Probe
    | EndSession
    | Confirmed
    | CallEnded
    | MatchFailed
    | Blocked
    | SkipPenaltyChanged
    | WakeAt
)
