"""What `/eval` says: a run started, its progress, its report (per-version scores, the rows
that changed between the first and the last version, the run's cost, the trend chart), the list
of a bot's runs, and its evaluation gate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.messages import Attachment, Field
from storage.tables import EvalGate, EvalResult, EvalRun
from studio.presenters import one_line, usd, when
from studio.replies import Answer

CHANGED_ROWS = 10  # shown in a report
_ANSWER_PREVIEW = 120
_REASON_PREVIEW = 160
_MARK = {"pass": "✓", "fail": "✗", "error": "!"}


def percent(score: float | None) -> str:
    """A 0..1 score as a percentage, with a decimal only when it has one: 72%, 79.5%."""
    if score is None:
        return "—"
    return f"{score * 100:.1f}".removesuffix(".0") + "%"


def version_name(version: dict[str, Any]) -> str:
    """ "v3 (staging)" for a version asked for by its environment; "v3", "draft" otherwise."""
    label, ref = str(version["label"]), version.get("ref")
    return f"{label} ({ref})" if ref in ("staging", "production") else label


def names(versions: Sequence[dict[str, Any]]) -> str:
    shown = [version_name(v) for v in versions]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def started(bot: str, run: EvalRun, rows: int) -> Answer:
    return Answer(
        f"Scoring {names(run.versions)} of *{bot}* on {run.dataset_name} ({rows:,} rows, "
        f"{run.total:,} answers) in the background: run {run.id}. I'll report here; carry on "
        "meanwhile."
    )


def progress(bot: str, done: int, total: int) -> Answer:
    return Answer(f"{bot} eval {done}/{total}…")


def _cost(amount: float, unpriced: int) -> str:
    if unpriced:
        return f"at least {usd(amount)} (a price is unknown)"
    return usd(amount)


def _run_cost(summary: Sequence[dict[str, Any]]) -> str:
    """The bot's turns and the judge's calls, over every version."""
    unpriced = sum(int(score["unpriced"]) for score in summary)
    return _cost(sum(float(score["cost_usd"]) for score in summary), unpriced)


def _latency(ms: float | None) -> str:
    if ms is None:
        return "p50 —"
    return f"p50 {ms / 1000:.2f} s" if ms >= 1000 else f"p50 {ms:,.0f} ms"


def _version_value(score: dict[str, Any]) -> str:
    counts = f"{score['passed']} passed, {score['failed']} failed, {score['errors']} errors"
    cost = _cost(float(score["cost_usd"]), int(score["unpriced"]))
    return f"{percent(score['score'])} · {counts} · {_latency(score['p50_ms'])} · {cost}"


def _changed(run: EvalRun, results: Sequence[EvalResult]) -> list[str]:
    """Rows whose outcome differs between the first and the last version of the run."""
    if len(run.versions) < 2:
        return []
    first, last = str(run.versions[0]["label"]), str(run.versions[-1]["label"])
    by_row: dict[str, dict[str, EvalResult]] = {}
    for result in results:
        by_row.setdefault(result.row_id, {})[result.version] = result
    lines: list[str] = []
    changed = [
        (row, pair[first], pair[last])
        for row, pair in by_row.items()
        if first in pair and last in pair and pair[first].outcome != pair[last].outcome
    ]
    for row, before, after in changed[:CHANGED_ROWS]:
        lines.append(f"• row {row}: {before.outcome} → {after.outcome}")
        for label, result in ((first, before), (last, after)):
            said = one_line(result.answer, _ANSWER_PREVIEW) if result.answer else "(no answer)"
            lines.append(f"   {label}: “{said}”{_why(result)}")
    if len(changed) > CHANGED_ROWS:
        lines.append(f"…and {len(changed) - CHANGED_ROWS} more (`GET …/evals/{run.id}` lists all)")
    if changed:
        lines.insert(0, f"Changed rows ({first} → {last}):")
    return lines


def _why(result: EvalResult) -> str:
    reasons = [c["reason"] for c in result.checks if c.get("outcome") != "pass" and c["reason"]]
    return f" — {one_line(reasons[0], _REASON_PREVIEW)}" if reasons else ""


def report(bot: str, run: EvalRun, results: Sequence[EvalResult], chart: bytes | None) -> Answer:
    """A run's report: the scores of a finished run, or where a running or failed one is."""
    header = f"*{bot}* on {run.dataset_name}: run {run.id}"
    if run.status == "running":
        return Answer(f"{header} is running: {run.done:,}/{run.total:,} answers scored so far.")
    if run.status != "done" or run.summary is None:
        return Answer(f"{header} failed: {run.error or 'it did not finish'}.")
    rows = run.total // max(len(run.versions), 1)
    lines = [f"{header}, {rows:,} rows, {len(run.versions)} version(s)"]
    fields = tuple(
        Field(label=version_name(version), value=_version_value(score))
        for version, score in zip(run.versions, run.summary, strict=True)
    )
    if any(score["errors"] for score in run.summary):
        lines.append("Rows that could not be scored (errors) count as 0.")
    lines += _changed(run, results)
    lines.append(f"Run cost: {_run_cost(run.summary)}")
    image = None
    if chart is not None:
        image = Attachment(name=f"{bot}-eval-{run.id}.png", mime="image/png", data=chart)
    return Answer(text="\n".join(lines), fields=fields, file=image)


def failed(bot: str, run_id: int) -> Answer:
    return Answer(f"The evaluation of {bot} (run {run_id}) failed on our side (it is logged).")


def run_list(bot: str, runs: Sequence[EvalRun]) -> Answer:
    if not runs:
        return Answer(f"*{bot}* has no evaluation runs yet: `/eval {bot}` starts one.")
    lines = [f"*{bot}* evaluation runs, newest first:"]
    for run in runs:
        if run.status == "done" and run.summary:
            scores = ", ".join(
                f"{version_name(v)} {percent(s['score'])}"
                for v, s in zip(run.versions, run.summary, strict=True)
            )
            state = f"{scores} · {_run_cost(run.summary)}"
        elif run.status == "running":
            state = f"running {run.done:,}/{run.total:,}"
        else:
            state = f"failed: {one_line(run.error or 'it did not finish', _REASON_PREVIEW)}"
        lines.append(
            f"• {run.id} · {run.dataset_name} · {state} · {run.started_by}, {when(run.started_at)}"
        )
    lines.append(f"One report: `/eval {bot} show ID`.")
    return Answer("\n".join(lines))


def gate(bot: str, found: EvalGate | None) -> Answer:
    if found is None:
        return Answer(
            f"*{bot}* has no evaluation gate: promotions need only its tests. Set one: "
            f"`/eval {bot} gate DATASET 80%`."
        )
    return Answer(
        f"*{bot}* promotions need an evaluation on {found.dataset} scoring at least "
        f"{percent(found.min_score)} (set by {found.updated_by}, {when(found.updated_at)}). "
        f"Remove it: `/eval {bot} gate off`."
    )


def gate_set(bot: str, found: EvalGate) -> Answer:
    return Answer(
        f"*{bot}* promotions (to production always; to staging unless an owner forces it) now "
        f"need an evaluation of exactly what is promoted on {found.dataset}'s current rows "
        f"scoring at least {percent(found.min_score)}. Score the draft: "
        f"`/eval {bot} {found.dataset} draft`."
    )


def gate_removed(bot: str, had: EvalGate | None) -> Answer:
    if had is None:
        return Answer(f"Nothing changed: *{bot}* has no evaluation gate.")
    return Answer(f"*{bot}* promotions no longer need an evaluation on {had.dataset}.")
