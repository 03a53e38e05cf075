"""`Delivery` on a node that shares its state: this node's users only.

What a transition has for a user connected to another node never passes through here: the
transition handed it to that node's channel itself (lib.lua's hand-off), and that node's engine
carries it out (`Engine.carry_out_handed_off`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pairline.transport.registry import SessionRegistry


class ClusterDelivery:
    """The session registry, for the effects whose user the store says is connected here."""

    def __init__(self, node_id: str, local: SessionRegistry) -> None:
        self.node_id = node_id
        self.local = local

    def send(self, node_id: str, user_id: str, message: dict[str, Any], order: int) -> None:
        if node_id == self.node_id:
            self.local.send(node_id, user_id, message, order)

    def push_position(self, user_id: str, message: dict[str, Any], as_of: int) -> None:
        self.local.push_position(user_id, message, as_of)

    def probe(self, node_id: str, user_id: str) -> None:
        if node_id == self.node_id:
            self.local.probe(node_id, user_id)

    def end_session(
        self, node_id: str, user_id: str, session_id: str, close_code: int | None
    ) -> None:
        if node_id == self.node_id:
            self.local.end_session(node_id, user_id, session_id, close_code)

    def local_users(self) -> Iterable[str]:
        return self.local.local_users()
