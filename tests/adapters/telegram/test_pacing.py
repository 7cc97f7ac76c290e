"""Per-chat pacing, on a fake clock."""

from __future__ import annotations

from adapters.telegram.pacing import ChatPacer


async def test_bursts_queue_per_chat_and_groups_wait_longer() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = ChatPacer(clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await pacer.wait(("d1", 42))  # a private chat: one a second
    assert slept == [1.0, 1.0]
    await pacer.wait(("d1", 7))  # another chat is not held up
    await pacer.wait(("d2", 42))  # nor the same person talking to another bot
    assert slept == [1.0, 1.0]
    slept.clear()
    await pacer.wait(("d1", -1001))
    await pacer.wait(("d1", -1001))  # a group: twenty a minute
    assert slept == [3.0]
    now[0] += 10
    slept.clear()
    await pacer.wait(("d1", 42))  # a quiet chat sends at once
    assert slept == []
