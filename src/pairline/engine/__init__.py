"""The asyncio services around the store: commands in, effects out, and the clocks that drive
deadlines, the stale sweep and queue-position pushes."""

from pairline.engine.delivery import Delivery
from pairline.engine.engine import Engine

__all__ = ["Delivery", "Engine"]
