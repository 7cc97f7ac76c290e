"""WhatsApp channel: webhook-to-answer throughput against a hand-written FastAPI handler.

Processes on loopback: the zero-latency model (`bench.llm_server`), a fake Graph API
(`bench.whatsapp_server`, counting answers per phone number and recipient with their arrival
time), the platform (`main.py serve`, a bot with history 10 deployed through REST on its own
phone-number id, token and app secret; `STUDIO_WHATSAPP_API_URL` at the fake) and
`bench/baseline_whatsapp.py` (FastAPI + litellm + httpx: signature checked, JSON parsed, model
asked, answer posted; no storage). A message is a person's text in Meta's webhook shape
(`tests.fakes.meta_payloads`: a fresh wamid each, now as its timestamp), posted signed with
`X-Hub-Signature-256` to the side's `/whatsapp/{deployment_id}`; it is done when its answer
reaches `POST /{phone-number-id}/messages` at the fake.

The load is bench_telegram's, so the two channels' figures compare: CONCURRENCY messages in
flight over CHATS end users per side (one message in flight per person, people taken in turn,
each person's conversation started once before anything is timed), WARMUP_S + MEASURE_S per
phase, the sides taking turns ABBAABBA so that linear drift on a shared machine cancels. The
fake's own CPU during the measured phases is reported, to show it is not what limits either side.
"""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.bench_telegram import (
    ANSWER_WAIT_S,
    CHATS,
    CONCURRENCY,
    HISTORY,
    MEASURE_S,
    SATURATION,
    WARMUP_S,
)
from bench.common import (
    HOST,
    Child,
    Figure,
    Report,
    connections,
    fake_server,
    free_port,
    mean,
    model_server,
    wait_http,
)
from bench.load import (
    WebhookSide,
    baseline_server,
    cpu_figure,
    deploy_bench_bot,
    first_answers,
    platform_server,
    prime,
    rate_figure,
    ratio,
    webhook_phase,
)
from tests.fakes.meta_payloads import dumps, signed_headers, wa_text, whatsapp_payload

# A = platform, B = baseline, four phases each: each letter's positions add up to the same
# (0+3+4+7 = 1+2+5+6), so linear drift cancels.
ORDER = "ABBAABBA"
GRAPH_VERSION = "v21.0"
PLATFORM_PHONE = "106540352200001"  # phone-number ids: each side's answers are counted apart
BASELINE_PHONE = "106540352200002"
PLATFORM_TOKEN = "EAABenchPlatformToken0123456789"
BASELINE_TOKEN = "EAABenchBaselineToken0123456789"
PLATFORM_SECRET = "0123456789abcdef0123456789abcdef"  # app secrets: 32 hex digits, as Meta's
BASELINE_SECRET = "fedcba9876543210fedcba9876543210"
PLATFORM_PEOPLE = 15_550_100_000  # the wa_id of the platform's first end user
BASELINE_PEOPLE = 15_550_200_000
# Unloaded: start-up ~10 s, priming 2 x ~5 s, throughput 8 x 5 s.
BUDGET_S = 10 + 10 + len(ORDER) * (WARMUP_S + MEASURE_S)
FIGURES = (
    "whatsapp_throughput_ratio",
    "whatsapp_platform_mps",
    "whatsapp_baseline_mps",
    "whatsapp_platform_cpu_ms_per_message",
    "whatsapp_baseline_cpu_ms_per_message",
    "whatsapp_fake_graph_cpu_share",
    "whatsapp_platform_errors",
    "whatsapp_baseline_errors",
)


@dataclass(slots=True, kw_only=True)
class Side(WebhookSide):
    """One side of the comparison: its webhook, its phone number at the fake, its end users (a
    conversation each), and what it did."""

    phone: str
    app_secret: str
    people: int  # the wa_id of its first end user

    def request(self, slot: int) -> tuple[bytes, dict[str, str]]:
        text = f"question {self.sent}: how do refunds work?"
        message = wa_text(text, wa_id=str(self.people + slot))
        body = dumps(whatsapp_payload(message, phone_number_id=self.phone))
        return body, signed_headers(body, self.app_secret)

    def who(self) -> dict[str, str]:
        return {"phone": self.phone}

    def conversation(self, slot: int) -> dict[str, str]:
        return {"to": str(self.people + slot)}

    def missed(self, slot: int, wait_s: float) -> str:
        return f"no answer to {self.people + slot} in {wait_s:g} s"


def _start(stack: ExitStack, tmp: Path, llm_base: str, graph: str) -> tuple[Child, str, Child, str]:
    """The platform and the baseline, each on a free port: (process, root URL) of each."""
    platform_port, baseline_port = free_port(), free_port()
    platform = platform_server(
        stack,
        tmp,
        platform_port,
        data="platform",
        STUDIO_LLM_API_BASE=llm_base,
        STUDIO_WHATSAPP_API_URL=graph,
    )
    baseline = baseline_server(
        stack,
        tmp,
        "bench.baseline_whatsapp",
        baseline_port,
        BENCH_LLM_BASE=llm_base,
        BENCH_WHATSAPP_API=graph,
        BENCH_WHATSAPP_TOKEN=BASELINE_TOKEN,
        BENCH_WHATSAPP_APP_SECRET=BASELINE_SECRET,
        OPENAI_API_KEY="sk-bench",
    )
    return platform, f"http://{HOST}:{platform_port}", baseline, f"http://{HOST}:{baseline_port}"


