"""`Delivery` across nodes: local users through the session registry, others over the bus."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pairline.cluster.bus import NodeBus
from pairline.transport.registry import SessionRegistry


class ClusterDelivery:
    """Routes each call to the node the store says holds the user's connection."""

    def __init__(self, node_id: str, local: SessionRegistry) -> None:
        self.node_id = node_id
        self.local = local
        self.bus: NodeBus | None = None  # set once the bus exists (it needs `receive`)

    def send(self, node_id: str, user_id: str, message: dict[str, Any], order: int) -> None:
        if node_id == self.node_id:
            self.local.send(node_id, user_id, message, order)
        else:
            self._remote(node_id, ["send", user_id, message, order])

    def push_position(self, user_id: str, message: dict[str, Any], as_of: int) -> None:
        self.local.push_position(user_id, message, as_of)

    def probe(self, node_id: str, user_id: str) -> None:
        if node_id == self.node_id:
            self.local.probe(node_id, user_id)
        else:
            self._remote(node_id, ["probe", user_id])

    def end_session(
        self, node_id: str, user_id: str, session_id: str, close_code: int | None
    ) -> None:
        if node_id == self.node_id:
            self.local.end_session(node_id, user_id, session_id, close_code)
        else:
            self._remote(node_id, ["end_session", user_id, session_id, close_code])

    def local_users(self) -> Iterable[str]:
        return self.local.local_users()

    def receive(self, origin: str, item: list[Any]) -> None:
        """A call another node made for one of this node's users."""
        kind, user_id, *rest = item
        if kind == "send":
            self.local.send(self.node_id, user_id, rest[0], rest[1])
        elif kind == "probe":
            self.local.probe(self.node_id, user_id)
        elif kind == "end_session":
            self.local.end_session(self.node_id, user_id, rest[0], rest[1])

    def _remote(self, node_id: str, item: list[Any]) -> None:
        assert self.bus is not None, "the bus starts before any transition runs"
        self.bus.publish(node_id, item)
