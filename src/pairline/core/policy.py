"""Who may be paired with whom, and how long the queue will take (protocol.md §4)."""

from __future__ import annotations

from collections import deque

from pairline.core.model import Preferences
from pairline.core.rules import Rules


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class Compatibility:
    """Blocks (both ways), the rematch window, language, and interests until the interest wait."""

    __slots__ = ("blocks", "recent", "rules")

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.blocks: dict[str, set[str]] = {}  # blocker → blocked
        self.recent: dict[tuple[str, str], int] = {}  # pair → when their call ended

    def block(self, blocker: str, blocked: str) -> None:
        self.blocks.setdefault(blocker, set()).add(blocked)

    def unblock(self, blocker: str, blocked: str) -> None:
        """Lift `blocker`'s block of `blocked` (a block the other way stays)."""
        mine = self.blocks.get(blocker)
        if mine is not None:
            mine.discard(blocked)
            if not mine:
                del self.blocks[blocker]

    def is_blocked(self, a: str, b: str) -> bool:
        return b in self.blocks.get(a, ()) or a in self.blocks.get(b, ())

    def met(self, a: str, b: str, at: int) -> None:
        if self.rules.rematch_after_ms > 0:
            self.recent[pair_key(a, b)] = at

    def recently_met(self, a: str, b: str, now: int) -> bool:
        ended = self.recent.get(pair_key(a, b))
        return ended is not None and now - ended < self.rules.rematch_after_ms

    def prune(self, now: int) -> None:
        horizon = now - self.rules.rematch_after_ms
        for key in [k for k, at in self.recent.items() if at <= horizon]:
            del self.recent[key]

    def compatible(
        self,
        a: str,
        a_prefs: Preferences,
        a_since: int,
        b: str,
        b_prefs: Preferences,
        b_since: int,
        now: int,
    ) -> bool:
        if a == b or self.is_blocked(a, b) or self.recently_met(a, b, now):
            return False
        if a_prefs.lang and b_prefs.lang and a_prefs.lang != b_prefs.lang:
            return False
        if a_prefs.interests & b_prefs.interests:
            return True
        return not (
            self.wants_shared(a_prefs, a_since, now) or self.wants_shared(b_prefs, b_since, now)
        )

    def wants_shared(self, prefs: Preferences, since: int, now: int) -> bool:
        """Still within its interest wait: only someone sharing an interest will do."""
        return bool(prefs.interests) and now - since < self.rules.interest_wait_ms


class PairingRate:
    """Recent pairings, for the queue's ETA."""

    __slots__ = ("_times", "_window")

    def __init__(self, window_ms: int) -> None:
        self._window = window_ms
        self._times: deque[int] = deque()

    def record(self, at: int) -> None:
        self._times.append(at)

    def eta_ms(self, position: int, now: int) -> int | None:
        """Expected wait for `position`, or None with no pairing in the window to go by."""
        times = self._times
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            return None
        per_ms = len(times) / self._window
        return round(position / per_ms)
