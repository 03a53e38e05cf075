"""protocol.md §4's invariants, checked on the event log of a `pairline bench` run (log.py).

Only what the clients were told counts. A user's records are in the order it saw them, and the
protocol orders each user's stream: a command's `reply` follows every event decided for the user
before the command ran, and precedes the events the command caused. So a user's own log is
enough to see its own violations; a match's two sides are joined on match_id.

- **split_brain**: a call confirmed to one side only, to more than two users, or to a user it
  was never proposed to. A side counts as told by `match_confirmed`, or by a fresh session's
  welcome whose state is `in_call` for it.
- **double_match**: a user proposed (`matched`) or confirmed in a match while still in another
  call, or while another proposal of its own was still open. A call is over with `partner_left`
  for it, or with the user's own skip/end/block naming it: from the moment that is sent, since
  the server may end the call and pair the user (on someone else's `join`) before the command's
  `reply` arrives; should the command be refused (`error`), it changed nothing, and whatever
  the user was matched in meanwhile counts. A proposal closes with its `match_confirmed` or
  `match_cancelled` (or a `partner_left` for it: its confirmation was lost, a split brain).
  A resume into the same session continues the user's stream (replay, then live), gap-free by
  protocol.md, so an event lost there shows; a resume into a fresh session replaces the stream
  with the welcome's state snapshot (`synced`): its call and proposal.
- **alone_in_call**: a confirmed call that one side left, or was told its partner left (its
  reply to skip/end/block, or its `partner_left`), while the other side was neither told
  `partner_left` for it, nor left it itself, nor resumed into a fresh session without it, by
  the end of the run. A side that was away at the end (dropped and not resumed, or `lost`) is
  exempt, and so is a call whose only ending is such a side's. Also a `partner_left` with
  `requeued: false` to a user that was not cooling down (no skip reply with `cooldown_ms`
  covering that moment): the user was not re-queued.
- **blocked_pair_met**: once a user's `block` is answered, a `matched` (or a fresh session's
  state) pairing it with the user it blocked (its partner in the blocked call).
- **pairing**: a match proposed to more than two users, or two partners that do not name each
  other in their `matched`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from pairline.bench.log import ENDING, Record, by_user

ENDING_SENT = frozenset(f"{command}_sent" for command in ENDING)

# How a call ended for one side: a command ("skip", "end", "block"), "told" (partner_left),
# "state" (a fresh session's state without it), or "gone" (away at the end of the run).
EXEMPT = "gone"


@dataclass
class Findings:
    """Each invariant's violations, one line each."""

    split_brain: list[str] = field(default_factory=list)
    double_match: list[str] = field(default_factory=list)
    alone_in_call: list[str] = field(default_factory=list)
    blocked_pair_met: list[str] = field(default_factory=list)
    pairing: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}

    def examples(self, most: int = 3) -> dict[str, list[str]]:
        """Up to `most` lines of each invariant that was broken."""
        return {name: getattr(self, name)[:most] for name, n in self.counts().items() if n}

    @property
    def total(self) -> int:
        return sum(self.counts().values())


@dataclass
class _Ledger:
    """What the log says about every match, joined over its two sides."""

    proposed: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    confirmed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    ended: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    not_requeued: list[str] = field(default_factory=list)

    def add_user(self, user: str, records: list[Record]) -> None:
        open_calls: set[str] = set()
        away: set[str] = set()  # open when the connection broke, until the user resumes
        cooling_until = 0.0
        for t, _, kind, match_id, detail in records:
            if kind == "matched":
                self.proposed[match_id][user] = detail
            elif kind == "confirmed":
                self.confirmed[match_id].add(user)
                open_calls.add(match_id)
            elif kind == "left":
                self._end(match_id, user, "told", open_calls)
                if not detail[1] and t > cooling_until:
                    self.not_requeued.append(
                        f"{user} told partner_left for {match_id} ({detail[0]}) with "
                        "requeued:false, not cooling down"
                    )
            elif kind == "reply" and detail[0] in ENDING:
                self._end(match_id, user, detail[0], open_calls)
                if detail[0] == "skip" and detail[2]:
                    cooling_until = t + detail[2] / 1000
            elif kind in ("dropped", "lost"):  # away until it resumes (lost: for good)
                away |= open_calls
                open_calls.clear()
            elif kind == "resumed":
                open_calls |= away
                away.clear()
            elif kind == "synced" and detail[2]:  # a fresh session: its state is the truth
                self._resync(user, match_id, detail, open_calls)
        for call in list(away):  # never came back before the run ended
            self._end(call, user, EXEMPT, away)

    def _resync(self, user: str, match_id: str, detail: Any, open_calls: set[str]) -> None:
        status, partner, _ = detail
        for call in list(open_calls):
            if call != match_id:  # over for this side, by the server's word: the other is told
                self._end(call, user, "state", open_calls)
        if status in ("in_call", "proposed") and match_id:
            self.proposed[match_id].setdefault(user, partner)  # its `matched` says more
            if status == "in_call":
                self.confirmed[match_id].add(user)
                open_calls.add(match_id)

    def _end(self, match_id: str, user: str, how: str, open_calls: set[str]) -> None:
        if match_id in open_calls:
            open_calls.discard(match_id)
            self.ended[match_id].setdefault(user, how)


