"""A process that appends to an outbox until it is killed (see test_outbox.py).

`python outbox_child.py PATH loop`: appends batch after batch, printing each one's number once
`append` returned. `python outbox_child.py PATH once`: appends one batch, then kills itself with
SIGKILL at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from pairline.records import Outbox, Record, UserSeen

BATCH = 5


def batch(number: int) -> list[Record]:
    return [UserSeen(f"u{number}-{i}", "crash", "guest", number * BATCH + i) for i in range(BATCH)]


async def main(path: str, mode: str) -> None:
    outbox = await Outbox.open(path)
    if mode == "once":
        await outbox.append(batch(0))
        os.kill(os.getpid(), signal.SIGKILL)
    number = 0
    while True:
        await outbox.append(batch(number))
        sys.stdout.write(f"{number}\n")
        sys.stdout.flush()
        number += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
