"""Prometheus metrics, served at `GET /metrics`. Labels are bounded (channel kinds, outcomes,
event and error kinds, and bot ids for the per-bot counters: one series per bot that answered
since the process started): never bot names, free text, user or conversation ids.

- Turns: `studio_turns_total` and `studio_turn_seconds` (by channel), `studio_llm_errors_total`
  (by error kind), `studio_duplicate_deliveries_total` (redeliveries ignored, by channel).
- Platforms: `studio_sends_total` (replies sent, by channel and outcome) and
  `studio_platform_rate_limited_total` (429s received, by channel: `slack`, `telegram` for the
  generated bots, `telegram-studio` for the Studio's own bot).
- Handoffs: `studio_handoffs_total` by event (`handed`, `resumed`, `timeout`, `reset`).
- Scheduler: `studio_schedule_fires_total` by kind (`schedule`, `report`, `followup`,
  `trigger`) and outcome (`sent`, `skipped`, `failed`).
- Per bot (live turns): `studio_tokens_total` (by bot and kind: `prompt`, `completion`),
  `studio_cost_usd_total` and `studio_unknown_cost_turns_total` (turns on an unpriced model).
- Online evaluation: `studio_online_judged_total` (by outcome), `studio_online_dropped_total`.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TURNS = Counter("studio_turns_total", "Turns answered", ["channel", "outcome"])
TURN_SECONDS = Histogram(
    "studio_turn_seconds",
    "Time from a message reaching the runtime to its reply being stored",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LLM_ERRORS = Counter("studio_llm_errors_total", "Model calls that failed after retries", ["kind"])
DUPLICATES = Counter(
    "studio_duplicate_deliveries_total", "Redelivered messages ignored", ["channel"]
)
SENDS = Counter("studio_sends_total", "Replies sent to platforms", ["channel", "outcome"])
TOKENS = Counter(
    "studio_tokens_total",
    "Model tokens used by live turns (prompt or completion), per bot",
    ["bot", "kind"],
)
COST = Counter(
    "studio_cost_usd_total",
    "What live turns' model calls cost in US dollars, per bot (calls of unknown cost add 0; "
    "studio_unknown_cost_turns_total counts those turns)",
    ["bot"],
)
UNKNOWN_COST = Counter(
    "studio_unknown_cost_turns_total",
    "Live turns whose cost is unknown (a model litellm has no price for), per bot",
    ["bot"],
)
RATE_LIMITED = Counter(
    "studio_platform_rate_limited_total",
    "Rate-limit answers (HTTP 429 with Retry-After / retry_after) received from a platform's "
    "API, each once, whether or not a retry followed",
    ["channel"],
)
HANDOFFS = Counter(
    "studio_handoffs_total",
    "Conversations handed to people of the team (handed) and given back to the bot: by a "
    "person (resumed), for want of an answer (timeout), or by the end user starting over (reset)",
    ["event"],
)
SCHEDULE_FIRES = Counter(
    "studio_schedule_fires_total",
    "Occurrences of proactive work (a schedule's run, a stats report, a follow-up, a trigger) "
    "by how they ended: sent, skipped (on purpose: missed while the service was down, a "
    "conversation handed to a person, a follow-up no longer due), or failed",
    ["kind", "outcome"],
)
ONLINE_JUDGED = Counter(
    "studio_online_judged_total",
    "Live answers judged by online evaluation (scored, flagged, or failed: no grade)",
    ["outcome"],
)
ONLINE_DROPPED = Counter(
    "studio_online_dropped_total",
    "Live answers sampled for online evaluation but not judged: its queue was full",
)
