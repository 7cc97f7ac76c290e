"""`Preview`: an answer shown while it is written, at most every `every_s`, after `after_s`
(a quicker answer shows nothing), typing while no text has come; a failing platform ends the
preview, never the turn."""

from __future__ import annotations

import asyncio

from runtime.preview import Preview


async def test_a_slow_answer_shows_waiting_then_its_text_in_few_calls() -> None:
    shown: list[tuple[str, str]] = []
    waited: list[bool] = []

    async def show(text: str, new: str) -> bool:
        shown.append((text, new))
        return True

    async def waiting() -> None:
        waited.append(True)

    preview = Preview(show=show, after_s=0.05, every_s=lambda: 0.1, waiting=waiting)
    preview.start()
    await asyncio.sleep(0.08)  # nothing yet: waiting is shown
    for word in ("one ", "two ", "three ", "four"):
        preview.add(word)
        await asyncio.sleep(0.03)
    await asyncio.sleep(0.25)
    await preview.stop()
    assert waited == [True]
    assert shown[0] == ("one ", "one ") and shown[-1][0] == "one two three four"
    assert "".join(new for _, new in shown) == "one two three four"
    assert len(shown) < 4  # batched


async def test_a_quick_answer_shows_nothing() -> None:
    calls: list[str] = []

    async def show(text: str, new: str) -> bool:
        calls.append(text)
        return True

    preview = Preview(show=show, after_s=0.2, every_s=lambda: 0.1)
    preview.start()
    preview.add("Yes.")
    await asyncio.sleep(0.05)
    await preview.stop()  # the answer is sent before `after_s`
    assert calls == []


async def test_a_failing_platform_ends_the_preview_quietly() -> None:
    async def show(text: str, new: str) -> bool:
        raise ConnectionError("the platform went away")

    preview = Preview(show=show, after_s=0, every_s=lambda: 0.01)
    preview.start()
    preview.add("text")
    await asyncio.sleep(0.05)
    assert preview.task is not None and preview.task.done() and preview.task.exception() is None
    await preview.stop()