def check(log: Iterable[Record]) -> Findings:
    """Every invariant of the module docstring, over a whole run's log."""
    users = by_user(log)
    ledger = _Ledger()
    for user, records in users.items():
        ledger.add_user(user, records)
    findings = Findings()
    for user, records in users.items():
        findings.double_match += _double_matches(user, records)
        findings.blocked_pair_met += _blocked_pairs_met(user, records, ledger)
    findings.split_brain = _split_brains(ledger)
    findings.alone_in_call = _alone(ledger) + ledger.not_requeued
    findings.pairing = _pairing(ledger)
    return findings


def _split_brains(ledger: _Ledger) -> list[str]:
    found = []
    for match_id, told in ledger.confirmed.items():
        unproposed = told - ledger.proposed.get(match_id, {}).keys()
        if len(told) != 2:
            found.append(f"{match_id} confirmed to {sorted(told)} only")
        elif unproposed:
            found.append(f"{match_id} confirmed to {sorted(unproposed)}, never proposed it")
    return found


def _pairing(ledger: _Ledger) -> list[str]:
    found = []
    for match_id, sides in ledger.proposed.items():
        if len(sides) > 2:
            found.append(f"{match_id} proposed to {sorted(sides)}")
        elif len(sides) == 2 and any(sides.get(p) != u for u, p in sides.items()):
            found.append(f"{match_id}: partners named {sides}")
    return found


def _alone(ledger: _Ledger) -> list[str]:
    found = []
    for match_id, sides in ledger.confirmed.items():
        ended = ledger.ended.get(match_id, {})
        if len(sides) != 2 or all(how == EXEMPT for how in ended.values()):
            continue  # a split brain, or still on for both (or only a broken side left)
        for user in sorted(sides - ended.keys()):
            other = next(iter(sides - {user}))
            how = ended.get(other, "?")
            found.append(f"{user} alone in {match_id}: {other} left it ({how}), {user} not told")
    return found


def _double_matches(user: str, records: list[Record]) -> list[str]:
    timeline = _Timeline(user)
    for _, _, kind, match_id, detail in records:
        timeline.step(kind, match_id, detail)
    return timeline.found


class _Timeline:
    """One user's call and proposal as its own log tells them (double_match above)."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.call: str | None = None
        self.proposal: str | None = None
        self.leaving: str | None = None  # what its skip/end/block was sent for, unanswered
        self.meanwhile: list[str] = []  # matches it entered while leaving: fine unless refused
        self.found: list[str] = []

    def step(self, kind: str, match_id: str, detail: Any) -> None:
        if kind in ENDING_SENT and match_id and match_id in (self.call, self.proposal):
            # (Its proposal too: a client that knows of the call from a welcome's state.)
            self.leaving, self.meanwhile = match_id, []
        elif kind == "matched" and match_id != self.call:
            self._matched(match_id)
        elif kind == "confirmed":
            if self.call not in (None, match_id, self.leaving):
                self.found.append(f"{self.user} confirmed in {match_id} while in {self.call}")
            self.call, self.leaving = match_id, None
            self.proposal = None if self.proposal == match_id else self.proposal
        elif kind == "cancelled" and self.proposal == match_id:
            self.proposal = None
        elif kind == "left" or (kind == "reply" and detail[0] in ENDING):
            self._over(match_id)
        elif kind == "error" and match_id and match_id == self.leaving:
            # Refused: it changed nothing, so what it left was on all along.
            self.found += [
                f"{self.user} matched in {m} while in {match_id}" for m in self.meanwhile
            ]
            self.leaving = None
        elif kind == "synced" and detail[2]:  # a fresh session: its state is the truth
            self.call = match_id if detail[0] == "in_call" else None
            self.proposal = match_id if detail[0] == "proposed" else None
            self.leaving = None

    def _matched(self, match_id: str) -> None:
        busy = self.call if self.call not in (None, self.leaving) else None
        pending = self.proposal if self.proposal not in (None, match_id, self.leaving) else None
        if busy or pending:
            self.found.append(f"{self.user} matched in {match_id} while in {busy or pending}")
        elif self.leaving is not None:
            self.meanwhile.append(match_id)
        self.proposal = match_id

    def _over(self, match_id: str) -> None:
        """The match is over for the user (partner_left, or the reply to its own ending)."""
        self.call = None if self.call == match_id else self.call
        self.proposal = None if self.proposal == match_id else self.proposal
        self.leaving = None if self.leaving == match_id else self.leaving


def _blocked_pairs_met(user: str, records: list[Record], ledger: _Ledger) -> list[str]:
    found = []
    blocked: set[str] = set()
    for _, _, kind, match_id, detail in records:
        partner = None
        if kind == "reply" and detail[0] == "block":
            blocked_user = ledger.proposed.get(match_id, {}).get(user)
            if blocked_user:
                blocked.add(blocked_user)
        elif kind == "matched":
            partner = detail
        elif kind == "synced" and detail[2]:
            partner = detail[1]
        if partner is not None and partner in blocked:
            found.append(f"{user} matched with {partner} in {match_id} after blocking them")
    return found