# -- the module --------------------------------------------------------------------------------


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-whatsapp-")))
        llm, llm_base = await model_server(stack, tmp)
        fake, fake_url = await fake_server(stack, tmp, "bench.whatsapp_server", "graph")
        graph = f"{fake_url}/{GRAPH_VERSION}"
        platform, base, baseline, baseline_base = _start(stack, tmp, llm_base, graph)
        await wait_http(f"{base}/healthz", platform)
        await wait_http(f"{baseline_base}/healthz", baseline)
        key = (tmp / "platform" / "local.key").read_text().strip()
        # Deployed on PLATFORM_PHONE: its set-up reads the phone number at the fake.
        deployment = await deploy_bench_bot(
            base,
            key,
            HISTORY,
            {
                "channel": "whatsapp",
                "target": PLATFORM_PHONE,
                "token": PLATFORM_TOKEN,
                "app_secret": PLATFORM_SECRET,
            },
        )
        a = Side(
            "platform",
            f"{base}/whatsapp/{deployment}",
            platform,
            fake_url,
            CHATS,
            ANSWER_WAIT_S,
            phone=PLATFORM_PHONE,
            app_secret=PLATFORM_SECRET,
            people=PLATFORM_PEOPLE,
        )
        b = Side(
            "baseline",
            f"{baseline_base}/whatsapp/bench",
            baseline,
            fake_url,
            CHATS,
            ANSWER_WAIT_S,
            phone=BASELINE_PHONE,
            app_secret=BASELINE_SECRET,
            people=BASELINE_PEOPLE,
        )
        shares: list[float] = []
        async with aiohttp.ClientSession(connector=connections(CONCURRENCY * 4)) as http:
            await first_answers((a, b), http)  # both answer before anything is timed
            report.begin("priming the conversations")
            started = time.monotonic()
            # Every person has a conversation before anything is timed (the first message, sent
            # before, came from person 0).
            await prime(lambda: a.event(http), CHATS - 1, CONCURRENCY)
            mps = CHATS / (time.monotonic() - started)
            report.needs(
                CHATS / mps + len(ORDER) * (WARMUP_S + MEASURE_S),
                f"the platform primed {mps:.0f} conversations/s",
            )
            await prime(lambda: b.event(http), CHATS - 1, CONCURRENCY)
            report.begin("the throughput phases")
            for letter in ORDER:
                side = a if letter == "A" else b
                phase = await webhook_phase(side, http, SATURATION, fake=fake)
                side.record(phase)
                shares.append(phase.fake_share or 0.0)
                print(
                    f"# {letter} {side.name}: {phase.rate:.1f} messages/s, fake Graph CPU "
                    f"{phase.fake_share:.0%} of a core",
                    file=sys.stderr,
                    flush=True,
                )
            report.add(*_throughput_figures(a, b, shares))
            counts = {side.name: await side.answers(http) for side in (a, b)}
        print(
            f"# CPU s in all: llm {llm.cpu_seconds():.1f}, fake Graph {fake.cpu_seconds():.1f}, "
            f"platform {platform.cpu_seconds():.1f}, baseline {baseline.cpu_seconds():.1f}",
            file=sys.stderr,
            flush=True,
        )
    report.add(*(_errors(side, counts.get(side.name, {})) for side in (a, b)))


def _throughput_figures(a: Side, b: Side, shares: list[float]) -> list[Figure]:
    how = (
        f"{CONCURRENCY} signed webhook posts (a text message each, Meta's shape) in flight (sent, "
        f"not yet answered) over {CHATS} end users per side, at most one per person, each "
        f"person's conversation started once before (bot history {HISTORY}, every turn stored; "
        "the baseline, FastAPI + litellm + httpx, checks the signature, sends system + user "
        "only and stores nothing); answers counted at the fake Graph API's "
        f"POST /{{phone-number-id}}/messages per phone number, {WARMUP_S:g} s warm-up + "
        f"{MEASURE_S:g} s measured per phase, phases {ORDER} (A platform, B baseline); the "
        "load of telegram_throughput_ratio"
    )
    figures = [Figure("whatsapp_throughput_ratio", ratio(a.rates, b.rates), "", ">= 0.8", how)]
    for side in (a, b):
        figures.append(
            rate_figure(
                f"whatsapp_{side.name}_mps",
                side.rates,
                "messages/s",
                "saturation: answers sent per second, phases {phases}",
            )
        )
    for side in (a, b):
        figures += cpu_figure(
            f"whatsapp_{side.name}_cpu_ms_per_message",
            side.cpu,
            "server process user+sys CPU during measured throughput phases / answers sent",
        )
    figures.append(
        Figure(
            "whatsapp_fake_graph_cpu_share",
            round(max(shares), 3),
            "",
            "",
            "the fake Graph API's CPU (user+sys) / wall time during a measured phase, the most "
            f"of any phase (mean {mean(shares):.3f}; 1 = a whole core: it would be the "
            "bottleneck); it also serves the load generator's /wait for every message",
        )
    )
    return figures


def _errors(side: Side, seen: dict[str, int]) -> Figure:
    # Answered twice: more answers at the fake than messages the webhook accepted.
    twice = max(0, seen.get("answers", 0) - (side.sent - side.bad_acks))
    return Figure(
        f"whatsapp_{side.name}_errors",
        side.errors + twice,
        "",
        "<= 0",
        f"{side.bad_acks} non-200 webhook answers + {side.missing} answers not sent within "
        f"{ANSWER_WAIT_S:g} s + {twice} answered twice, of {side.sent} messages sent; the fake "
        f"saw {seen.get('sends', 0)} sends, {seen.get('other', 0)} not the answer"
        + (f"; first: {side.first_error[:120]}" if side.first_error else ""),
    )
