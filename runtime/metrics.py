"""Prometheus metrics. Labels are bounded (channel kinds, outcomes, error kinds): no bot names."""

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
ONLINE_JUDGED = Counter(
    "studio_online_judged_total",
    "Live answers judged by online evaluation (scored, flagged, or failed: no grade)",
    ["outcome"],
)
ONLINE_DROPPED = Counter(
    "studio_online_dropped_total",
    "Live answers sampled for online evaluation but not judged: its queue was full",
)
