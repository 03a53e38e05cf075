"""`pairline bench`: its invariant checker on hand-built event logs, and one small real run."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairline.bench.checker import check
from pairline.bench.config import Options
from pairline.bench.loadgen import User, skips_first
from pairline.bench.log import Record, read_events, write_events
from pairline.bench.model import Churn
from pairline.bench.report import confirm_latencies, mass_skip_metrics, percentiles, skip_round


class History:
    """A log written one event at a time, each a millisecond after the last."""

    def __init__(self) -> None:
        self.log: list[Record] = []

    def add(self, user: str, kind: str, match_id: str = "", detail: Any = None) -> History:
        self.log.append((len(self.log) / 1000, user, kind, match_id, detail))
        return self

    def propose(self, match_id: str, a: str, b: str) -> History:
        return self.add(a, "matched", match_id, b).add(b, "matched", match_id, a)

    def confirm(self, match_id: str, *users: str) -> History:
        for user in users:
            self.add(user, "confirmed", match_id, (0.0, 0.0))
        return self

    def call(self, match_id: str, a: str, b: str) -> History:
        return self.propose(match_id, a, b).confirm(match_id, a, b)

    def hang_up(self, match_id: str, by: str, other: str, command: str = "skip") -> History:
        """`by` ends the call with `command`; `other` is told, re-queued."""
        self.add(by, f"{command}_sent", match_id).add(by, "reply", match_id, (command, 0.001, None))
        reason = "skipped" if command == "skip" else "ended"
        return self.add(other, "left", match_id, (reason, True))


def counts(log: list[Record]) -> dict[str, int]:
    return check(log).counts()


def broken(log: list[Record]) -> set[str]:
    return {name for name, n in counts(log).items() if n}


# ---- each invariant, by hand ------------------------------------------------------------------


def test_a_clean_history_passes() -> None:
    h = History().call("m1", "ann", "bob").hang_up("m1", "ann", "bob")
    h.call("m2", "bob", "cat").hang_up("m2", "cat", "bob", "end")
    h.call("m3", "ann", "cat")  # still on at the end of the run: fine
    assert broken(h.log) == set()


def test_a_call_confirmed_to_one_side_only_is_a_split_brain() -> None:
    h = History().propose("m1", "ann", "bob").confirm("m1", "ann")
    found = check(h.log)
    assert found.counts()["split_brain"] == 1
    assert found.split_brain == ["m1 confirmed to ['ann'] only"]


def test_a_call_confirmed_to_a_user_never_proposed_is_a_split_brain() -> None:
    h = History().add("ann", "matched", "m1", "bob").confirm("m1", "ann", "bob")
    assert broken(h.log) == {"split_brain"}


def test_a_new_call_before_the_last_one_ended_is_a_double_match() -> None:
    h = History().call("m1", "ann", "bob").call("m2", "ann", "cat")
    assert broken(h.log) == {"double_match"}
    assert check(h.log).double_match == [
        "ann matched in m2 while in m1",
        "ann confirmed in m2 while in m1",
    ]


def test_a_second_proposal_while_one_is_open_is_a_double_match() -> None:
    h = History().propose("m1", "ann", "bob").propose("m2", "ann", "cat")
    assert broken(h.log) == {"double_match"}


def test_a_lost_confirmation_is_one_split_brain_not_a_double_match_too() -> None:
    # bob's match_confirmed never came, but the server told him his partner left the call.
    h = History().propose("m1", "ann", "bob").confirm("m1", "ann")
    h.hang_up("m1", "ann", "bob", "end").call("m2", "bob", "cat")
    assert check(h.log).counts() == {
        "split_brain": 1,
        "double_match": 0,
        "alone_in_call": 0,
        "blocked_pair_met": 0,
        "pairing": 0,
    }


def test_a_confirmation_known_only_from_a_resumed_state_is_one_split_brain() -> None:
    # bob's match_confirmed never came; after a 1012 his (same) session's state says in_call,
    # so he skips the call and is matched again before the skip's reply.
    h = History().propose("m1", "ann", "bob").confirm("m1", "ann")
    h.add("bob", "dropped", "", 1012).add("bob", "resumed", "", (False, 0.01, 0))
    h.add("bob", "synced", "m1", ("in_call", "ann", False)).add("bob", "skip_sent", "m1")
    h.call("m2", "bob", "cat").add("bob", "reply", "m1", ("skip", 0.001, None))
    h.add("ann", "left", "m1", ("skipped", True))
    assert check(h.log).counts()["split_brain"] == 1
    assert broken(h.log) == {"split_brain"}


def test_matched_before_the_reply_to_the_users_own_skip_is_fine() -> None:
    # The server ends the call when it runs the skip; someone's join may pair the skipper
    # before the skip's reply has gone out.
    h = History().call("m1", "ann", "bob").add("ann", "skip_sent", "m1")
    h.call("m2", "ann", "cat").add("ann", "reply", "m1", ("skip", 0.01, None))
    h.add("bob", "left", "m1", ("skipped", True))
    assert broken(h.log) == set()


def test_matched_meanwhile_a_refused_skip_is_a_double_match() -> None:
    h = History().call("m1", "ann", "bob").add("ann", "skip_sent", "m1")
    h.propose("m2", "ann", "cat").add("ann", "error", "m1", "skip:not_found")
    assert "double_match" in broken(h.log)


def test_a_partner_never_told_is_alone_in_the_call() -> None:
    h = History().call("m1", "ann", "bob")
    h.add("ann", "end_sent", "m1").add("ann", "reply", "m1", ("end", 0.001, None))
    assert broken(h.log) == {"alone_in_call"}
    assert check(h.log).alone_in_call == ["bob alone in m1: ann left it (end), bob not told"]


def test_told_partner_left_while_the_partner_thinks_the_call_is_on_is_alone_too() -> None:
    h = History().call("m1", "ann", "bob").add("bob", "left", "m1", ("timed_out", True))
    assert broken(h.log) == {"alone_in_call"}


def test_a_side_whose_connection_broke_is_exempt() -> None:
    h = History().call("m1", "ann", "bob").add("ann", "dropped", "", 1006)
    h.add("bob", "left", "m1", ("disconnected", True))
    assert broken(h.log) == set()
    # ... and a call whose only ending is that broken side's is still on for the other.
    h = History().call("m1", "ann", "bob").add("ann", "lost", "", "OSError()")
    assert broken(h.log) == set()


def test_a_side_that_was_dropped_but_resumed_is_not_exempt() -> None:
    h = History().call("m1", "ann", "bob").add("ann", "dropped", "", 1012)
    h.add("ann", "resumed", "m1", (False, 0.01, 0))
    h.add("ann", "synced", "m1", ("in_call", "bob", False))
    h.add("bob", "end_sent", "m1").add("bob", "reply", "m1", ("end", 0.001, None))
    assert broken(h.log) == {"alone_in_call"}  # her replay should have told her
    h.add("ann", "left", "m1", ("ended", True))
    assert broken(h.log) == set()


def test_partner_left_without_requeue_is_a_violation_unless_cooling_down() -> None:
    h = History().call("m1", "ann", "bob").add("bob", "left", "m1", ("skipped", False))
    h.add("ann", "skip_sent", "m1").add("ann", "reply", "m1", ("skip", 0.001, None))
    assert broken(h.log) == {"alone_in_call"}
    cooling = History().call("m0", "bob", "cat")
    cooling.add("bob", "skip_sent", "m0").add("bob", "reply", "m0", ("skip", 0.001, 60_000))
    cooling.add("cat", "left", "m0", ("skipped", True))
    cooling.call("m1", "ann", "bob").add("bob", "left", "m1", ("skipped", False))
    cooling.add("ann", "skip_sent", "m1").add("ann", "reply", "m1", ("skip", 0.001, None))
    assert broken(cooling.log) == set()


def test_a_blocked_pair_matched_again_is_caught() -> None:
    h = History().call("m1", "ann", "bob").hang_up("m1", "ann", "bob", "block")
    assert broken(h.log) == set()
    h.call("m2", "bob", "ann")
    assert broken(h.log) == {"blocked_pair_met"}
    assert check(h.log).blocked_pair_met == ["ann matched with bob in m2 after blocking them"]


def test_a_late_block_still_blocks() -> None:
    h = History().call("m1", "ann", "bob").add("ann", "left", "m1", ("skipped", True))
    h.add("ann", "block_sent", "m1").add("ann", "reply", "m1", ("block", 0.001, None))
    h.add("bob", "skip_sent", "m1").add("bob", "reply", "m1", ("skip", 0.001, None))
    h.call("m2", "ann", "bob")
    assert "blocked_pair_met" in broken(h.log)


def test_partners_that_do_not_name_each_other_are_a_pairing_violation() -> None:
    h = History().add("ann", "matched", "m1", "bob").add("bob", "matched", "m1", "cat")
    assert broken(h.log) == {"pairing"}
    three = History().propose("m1", "ann", "bob").add("cat", "matched", "m1", "ann")
    assert broken(three.log) == {"pairing"}


def test_a_fresh_session_is_read_from_its_state() -> None:
    # ann's resume got a fresh session in the call: that counts as her confirmation, and her
    # call is that one; a fresh session's idle state ends her view of any call.
    h = History().propose("m1", "ann", "bob").confirm("m1", "bob")
    h.add("ann", "drop", "m1").add("ann", "resumed", "m1", (True, 0.01, 0))
    h.add("ann", "synced", "m1", ("in_call", "bob", True))
    assert broken(h.log) == set()
    h.add("bob", "skip_sent", "m1").add("bob", "reply", "m1", ("skip", 0.001, None))
    h.add("ann", "left", "m1", ("skipped", True))
    h.call("m2", "ann", "cat")
    assert broken(h.log) == set()


def test_the_replay_after_a_welcome_is_read_before_its_state() -> None:
    # The welcome's state (proposed m2) is ahead of the replay that follows it.
    h = History().add("ann", "join_sent").add("ann", "dropped", "", 1006)
    h.add("ann", "resumed", "", (False, 0.01, 3)).propose("m1", "ann", "bob")
    h.add("ann", "cancelled", "m1", ("disconnected", True))
    h.add("bob", "cancelled", "m1", ("partner_unreachable", True))
    h.propose("m2", "ann", "cat").add("ann", "synced", "m2", ("proposed", "cat", False))
    h.confirm("m2", "ann", "cat")
    assert broken(h.log) == set()


def test_an_event_lost_from_a_resumed_session_shows() -> None:
    # ann's match_cancelled for m1 never came, though her session went on (1012, resume):
    # her stream is not gap-free, and she sees a second proposal while m1 is open.
    lost = History().propose("m1", "ann", "bob").add("bob", "cancelled", "m1", ("left", False))
    lost.add("ann", "dropped", "", 1012).add("ann", "resumed", "", (False, 0.01, 0))
    lost.add("ann", "synced", "m2", ("proposed", "cat", False)).propose("m2", "ann", "cat")
    assert broken(lost.log) == {"double_match"}
    # A fresh session's state stands in for the stream: no violation.
    fresh = History().propose("m1", "ann", "bob").add("bob", "cancelled", "m1", ("left", False))
    fresh.add("ann", "dropped", "", 4408).add("ann", "resumed", "", (True, 0.01, 0))
    fresh.add("ann", "synced", "m2", ("proposed", "cat", True)).propose("m2", "ann", "cat")
    fresh.confirm("m2", "ann", "cat")
    assert broken(fresh.log) == set()
    # ... but a call the fresh state no longer holds must have been ended for the partner too.
    h = History().call("m1", "ann", "bob").add("ann", "dropped", "", 4408)
    h.add("ann", "resumed", "m1", (True, 0.01, 0)).add("ann", "synced", "", ("idle", None, True))
    assert broken(h.log) == {"alone_in_call"}


def test_the_event_log_survives_a_round_trip_through_a_file(tmp_path: Path) -> None:
    h = History().call("m1", "ann", "bob").hang_up("m1", "ann", "bob", "block")
    write_events(tmp_path / "events.jsonl", h.log)
    assert read_events(tmp_path / "events.jsonl") == h.log


# ---- property: random clean histories pass; each kind of damage is caught ---------------------


def clean_history(seed: int, users: int = 6, calls: int = 14) -> History:
    """Calls between random pairs, in sequence, each ended by skip, end or block (or still on
    at the end), some with a drop and resume; blocked pairs never meet again."""
    rng = random.Random(seed)
    names = [f"u{i}" for i in range(users)]
    blocked: set[frozenset[str]] = set()
    h = History()
    for n in range(calls):
        pairs = [(a, b) for a in names for b in names if a < b and {a, b} not in blocked]
        a, b = rng.sample(rng.choice(pairs), 2)
        match_id = f"m{n}"
        h.add(a, "join_sent").add(a, "reply", "", ("join", 0.001, None)).call(match_id, a, b)
        if rng.random() < 0.3:
            h.add(a, "drop", match_id).add(b, "reconnecting", match_id)
            h.add(a, "resumed", match_id, (False, 0.01, 0))
            h.add(a, "synced", match_id, ("in_call", b, False))
        if n == calls - 1 and rng.random() < 0.5:
            break  # on when the run ends
        command = rng.choice(["skip", "end", "block"])
        h.hang_up(match_id, a, b, command)
        if command == "block":
            blocked.add(frozenset((a, b)))
    return h


def _drop_one_confirmation(log: list[Record]) -> bool:
    synced = {(r[1], r[3]) for r in log if r[2] == "synced"}  # a welcome told them too
    confirmed = [r for r in log if r[2] == "confirmed" and (r[1], r[3]) not in synced]
    if confirmed:
        log.remove(confirmed[0])
    return bool(confirmed)


def _drop_one_partner_left(log: list[Record]) -> bool:
    told = [r for r in log if r[2] == "left"]
    if told:
        log.remove(told[0])
    return bool(told)


def _misname_a_partner(log: list[Record]) -> bool:
    i = next(i for i, r in enumerate(log) if r[2] == "matched")
    log[i] = (*log[i][:4], "nobody")
    return True


def _second_call_mid_call(log: list[Record]) -> bool:
    i = next(i for i, r in enumerate(log) if r[2] == "confirmed")
    user = log[i][1]
    log[i + 1 : i + 1] = [(log[i][0], user, "matched", "mX", "zed")]
    log[i + 2 : i + 2] = [(log[i][0], "zed", "matched", "mX", user)]
    return True


def _rematch_blocked_pair(log: list[Record]) -> bool:
    reply = next((r for r in log if r[2] == "reply" and r[4][0] == "block"), None)
    if reply is None:
        return False  # nobody blocked in this history
    partner = next(r[4] for r in log if r[2] == "matched" and r[1] == reply[1] and r[3] == reply[3])
    later = History().call("mY", reply[1], partner).log
    log += [(1000 + r[0], *r[1:]) for r in later]
    return True


DAMAGE: dict[str, Callable[[list[Record]], bool]] = {
    "split_brain": _drop_one_confirmation,
    "alone_in_call": _drop_one_partner_left,
    "pairing": _misname_a_partner,
    "double_match": _second_call_mid_call,
    "blocked_pair_met": _rematch_blocked_pair,
}
# A user never told its call ended is alone in it, or, once matched again, in two at once.
CAUGHT_AS = {"alone_in_call": {"alone_in_call", "double_match"}}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_random_clean_histories_pass(seed: int) -> None:
    assert broken(clean_history(seed).log) == set()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), damage=st.sampled_from(sorted(DAMAGE)))
def test_damage_to_a_clean_history_is_caught(seed: int, damage: str) -> None:
    log = clean_history(seed).log
    if DAMAGE[damage](log):  # (False: this history has nothing to damage that way)
        assert broken(log) & CAUGHT_AS.get(damage, {damage})


# ---- the model and the report's arithmetic ------------------------------------------------------


def test_the_churn_model_draws_each_hang_up_in_its_share() -> None:
    model, rng = Churn(skip_p=0.5, block_p=0.1, drop_p=0.2), random.Random(7)
    draws = [model.hang_up(rng) for _ in range(20_000)]
    share = {kind: draws.count(kind) / len(draws) for kind in ("drop", "skip", "block", "end")}
    assert share["drop"] == pytest.approx(0.2, abs=0.02)
    assert share["skip"] == pytest.approx(0.8 * 0.5, abs=0.02)
    assert share["block"] == pytest.approx(0.8 * 0.1, abs=0.02)
    assert share["end"] == pytest.approx(0.8 * 0.4, abs=0.02)
    assert Churn(skip_p=0.9, block_p=0.2).problems()


def test_second_join_to_confirmed_runs_from_the_later_queue_entry() -> None:
    log: list[Record] = [
        (1.0, "ann", "matched", "m1", "bob"),
        (1.0, "bob", "matched", "m1", "ann"),
        (1.010, "ann", "confirmed", "m1", (0.5, 0.5)),
        (1.020, "bob", "confirmed", "m1", (0.99, 0.99)),
    ]
    got = confirm_latencies(log, 0.0, 2.0)
    assert got["second_join"] == pytest.approx([1.020 - 0.99])
    assert got["wait"] == pytest.approx([0.51, 1.020 - 0.99])
    assert got["matched"] == pytest.approx([0.010, 0.020])
    assert percentiles([0.001, 0.002, 0.003, 0.004]) == {
        "n": 4,
        "p50": 2.0,
        "p90": 4.0,
        "p99": 4.0,
        "max": 4.0,
    }


# ---- mass skip: who skips, and the round's figures ---------------------------------------------


def test_exactly_one_side_of_a_pair_skips_first() -> None:
    rng = random.Random(3)
    for _ in range(200):
        a, b = (f"g_{rng.getrandbits(64):016x}" for _ in range(2))
        assert skips_first(a, b) != skips_first(b, a)
    assert skips_first("g_1", "g_2")


def test_a_user_skips_only_the_call_it_was_in_at_the_barrier() -> None:
    def user(me: str, partner: str) -> User:
        u = User(me, random.Random(1), [], Churn(), churn=False)
        u.user_id, u.partners, u.call, u.barrier_call = me, {"m1": partner}, "m1", "m1"
        return u

    assert user("ann", "bob").to_skip() == "m1"
    assert user("bob", "ann").to_skip() is None  # the other side waits
    moved = user("ann", "bob")
    moved.call = "m2"  # already in a new call (its partner skipped early): nothing to skip
    moved.partners["m2"] = "cat"
    assert moved.to_skip() is None
    assert moved.in_new_call()
    assert not user("ann", "bob").in_new_call()


def test_a_mass_skip_round_pairs_each_skip_with_its_partners_partner_left() -> None:
    log: list[Record] = [
        (9.0, "ann", "skip_sent", "m0", None),  # an earlier round: outside the window
        (10.000, "ann", "skip_sent", "m1", None),
        (10.001, "cat", "skip_sent", "m2", None),
        (10.020, "bob", "left", "m1", ("skipped", True)),
        (10.021, "ann", "reply", "m1", ("skip", 0.021, None)),
        (10.031, "cat", "reply", "m2", ("skip", 0.030, None)),
        (10.050, "ann", "confirmed", "m3", (10.0, 10.0)),
        (10.060, "bob", "confirmed", "m3", (10.02, 10.02)),
    ]  # dan, cat's partner in m2, is never told
    got = skip_round(log, 10.0, 11.0)
    assert got["skips"] == 2
    assert got["partner_left"] == pytest.approx([0.020])
    assert got["missing"] == 1
    assert got["reply"] == pytest.approx([0.021, 0.030])
    assert got["last_confirmed"] == 10.060
    round_: dict[str, Any] = {"t_fire": 10.0, "t_ready": 11.0, "in_call": 4, "in_call_after": 2}
    round_ |= {"server_cpu_s": 0.002, "redis": None}
    figures = mass_skip_metrics(log, {"skip_rounds": [round_], "connected": 4})
    assert figures["skip_to_partner_left_ms"]["p99"] == 20.0
    assert figures["partner_left_missing"] == 1
    assert figures["round_1"]["n"] == 1
    assert figures["round_1"]["not_in_call_after"] == 2
    assert figures["round_1"]["in_call_again_s"] == 0.06
    assert figures["round_1"]["server_cpu_us_per_skip"] == 1000


def test_mass_skip_needs_pairs() -> None:
    assert Options(users=41, mode="mass_skip").problems()
    assert Options(users=40, mode="mass_skip", rounds=0).problems()
    assert not Options(users=40, mode="mass_skip").problems()


# ---- one small real run ------------------------------------------------------------------------


def test_pairline_bench_runs_clean_against_a_spawned_node(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("pairline")
    report_path = tmp_path / "report.json"
    command = [str(script), "bench", "--users", "40", "--procs", "1", "--duration", "3"]
    command += ["--warmup", "1", "--grace", "1", "--talk-min", "0.2", "--talk-max", "0.8"]
    command += ["--drop-p", "0.1", "--block-p", "0.1", "--json", str(report_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["violations"] == {
        "split_brain": 0,
        "double_match": 0,
        "alone_in_call": 0,
        "blocked_pair_met": 0,
        "pairing": 0,
    }
    assert report["connected"] == 40
    assert report["confirmed_matches"] > 0
    assert report["counts"]["skip_sent"] > 0
    assert report["generator_crashes"] == []
    assert report["server_cpu_us_per"]["match"] > 0


def test_pairline_bench_mass_skip_tells_every_partner(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("pairline")
    report_path, events_path = tmp_path / "report.json", tmp_path / "events.jsonl"
    command = [str(script), "bench", "--users", "40", "--procs", "2", "--mass-skip"]
    command += ["--rounds", "2", "--duration", "5", "--grace", "1"]
    command += ["--json", str(report_path), "--events", str(events_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert set(report["violations"].values()) == {0}
    assert report["connected"] == 40
    assert report["generator_crashes"] == []
    # Each round, one side of each of the 20 pairs skipped, and every partner was told.
    overall = report["skip_to_partner_left_ms"]
    assert overall["n"] == 40
    assert all(overall[p] is not None for p in ("p50", "p90", "p99", "max"))
    assert report["partner_left_missing"] == 0
    for name in ("round_1", "round_2"):
        assert report[name]["skips"] == report[name]["n"] == 20
        assert report[name]["missing"] == 0
        assert report[name]["not_in_call_before"] == 0
        assert report[name]["p99"] is not None
    log = read_events(events_path)
    skips = {(r[3], r[1]): r[0] for r in log if r[2] == "skip_sent"}
    told = {r[3]: r[1] for r in log if r[2] == "left" and r[4][0] == "skipped"}
    assert len(skips) == 40
    assert all(told.get(match_id) not in (None, user) for match_id, user in skips)
    # Both workers fired together: the skips come in two tight bursts, one per round.
    times = sorted(skips.values())
    bursts = [0, *(i for i in range(1, len(times)) if times[i] - times[i - 1] > 0.2), len(times)]
    assert [b - a for a, b in itertools.pairwise(bursts)] == [20, 20]
