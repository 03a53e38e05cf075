import pytest

from pairline.client.commands import PendingCommands
from pairline.client.errors import ConnectionLost


async def test_answers_for_one_id_go_oldest_first() -> None:
    pending = PendingCommands()
    first = pending.add("join", {"type": "join", "id": "x"})
    second = pending.add("join", {"type": "join", "id": "x"})
    assert pending.take("x") is first
    assert pending.take("x") is second
    assert pending.take("x") is None


async def test_not_sent_on_lists_what_a_new_connection_must_resend() -> None:
    pending = PendingCommands()
    sent = pending.add("leave", {"type": "leave", "id": "a"})
    unsent = pending.add("end", {"type": "end", "id": "b"})
    sent.gen = 3
    assert pending.not_sent_on(3) == [unsent]
    assert pending.not_sent_on(4) == [sent, unsent]
    pending.forget(unsent)
    assert pending.not_sent_on(3) == []


async def test_fail_all_fails_every_waiter() -> None:
    pending = PendingCommands()
    a = pending.add("leave", {"type": "leave", "id": "a"})
    pending.fail_all(ConnectionLost(4403))
    with pytest.raises(ConnectionLost):
        await a.future
    assert pending.take("a") is None
