"""Random users on several nodes, and protocol.md §4's invariants read from their own logs.

Each simulated user joins, talks, skips, ends, chats and drops its connection at random. The
checks look only at what the clients were told (and, at the end, what the server says their
state is): a split brain, a user in two calls at once, or a call that only one side is in.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from pairline.client import Client, ClientError, CommandError

END_COMMANDS = ("skip", "end")


@dataclass
class User:
    client: Client
    rng: random.Random
    ended: dict[str, str] = field(default_factory=dict)  # command id → the call it ended
    blocker: bool = False  # ends its calls with `block` rather than `end`
    blocked: dict[str, str] = field(default_factory=dict)  # block command id → the partner


@dataclass
class ChurnReport:
    users: int
    confirmed: int
    violations: list[str]
    actions: dict[str, int]
    confirmed_ids: set[str] = field(default_factory=set)  # calls some user was told started
    ended_ids: set[str] = field(default_factory=set)  # calls some user was told are over


async def _act(user: User, stop_at: float, actions: dict[str, int]) -> None:
    client, rng = user.client, user.rng
    loop = asyncio.get_running_loop()
    while loop.time() < stop_at:
        status = client.state["status"]
        try:
            if status == "idle":
                actions["join"] += 1
                await client.join(interests=rng.sample(["a", "b", "c"], rng.randint(0, 1)))
            elif status == "in_call" and client.match_id:
                match_id = client.match_id  # the call this user sees, whatever comes meanwhile
                partner = (client.state.get("match") or {}).get("partner", {}).get("user_id")
                await asyncio.sleep(rng.uniform(0.5, 2.0))  # the user's own pace, not a sync
                roll = rng.random()
                if roll < 0.5:
                    command = "skip" if roll < 0.35 else ("block" if user.blocker else "end")
                    actions[command] += 1
                    command_id = f"{command}-{len(user.ended)}"
                    user.ended[command_id] = match_id
                    if command == "block" and partner:
                        user.blocked[command_id] = partner
                    await getattr(client, command)(match_id, id=command_id)
                elif roll < 0.55 and client.connected:
                    actions["drop"] += 1
                    await client.drop(reconnect=True)
                else:
                    actions["chat"] += 1
                    await client.chat("hi")
            else:
                kinds = ("match_confirmed", "partner_left", "match_cancelled", "queue_cancelled")
                await client.wait_for(kinds, timeout=rng.uniform(0.5, 2.0))
        except (CommandError, TimeoutError):
            continue  # raced with the partner, or nothing happened yet: look again
        except ClientError:
            await asyncio.sleep(0.2)  # reconnecting: the SDK resumes by itself


async def run_churn(
    urls: list[str],
    *,
    users: int,
    seconds: float,
    seed: int,
    midway: Any = None,
    settle_s: float = 20.0,
    blockers: float = 0.0,
) -> ChurnReport:
    """Drive `users` clients over `urls` for `seconds`, then check every invariant.

    A `blockers` share of the users end their calls with `block` instead of `end`."""
    rng = random.Random(seed)
    people: list[User] = []
    for i in range(users):
        order = urls[i % len(urls) :] + urls[: i % len(urls)]  # spread over nodes, fail over
        client = Client(order, display_name=f"u{i}", backoff=(0.2, 0.5, 1.0, 2.0))
        await client.connect()
        people.append(User(client, random.Random(rng.random()), blocker=i < blockers * users))
    actions = {"join": 0, "skip": 0, "end": 0, "drop": 0, "chat": 0}
    if blockers:
        actions["block"] = 0
    stop_at = asyncio.get_running_loop().time() + seconds
    tasks = [asyncio.create_task(_act(u, stop_at, actions)) for u in people]
    if midway is not None:
        await asyncio.sleep(seconds / 2)
        await midway()
    await asyncio.gather(*tasks)
    states = await _settled_states(people, urls, settle_s)
    violations = check_logs(people, states)
    confirmed_ids = {
        e.raw["match_id"]
        for u in people
        for e in u.client.events_log
        if e.type == "match_confirmed"
    }
    ended_ids = {
        e.raw["match_id"] for u in people for e in u.client.events_log if e.type == "partner_left"
    }
    ended_ids |= {match_id for u in people for match_id in u.ended.values()}
    for person in people:
        await person.client.close()
    return ChurnReport(
        users, len(confirmed_ids), violations, actions, confirmed_ids, ended_ids & confirmed_ids
    )


async def _status(http: httpx.AsyncClient, urls: list[str], token: str | None) -> dict[str, Any]:
    """GET /v1/status from the first node that answers (one may have been killed)."""
    headers = {"Authorization": f"Bearer {token}"}
    for url in urls:
        try:
            response = await http.get(f"{url}/v1/status", headers=headers)
        except httpx.TransportError:
            continue
        return dict(response.json())
    raise RuntimeError("no node answers")


async def _settled_states(
    people: list[User], urls: list[str], settle_s: float
) -> dict[str, dict[str, Any]]:
    """Every user's state once settled: no proposal open, and two reads in a row agree (the
    states are read one by one, so a call ending mid-read must not look one-sided)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    previous: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            states = {}
            for person in people:
                states[person.client.user_id] = await _status(http, urls, person.client.token)
            proposals_open = any(s["status"] == "proposed" for s in states.values())
            if (states == previous and not proposals_open) or loop.time() > deadline:
                return states
            previous = states


