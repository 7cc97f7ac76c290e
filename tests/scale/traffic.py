"""Traffic the scale-out tests send, and how they judge what the fake Telegram received."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence

import httpx

from tests.fakes.telegram_payloads import message_update
from tests.scale.cluster import Cluster, Deployed, Sent, describe


def text_of(chat: int, n: int) -> str:
    """What the person in `chat` says in their `n`-th message (the echo model repeats it)."""
    return f"chat {chat} says {n}"


def echo(chat: int, n: int) -> str:
    return f"echo: {text_of(chat, n)}"


def update(chat: int, n: int) -> dict[str, object]:
    return message_update(text_of(chat, n), chat_id=chat, user_id=chat, username=f"u{chat}")


def problems(
    chats: Mapping[int, Sequence[Sent]], expected: Mapping[int, Sequence[str]]
) -> list[str]:
    """What differs from each chat having been sent exactly its expected answers, in order:
    answers missing, sent more than once (by which workers), not expected, out of order."""
    found: list[str] = []
    for chat, wanted in expected.items():
        sent = chats.get(chat, [])
        texts = [s.text for s in sent]
        counts = Counter(texts)
        missing = [t for t in wanted if t not in counts]
        twice = {t: [s.worker for s in sent if s.text == t] for t, n in counts.items() if n > 1}
        strange = [t for t in counts if t not in wanted]
        if missing:
            found.append(f"chat {chat}: never answered {missing}")
        for text, workers in twice.items():
            found.append(f"chat {chat}: {text!r} sent {len(workers)} times, by workers {workers}")
        if strange:
            found.append(f"chat {chat}: unexpected {strange}")
        firsts = list(dict.fromkeys(texts))  # each answer's first sending, in order
        in_order = [t for t in wanted if t in counts]
        if [t for t in firsts if t in wanted] != in_order:
            found.append(f"chat {chat}: out of order: sent {firsts}, said {in_order}")
    return found


def verdict(
    what: str,
    chats: Mapping[int, Sequence[Sent]],
    expected: Mapping[int, Sequence[str]],
    *,
    extra: Sequence[str] = (),
) -> str | None:
    """None when every chat got exactly its expected answers in order; else a failure message
    with counts, each problem (the first 30) and the chats concerned."""
    found = [*extra, *problems(chats, expected)]
    if not found:
        return None
    total = sum(len(v) for v in expected.values())
    sent = sum(len(chats.get(c, [])) for c in expected)
    by_worker = Counter(s.worker for c in expected for s in chats.get(c, []))
    bad = sorted({c for c in expected if any(f.startswith(f"chat {c}:") for f in found)})
    return (
        f"{what}: {len(found)} problem(s); {sent} answers sent for {total} expected "
        f"(by worker: {dict(sorted(by_worker.items(), key=str))})\n"
        + "\n".join(found[:30])
        + ("\n..." if len(found) > 30 else "")
        + "\nchats concerned:\n"
        + describe(chats, bad[:10])
    )


async def redelivery_storm(
    cluster: Cluster, bot: Deployed, *, chats: int, messages: int, first_chat: int
) -> str | None:
    """`chats` chats send `messages` messages each, concurrently across chats and one after the
    other within a chat (the next once both deliveries of the previous got their 200); every
    update is delivered twice, at once, to two different workers (Telegram redelivering to
    another worker behind the load balancer). None when each message was answered exactly
    once and each chat's answers came in the order sent; else what went wrong."""
    chat_ids = [first_chat + k for k in range(chats)]
    refused: list[str] = []
    workers = cluster.alive
    assert len(workers) >= 2, "a storm needs two workers"

    async def talk(http: httpx.AsyncClient, k: int, chat: int) -> None:
        for n in range(messages):
            one = workers[(k + n) % len(workers)]
            other = workers[(k + n + 1) % len(workers)]
            body = update(chat, n)
            statuses = await asyncio.gather(
                cluster.post(http, one, bot, body), cluster.post(http, other, bot, body)
            )
            for worker, status in zip((one, other), statuses, strict=True):
                if status != 200:
                    refused.append(f"chat {chat}: message {n} got {status} from {worker}")

    limits = httpx.Limits(max_connections=2 * chats)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        await asyncio.gather(*(talk(http, k, chat) for k, chat in enumerate(chat_ids)))
    expected = {chat: [echo(chat, n) for n in range(messages)] for chat in chat_ids}
    # Telegram's pace in a private chat (one message a second) makes a chat's answers take
    # about `messages` seconds; the rest is margin for a loaded machine.
    answered = await cluster.wait_for_answers(bot, chats * messages, timeout_s=30 + 2 * messages)
    return verdict(
        f"redelivery storm over {len(workers)} workers ({chats} chats x {messages} messages, "
        "each delivered to two workers)",
        answered,
        expected,
        extra=refused,
    )
