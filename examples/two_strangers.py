"""Two strangers meet, chat, and one skips: pairline's whole cycle from the client side.

python examples/two_strangers.py [http://127.0.0.1:8000]
"""

from __future__ import annotations

import asyncio
import sys

from pairline.client import Client


async def main(url: str) -> None:
    async with Client(url, display_name="Ann") as ann, Client(url, display_name="Bob") as bob:
        await ann.join(interests=["music"])
        await bob.join(interests=["music", "films"])

        matched = await ann.wait_for("matched")  # phase 1: proposed (the SDK acks it)
        print(f"Ann matched with {matched.raw['partner']['display_name']}")
        confirmed = await ann.wait_for("match_confirmed")  # phase 2: both acked
        await bob.wait_for("match_confirmed")
        print(f"confirmed {confirmed.raw['match_id']}: Ann is the {confirmed.raw['media']['role']}")

        await ann.chat("hi Bob!")
        print(f"Bob got: {(await bob.wait_for('chat')).raw['text']}")

        skipped = await bob.skip()
        left = await ann.wait_for("partner_left")
        print(f"Bob skipped (requeued: {skipped['requeued']}, position {skipped['position']})")
        where = left.raw["position"]
        print(f"Ann told: partner {left.raw['reason']}, back in the queue at {where}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
