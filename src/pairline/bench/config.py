"""What one `pairline bench` run is asked to do: the flags, checked, as one typed object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pairline.bench.model import Churn

Mode = Literal["churn", "burst", "idle", "mass_skip"]


@dataclass(frozen=True)
class Options:
    users: int = 1000
    procs: int = 2
    # Targets: `urls` (running nodes), else `nodes` spawned ones; `redis` a URL or "spawn".
    urls: tuple[str, ...] = ()
    server_pids: tuple[int, ...] = ()
    nodes: int = 1
    redis: str | None = None
    script_mix: bool = False
    ws: Literal["native", "asgi"] = "native"
    server_env: tuple[str, ...] = ()
    # Phases (s).
    duration: float = 20.0
    warmup: float = 3.0
    grace: float = 2.0
    mode: Mode = "churn"
    rounds: int = 3  # --mass-skip: synchronised skips, each after everyone is in a call again
    chat_interval: float = 0.0
    churn: Churn = field(default_factory=Churn)
    seed: int = 1
    json_path: Path | None = None
    events_path: Path | None = None

    @property
    def spawn(self) -> bool:
        return not self.urls

    def problems(self) -> list[str]:
        """What makes these options unusable together (empty when they are fine)."""
        found = list(self.churn.problems())
        if self.users < 2 or self.procs < 1:
            found.append("need --users >= 2 and --procs >= 1")
        if self.nodes < 1 or (self.nodes > 1 and not self.redis):
            found.append("--nodes N > 1 needs --redis (the memory store lives in one process)")
        if self.urls and self.redis == "spawn":
            found.append("--redis spawn starts a Redis for spawned nodes only; give its URL")
        if self.script_mix and self.redis != "spawn":
            found.append("--script-mix needs --redis spawn (it turns on SLOWLOG for everything)")
        if self.server_pids and len(self.server_pids) != len(self.urls):
            found.append("--server-pid: one per --url node, in the same order")
        if self.mode == "mass_skip" and (self.users % 2 or self.rounds < 1):
            found.append("--mass-skip needs an even --users (pairs) and --rounds >= 1")
        if any("=" not in item for item in self.server_env):
            found.append("--server-env takes NAME=VALUE")
        return found
