"""The event log of a `pairline bench` run: everything each simulated user saw and did, in order.

One record per event: `(t, user_id, kind, match_id, detail)`, t = time.time() (one clock for
every process of the machine, so that records of different workers can be compared). A user's
records are in the order it saw and did things; the log of a run is the workers' logs joined.

Kinds, with their match_id and detail:

- `join_sent` (""), `skip_sent`, `end_sent`, `block_sent` (the call): a command sent; None.
- `reply`: the command's match_id ("" for `join`); (command, seconds since it was sent,
  cooldown_ms or None). A reply is `ok`: refusals are `error`, with the command's match_id
  and "command:code".
- `matched`: the proposal; the partner's user id.
- `confirmed`: the call; (wait start or None, queued since or None): see report.py.
- `cancelled` (`match_cancelled`), `left` (`partner_left`): the match; (reason, requeued).
- `queue_cancelled`: ""; the reason.
- `held`: the proposal a user that ignores `matched` got (it acks nothing until it is
  cancelled); None.
- `drop`: the call; None. The user cut its own connection (no close handshake).
- `resumed`: the call at the drop; (fresh session?, seconds from reconnect to welcome, messages
  replayed).
- `synced`: the welcome's match_id (or ""); (the welcome's state status, partner or None, fresh
  session?): recorded once the replayed messages are processed.
- `lost`: ""; repr of the error: reconnecting failed, the user is gone.
- `dropped`: ""; the close code: the server closed the connection (or it broke).
- `connect_failed`, `crash`: ""; repr / traceback.
- `reconnecting`, `partner_resumed`, `ping`, `chat`, `chat_sent`: per message; None.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Record = tuple[float, str, str, str, Any]  # (t, user_id, kind, match_id, detail)

# Commands that end a call (the reply to one, `ok`, means the server ended it or it was over).
ENDING = frozenset({"skip", "end", "block"})


def by_user(log: Iterable[Record]) -> dict[str, list[Record]]:
    """Each user's records, in its own order (records without a user are left out)."""
    users: dict[str, list[Record]] = defaultdict(list)
    for record in log:
        if record[1]:
            users[record[1]].append(record)
    return dict(users)


def write_events(path: Path, log: Iterable[Record]) -> None:
    """The log as JSON lines, `[t, user_id, kind, match_id, detail]` each, in the log's order
    (each user's records in its own order); read_events reads it back."""
    with path.open("w") as out:
        for record in log:
            out.write(json.dumps(record) + "\n")


def read_events(path: Path) -> list[Record]:
    """A log written by write_events (details that were tuples come back as tuples)."""
    records: list[Record] = []
    with path.open() as lines:
        for line in lines:
            t, user, kind, match_id, detail = json.loads(line)
            records.append(
                (t, user, kind, match_id, tuple(detail) if isinstance(detail, list) else detail)
            )
    return records
