"""Store outcomes as plain, order-preserving values, so two backends' results compare exactly."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from pairline.core import effects as fx
from pairline.errors import ProtocolError


def normal(value: Any) -> Any:
    """Dataclasses by type and fields, dicts with their key order, sets sorted, scalars typed
    (so True is not 1, and a message's key order counts, as it does on the wire)."""
    if isinstance(value, BaseException):
        retry = value.retry_after_ms if isinstance(value, ProtocolError) else None
        return ("raised", type(value).__name__, str(value), retry)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = tuple((f.name, normal(getattr(value, f.name))) for f in dataclasses.fields(value))
        return (type(value).__name__, fields)
    if isinstance(value, dict):
        return ("dict", tuple((normal(k), normal(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted((normal(v) for v in value), key=repr)))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(normal(v) for v in value))
    if isinstance(value, enum.Enum):
        return (type(value).__name__, value.value)
    return (type(value).__name__, value)


def effects_in_order(effects: list[fx.Effect]) -> list[fx.Effect]:
    """The effects, except where the core's order is its string hashes' order.

    Matchmaker._health_check_failed iterates `set(match.probing)`: when both users failed the
    check, the order of their `queue_cancelled` messages and of their EndSessions depends on
    PYTHONHASHSEED. Those two pairs (always adjacent to the MatchFailed, as nobody is requeued)
    are sorted by user; everything else keeps its order.
    """
    out = list(effects)
    for i, effect in enumerate(out):
        if (
            isinstance(effect, fx.MatchFailed)
            and effect.reason == "health_check"
            and len(effect.match.probing) == 2
        ):
            out[i - 2 : i] = sorted(out[i - 2 : i], key=_user_of)
            out[i + 1 : i + 3] = sorted(out[i + 1 : i + 3], key=_user_of)
    return out


def _user_of(effect: fx.Effect) -> str:
    assert isinstance(effect, fx.Send | fx.EndSession), effect
    return effect.user_id


def outcome(result: Any) -> Any:
    """A store method's result (or exception), normalised, effects in canonical order."""
    if isinstance(result, list):
        return normal(effects_in_order(result))
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], list):
        return normal((result[0], effects_in_order(result[1])))
    if dataclasses.is_dataclass(result) and hasattr(result, "effects"):
        return normal(dataclasses.replace(result, effects=effects_in_order(result.effects)))
    return normal(result)
