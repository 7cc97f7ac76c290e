"""The outcome of running a bot's test cases: what the runner produces, storage keeps (as JSON)
and presenters show."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["pass", "fail", "error"]


@dataclass(frozen=True, slots=True)
class CaseResult:
    number: int  # 1-based, as `/test BOT list` shows it
    input: str  # the last turn sent to the bot
    expect: str  # e.g. "contains 'refund'"
    outcome: Outcome  # error: the case could not be judged (provider failed, no judge model)
    answer: str  # the bot's actual last answer
    reason: str = ""  # why it failed or errored; empty when it passed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class TestReport:
    __test__ = False  # not a pytest class

    bot: str
    spec_hash: str  # the content hash of the draft that was tested
    results: tuple[CaseResult, ...]

    @property
    def passed(self) -> int:
        return sum(r.outcome == "pass" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.outcome != "pass" for r in self.results)

    @property
    def ok(self) -> bool:
        """Every case passed (no cases: nothing failed)."""
        return self.failed == 0
