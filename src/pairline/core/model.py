"""The lifecycles of users, connections and matches, and the records that hold them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

TICKS_PER_MS = 1000


def ticket_ms(ticket: int) -> int:
    """When a queue ticket was issued, in epoch ms."""
    return ticket // TICKS_PER_MS


class UserStatus(enum.Enum):
    """Where a user is in protocol.md §4's lifecycle."""

    IDLE = "idle"
    QUEUED = "queued"
    PROPOSED = "proposed"
    IN_CALL = "in_call"


class Presence(enum.Enum):
    """Whether the user's session has a live connection."""

    ONLINE = "online"
    AWAY = "away"  # connection dropped; the resume window is running


class MatchPhase(enum.Enum):
    """The two-phase match: reserved and health-checked, proposed, confirmed, over."""

    CHECKING = "checking"  # both reserved; pinging whoever was not heard from lately
    PROPOSED = "proposed"  # `matched` sent to both; waiting for both acks
    CONFIRMED = "confirmed"  # the call runs
    ENDED = "ended"


class DeadlineKind(enum.Enum):
    HEALTH_CHECK = "health_check"  # key: match id — pinged users must have answered by now
    ACK = "ack"  # key: match id — both must have acked `matched` by now
    RESUME = "resume"  # key: user id — the dropped connection's resume window ends
    INTEREST = "interest"  # key: user id — interest wait over; pair with anyone
    MEDIA_CHECK = "media_check"  # key: match id — the partner probed after `media_lost`


@dataclass(slots=True)
class Preferences:
    interests: frozenset[str] = frozenset()
    lang: str | None = None


@dataclass(slots=True)
class User:
    user_id: str
    display_name: str
    session_id: str
    node_id: str
    presence: Presence
    last_heard: int
    status: UserStatus = UserStatus.IDLE
    prefs: Preferences = field(default_factory=Preferences)
    # Place in the queue: kept through a failed proposal. A strictly increasing ticket of
    # TICKS_PER_MS per millisecond, so joins within one millisecond keep their arrival order.
    ticket: int | None = None
    match_id: str | None = None  # the current match (checking, proposed or confirmed)
    last_match_id: str | None = None  # the most recent match, for late skip/end
    last_partner_id: str | None = None  # its partner, for a late block or report
    away_since: int | None = None
    order: int = 0  # events produced for this user so far (see effects.Send.order)


@dataclass(slots=True)
class Match:
    match_id: str
    users: tuple[str, str]  # (longer waiting → offerer, other → answerer)
    phase: MatchPhase
    created_at: int
    common_interests: tuple[str, ...] = ()
    tickets: dict[str, int] = field(default_factory=dict)  # each side's place to return to
    probing: dict[str, int] = field(default_factory=dict)  # user → when its probe was sent
    acked: set[str] = field(default_factory=set)
    proposed_at: int | None = None
    confirmed_at: int | None = None
    ended_at: int | None = None
    end_reason: str | None = None
    ended_by: str | None = None
    media_changed_at: int | None = None  # someone last joined or left its media room (memory store)

    def partner_of(self, user_id: str) -> str:
        first, second = self.users
        return second if user_id == first else first
