"""Skip cool-down arithmetic (protocol.md §5, §6).

Reaching `skip_limit` skips within the window starts a cool-down; each time the limit is reached
again the next, longer one applies (the last repeats). A call that lasted the good-call length
forgives everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pairline.core.rules import Rules


@dataclass(slots=True)
class SkipRecord:
    skips: list[int] = field(default_factory=list)  # times of recent skips, oldest first
    level: int = 0  # cool-downs served so far
    cooldown_until: int = 0

    def remaining_ms(self, now: int) -> int:
        """How long this user still cools down (0: not cooling down)."""
        return max(0, self.cooldown_until - now)

    def record_skip(self, now: int, rules: Rules) -> int:
        """Count a skip at `now`; return the cool-down it starts in ms (0 for none)."""
        if rules.skip_limit <= 0:
            return 0
        horizon = now - rules.skip_window_ms
        self.skips = [t for t in self.skips if t > horizon]
        self.skips.append(now)
        if len(self.skips) < rules.skip_limit:
            return 0
        duration = rules.cooldowns_ms[min(self.level, len(rules.cooldowns_ms) - 1)]
        self.level += 1
        self.cooldown_until = now + duration
        self.skips.clear()
        return duration

    def forgive(self) -> None:
        """A good call resets the count and the escalation."""
        self.skips.clear()
        self.level = 0

    def is_blank(self, now: int, rules: Rules) -> bool:
        """Nothing worth remembering: no cool-down, no recent skip, no escalation."""
        recent = any(t > now - rules.skip_window_ms for t in self.skips)
        return not recent and self.level == 0 and self.cooldown_until <= now
