"""Schedules: one schedule of a bot on Telegram fanned out to 10,000 end users through a fake Bot
API that paces like Telegram, against a hand-written script sending at the same pace.

Telegram lets a bot send about 30 messages a second (and one a second to a private chat); the
platform's scheduler paces a fan-out per deployment at `Capabilities.broadcast_per_s`, 25 for
Telegram, below that. At those rates 10,000 messages take 400 s, so the bench scales both by 4:
the fake Bot API (`tests.fakes.telegram`, in a thread of this process) answers a bot's send
beyond PER_BOT_LIMIT in any second, or a chat's second message within a second, with Telegram's
429 "retry after N"; the platform paces at RATE (the same 5:6 headroom as 25:30). The figure is
whether the platform sustains the pace it allows itself, with no 429, and memory stays flat.

The platform (`bench/schedule_fanout.py`, a process of its own: `build_services` on SQLite)
writes the 10,000 end users' conversations into its database, then fires the schedule with
`Scheduler.run_due`: each message kept in its conversation and the outbox, and sent. Sends per
second are counted at the fake: accepted sends / (the last one's arrival - the fire). The
baseline (`bench/baseline_fanout.py`: bare aiogram, no storage) sends BASELINE_COUNT messages at
the same pace to the same fake, with its own token.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.bench_telegram import bot_token
from bench.common import PYTHON, Child, Figure, Report, base_env, child, wait_file
from tests.fakes.telegram import FakeTelegram

COUNT = 10_000  # end users of the schedule
RATE = 100.0  # the platform's pacing here (`broadcast_per_s`; Telegram's: 25)
PER_BOT_LIMIT = 120  # the fake's 429 limit per bot and second (Telegram's: 30)
BASELINE_COUNT = 2_000
FIRST_CHAT = 500_000_000  # as bench/schedule_fanout.py numbers its end users
BASELINE_FIRST_CHAT = 700_000_000
# Unloaded: start-up and set-up ~15 s, the fan-out COUNT / RATE, the baseline BASELINE / RATE.
BUDGET_S = 15 + COUNT / RATE + BASELINE_COUNT / RATE + 5
FIGURES = (
    "schedule_fanout_per_s",
    "schedule_fanout_limit_per_s",
    "schedule_fanout_of_limit",
    "schedule_fanout_vs_baseline",
    "schedule_fanout_baseline_per_s",
    "schedule_fanout_cpu_ms_per_send",
    "schedule_fanout_errors",
    "schedule_fanout_rss_before_mb",
    "schedule_fanout_rss_after_mb",
    "schedule_fanout_rss_peak_mb",
    "schedule_fanout_rss_growth_mb",
)


async def run(report: Report) -> None:
    platform_token, baseline_token = bot_token(900_001), bot_token(900_002)
    with (
        tempfile.TemporaryDirectory(prefix="bench-schedules-") as name,
        ExitStack() as stack,
        FakeTelegram(per_bot_per_s=PER_BOT_LIMIT, per_chat_per_s=1) as fake,
    ):
        tmp = Path(name)
        for token in (platform_token, baseline_token):
            fake.add_bot(token)
        report.begin(f"fan-out to {COUNT:,} end users at {RATE:g}/s")
        data = tmp / "data"
        data.mkdir()
        args = [fake.base_url, platform_token, str(RATE), str(COUNT)]
        platform = stack.enter_context(
            child(
                [PYTHON, "-m", "bench.schedule_fanout", str(data), *args],
                env=base_env(),
                log=tmp / "platform.log",
            )
        )
        found = await _result(platform, data / "result.json", report)
        sends = _accepted(fake, platform_token)
        throttled = [c for c in fake.throttled if c.token == platform_token]
        reached = {c.body["chat_id"] for c in sends}
        per_s = len(sends) / (max(c.at for c in sends) - found["fired_at"]) if sends else 0.0
        missing = COUNT - len(reached)
        errors = missing + int(found["failed"]) + len(throttled) + (len(sends) - len(reached))
        report.add(
            Figure(
                "schedule_fanout_per_s",
                round(per_s, 1),
                "sends/s",
                "",
                f"one schedule without a target to {COUNT:,} end users (a private chat each) of a "
                "bot deployed on Telegram, fired with Scheduler.run_due: each message kept in "
                "its conversation and the outbox and sent through aiogram; sendMessage accepted "
                "at the fake Bot API / (the last one's arrival - the fire); run "
                f"{found['status']}, {found['sent']} sent, {found['failed']} failed",
            ),
            Figure(
                "schedule_fanout_limit_per_s",
                RATE,
                "sends/s",
                "",
                f"the platform's pacing for Telegram (broadcast_per_s; 25 in production) set to "
                f"{RATE:g} for the bench; the fake Bot API answers 429 beyond {PER_BOT_LIMIT} "
                "sends of a bot in any second (Telegram: about 30) or a 2nd message to a "
                "private chat within a second, the same headroom as 25 to 30",
            ),
            Figure(
                "schedule_fanout_of_limit",
                round(per_s / RATE, 3),
                "",
                ">= 0.9",
                "schedule_fanout_per_s / schedule_fanout_limit_per_s: the pace the platform "
                "allows itself, sustained",
            ),
            Figure(
                "schedule_fanout_cpu_ms_per_send",
                round(found["cpu_s"] / max(1, len(sends)) * 1000, 2),
                "ms",
                "",
                "the platform process's CPU (user+sys) during run_due / sends",
            ),
            Figure(
                "schedule_fanout_errors",
                errors,
                "",
                "<= 0",
                f"{missing} end users not reached + {found['failed']} sends failed + "
                f"{len(throttled)} 429s from the fake + {len(sends) - len(reached)} sent twice",
            ),
            Figure(
                "schedule_fanout_rss_before_mb",
                round(found["rss_before_mb"], 1),
                "MB",
                "",
                f"platform RSS (VmRSS) after set-up, {COUNT:,} conversations in its database, "
                f"before the fire (conversations written in {found['inserted_s']:.1f} s)",
            ),
            Figure(
                "schedule_fanout_rss_after_mb",
                round(found["rss_after_mb"], 1),
                "MB",
                "",
                "the same once run_due returned",
            ),
            Figure(
                "schedule_fanout_rss_peak_mb",
                round(found["rss_peak_mb"], 1),
                "MB",
                "",
                "the most read during the fan-out (every 0.2 s)",
            ),
            Figure(
                "schedule_fanout_rss_growth_mb",
                round(found["rss_after_mb"] - found["rss_before_mb"], 1),
                "MB",
                "<= 20",
                f"RSS after - before the fan-out to {COUNT:,} (goal: 2 KB an end user at most): "
                f"{found['rss_halfway_mb'] - found['rss_before_mb']:.1f} MB in the first half of "
                f"the time, {found['rss_after_mb'] - found['rss_halfway_mb']:.1f} MB in the "
                "second; the audience is read in batches of 500",
            ),
        )

        report.begin(f"baseline: {BASELINE_COUNT:,} sends at {RATE:g}/s")
        out = tmp / "baseline.json"
        args = [fake.base_url, baseline_token, str(RATE), str(BASELINE_COUNT)]
        baseline = stack.enter_context(
            child(
                [PYTHON, "-m", "bench.baseline_fanout", *args, str(BASELINE_FIRST_CHAT), str(out)],
                env=base_env(),
                log=tmp / "baseline.log",
            )
        )
        base = await _result(baseline, out, report)
        base_sends = _accepted(fake, baseline_token)
        base_per_s = len(base_sends) / (max(c.at for c in base_sends) - base["started_at"])
        how = (
            f"bare aiogram sending {BASELINE_COUNT:,} messages (one per private chat) paced at "
            f"{RATE:g}/s, 16 under way, to the same fake; no storage; counted as the platform's"
        )
        report.add(
            Figure(
                "schedule_fanout_vs_baseline",
                round(per_s / base_per_s, 3),
                "",
                ">= 0.9",
                "schedule_fanout_per_s / schedule_fanout_baseline_per_s; " + how,
            ),
            Figure(
                "schedule_fanout_baseline_per_s",
                round(base_per_s, 1),
                "sends/s",
                "",
                f"{how}; {len(fake.throttled) - len(throttled)} 429s; CPU "
                f"{base['cpu_s'] / max(1, len(base_sends)) * 1000:.2f} ms per send",
            ),
        )


def _accepted(fake: FakeTelegram, token: str) -> list[Any]:
    """The sendMessage calls of `token` the fake answered (not refused with a 429)."""
    refused = {id(c) for c in fake.throttled}
    return [c for c in fake.calls_to("sendMessage", token) if id(c) not in refused]


async def _result(proc: Child, path: Path, report: Report) -> dict[str, Any]:
    """The JSON a child writes to `path` when it is done (the module's limit is the timeout)."""
    found: dict[str, Any] = json.loads(await wait_file(path, proc, timeout_s=report.limit_s))
    return found