def check_logs(people: list[User], states: dict[str, dict[str, Any]]) -> list[str]:
    violations: list[str] = []
    for person in people:
        violations += _overlaps(person)
        violations += _blocked_pairs_met(person)
    violations += _split_brains(people)
    violations += _one_sided(states)
    return violations


def _split_brains(people: list[User]) -> list[str]:
    """Every call a user was told is confirmed (by message or by a welcome's state) must have
    been told to its partner too."""
    confirmed_by: dict[str, set[str]] = {}
    for person in people:
        uid = person.client.user_id
        for event in person.client.events_log:
            if event.type == "match_confirmed":
                confirmed_by.setdefault(event.raw["match_id"], set()).add(uid)
        for welcome in person.client.welcomes:
            state = welcome["state"]
            if state["status"] == "in_call":
                confirmed_by.setdefault(state["match"]["match_id"], set()).add(uid)
    return [
        f"{match_id} confirmed for {sorted(told)}"
        for match_id, told in confirmed_by.items()
        if len(told) != 2
    ]


def _one_sided(states: dict[str, dict[str, Any]]) -> list[str]:
    """Once settled: no proposal left open, and every call has both its users in it."""
    found = []
    for uid, state in states.items():
        if state["status"] == "proposed":
            found.append(f"{uid} still proposed after the ack timeout: {state}")
        if state["status"] != "in_call":
            continue
        match_id = state["match"]["match_id"]
        partner = state["match"]["partner"]["user_id"]
        theirs = states.get(partner) or {}
        their_match = (theirs.get("match") or {}).get("match_id")
        if theirs.get("status") != "in_call" or their_match != match_id:
            found.append(f"one-sided call: {uid} in {match_id}; {partner} is {theirs}")
    return found


def _blocked_pairs_met(person: User) -> list[str]:
    """Once its block was answered, a blocker is never matched with that user again. (Every
    match reaches both users, so the blocker's own ordered log is enough to see it.)"""
    found = []
    blocked: set[str] = set()
    for event in person.client.events_log:
        if event.type == "reply" and event.raw.get("re") in person.blocked:
            blocked.add(person.blocked[event.raw["re"]])
        elif event.type == "matched" and event.raw["partner"]["user_id"] in blocked:
            uid = person.client.user_id
            found.append(f"{uid} matched with {event.raw['partner']['user_id']}, blocked before")
    return found


def _overlaps(person: User) -> list[str]:
    """Walk one user's timeline: a new call must never start before the last one ended."""
    client = person.client
    marks: list[tuple[int, int, str, Any]] = []  # (position, order, kind, detail)
    for position, welcome in zip(client.welcome_positions, client.welcomes, strict=True):
        marks.append((position, 0, "welcome", welcome))
    # A welcome at position p came after p events, i.e. after events 0 … p-1 and before event
    # p. The user's own skip or end ended its call where its reply stands in the log.
    for index, event in enumerate(client.events_log):
        marks.append((index, 2, event.type, event.raw))
        ended = person.ended.get(event.raw.get("re", "")) if event.type == "reply" else None
        if ended is not None:
            marks.append((index + 1, 1, "ended", ended))
    marks.sort(key=lambda m: (m[0], m[1]))
    current: str | None = None
    found = []
    for _, _, kind, detail in marks:
        if kind == "welcome":
            state = detail["state"]
            current = state["match"]["match_id"] if state["status"] == "in_call" else None
        elif (kind == "ended" and detail == current) or (
            kind == "partner_left" and detail["match_id"] == current
        ):
            current = None
        elif kind == "match_confirmed":
            if current is not None and current != detail["match_id"]:
                found.append(f"{client.user_id} confirmed in {detail['match_id']} during {current}")
            current = detail["match_id"]
    return found
