"""How the engine reaches users: the narrow interface the transport implements.

Locally the session registry implements it; across nodes (issue 3) Redis pub/sub carries each
call to the node holding the user's connection. The engine never imports a transport.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class Delivery(Protocol):
    """Each call names the node holding the user's connection, as the store recorded it."""

    def send(self, node_id: str, user_id: str, message: dict[str, Any], order: int) -> None:
        """Push the store's `order`-th event for the user to its session (numbered, buffered
        for resume); the session delivers the user's events in this order."""

    def push_position(self, user_id: str, message: dict[str, Any], as_of: int) -> None:
        """Push a `queue` update computed when the user's event order was `as_of` (local users
        only); dropped if a later event has reached the user since."""

    def probe(self, node_id: str, user_id: str) -> None:
        """Ping the user now: a health check the store is waiting on."""

    def end_session(
        self, node_id: str, user_id: str, session_id: str, close_code: int | None
    ) -> None:
        """Discard the session; close its connection with `close_code` if one is open."""

    def local_users(self) -> Iterable[str]:
        """Users whose session lives on this node (for queue-position pushes)."""
