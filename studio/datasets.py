"""`/dataset`: a bot's datasets, the rows `/eval` scores versions on.

A dataset is made of production's last answered turns (each with the conversation before it and
the answer given then, masked when the production version's PII guard is on), of the draft's
tests, of a CSV file (shared with the Studio or posted by REST), of reviewed answers
(`add_turns`, for `/review`) or row by row. Its content changes as a whole: every change is
written with its content hash, kept as a snapshot, and audited. Viewers list and read datasets;
editors change them, except the one the bot's evaluation gate names: admins set the gate, so
only they change or remove its dataset. REST (`adapters/web/datasets_api.py`) calls the same
operations.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from builders.dataset import (
    DATASET_NAME,
    MAX_HISTORY,
    MAX_ROWS,
    DatasetContent,
    DatasetRow,
    Evaluator,
    EvaluatorKind,
    HistoryMessage,
    name_from,
    regex_problems,
    rows_from_tests,
)
from builders.dataset_csv import MAX_CSV_BYTES, CsvError, rows_from_csv
from builders.spec import MAX_DB_INT, MAX_TURN_CHARS, BotSpec
from runtime.channel import SendError
from runtime.messages import FileRef
from runtime.net import format_size
from runtime.turn.pii import mask_pii
from storage import datasets as dataset_store
from storage.bots import BotRepository
from storage.datasets import AnsweredTurn, DatasetRepository, content_of
from storage.evals import EvalRepository
from storage.tables import Dataset
from studio.commands import (
    Command,
    DatasetAdd,
    DatasetEvaluate,
    DatasetExpect,
    DatasetFromLast,
    DatasetFromTests,
    DatasetList,
    DatasetRemove,
    DatasetShow,
)
from studio.errors import ConflictError, InvalidError, NotFoundError, OperationError
from studio.operations import Operations, audit
from studio.presenters import one_line, plural, short_hash, usd, when
from studio.replies import Answer
from studio.roles import Caller, Role
from studio.views import Timestamp

# A channel's way of downloading a shared file: (file, byte limit) -> its bytes.
Fetch = Callable[[FileRef, int], Awaitable[bytes]]

# Default dataset names. Not "production": `/eval BOT production` reads that as a version.
FROM_LAST, FROM_TESTS, ADDED = "recent", "tests", "main"
SHOWN_ROWS = 20  # `/dataset BOT show NAME` lists the first rows; REST gives them all
MAX_KEPT_CHARS = 20_000  # of a history message or a reference answer
_CLIP = 80
_CHANGING = "Changing a dataset"
_NAME = re.compile(DATASET_NAME)


class DatasetSummary(BaseModel):
    """A dataset as a list shows it."""

    name: str
    rows: int
    evaluators: list[str]  # the kinds that score every row
    source: str  # how it was made
    content_hash: str
    updated_by: str
    updated_at: Timestamp


class DatasetView(DatasetSummary):
    """A dataset with its content."""

    bot: str
    content: DatasetContent


@dataclass(frozen=True, slots=True)
class Saved:
    """A dataset as a change left it, and the content it had before (None: it is new)."""

    view: DatasetView
    before: DatasetContent | None
    masked: bool = False  # its new rows' texts were masked (production's PII guard)

    @property
    def replaced(self) -> str:
        """What an answer says of the rows a dataset had, when new rows replaced them."""
        if self.before is None:
            return ""
        kept = len(self.before.evaluators)
        evaluators = ""
        if kept:
            evaluators = "; its evaluator stays" if kept == 1 else f"; its {kept} evaluators stay"
        return f" It replaced the {plural(len(self.before.rows), 'row')} it had{evaluators}."


Edit = Callable[[DatasetContent | None], DatasetContent]


class DatasetFeature:
    """What `/dataset` does, for the engine (which resolves the bot), `/review` (`add_turns`)
    and REST."""

    def __init__(self, *, ops: Operations) -> None:
        self.ops = ops

    async def run(self, caller: Caller, bot: str, command: Command) -> Answer:
        match command:
            case DatasetFromLast():
                saved = await self.from_last(caller, bot, count=command.count, name=command.dataset)
                return _from_last(saved, command.count)
            case DatasetFromTests():
                saved = await self.from_tests(caller, bot, name=command.dataset)
                return _from_tests(saved)
            case DatasetAdd():
                saved = await self.add_row(
                    caller,
                    bot,
                    said=command.input,
                    kind=command.kind,
                    value=command.value,
                    name=command.dataset,
                )
                return _row_added(saved)
            case DatasetList():
                name, summaries = await self.summaries(caller, bot)
                return _list(name, summaries)
            case DatasetShow():
                return _show(await self.view(caller, bot, command.dataset))
            case DatasetExpect():
                saved = await self.expect(
                    caller, bot, command.dataset, command.row, command.value, kind=command.kind
                )
                return _expected(saved, command.row)
            case DatasetEvaluate():
                return await self._evaluate(caller, bot, command)
            case DatasetRemove():
                gone = await self.remove(caller, bot, command.dataset)
                return Answer(
                    f"Removed the dataset *{gone.name}* of *{gone.bot}* "
                    f"({plural(gone.rows, 'row')}); evaluation runs on it stay."
                )
        raise AssertionError(f"not a dataset command: {command!r}")

    # -- reading (any member) --------------------------------------------------------------------

    async def summaries(self, caller: Caller, bot: str) -> tuple[str, list[DatasetSummary]]:
        """The bot's name and its datasets, by name."""
        async with self.ops.db.read() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            assert row.id is not None
            found = await DatasetRepository(session).for_bot(row.id)
        return row.name, [_summary(dataset) for dataset in found]

    async def view(self, caller: Caller, bot: str, name: str) -> DatasetView:
        async with self.ops.db.read() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            dataset = await _known(DatasetRepository(session), row.id, row.name, name)
        return _view(row.name, dataset)

    # -- making datasets (editors) ---------------------------------------------------------------

    async def from_last(
        self, caller: Caller, bot: str, *, count: int, name: str | None = None
    ) -> Saved:
        """A dataset (default `recent`) of production's last `count` answered turns; an
        existing one gets these rows in place of its own (its evaluators stay)."""
        caller.require(Role.EDITOR, "Making a dataset")
        dataset = _name(name or FROM_LAST)
        bot_id, bot_name, spec = await self._production(caller, bot, needed=True)
        async with self.ops.db.read_conn() as conn:
            turns = await dataset_store.last_answered(
                conn, bot_id, env="production", count=count, history=_window(spec)
            )
        if not turns:
            raise ConflictError(
                f"{bot_name} has answered no one in production yet: there is nothing to make a "
                f"dataset of (/dataset {bot_name} from-tests uses its tests)"
            )
        masked = spec.guardrails.pii
        rows = await _rows(turns, mask=masked, source=_conversation)
        saved = await self._write(
            caller,
            bot_name,
            dataset,
            lambda before: _content(_evaluators(before), rows),
            action="dataset.from_last",
            source=f"production's last {plural(len(rows), 'turn')}",
            replaces=True,
            bot_id=bot_id,
        )
        return replace(saved, masked=masked)

    async def from_tests(self, caller: Caller, bot: str, *, name: str | None = None) -> Saved:
        """A dataset (default `tests`) of the draft's test cases; an existing one gets these
        rows in place of its own (its evaluators stay)."""
        caller.require(Role.EDITOR, "Making a dataset")
        dataset = _name(name or FROM_TESTS)
        draft = await self.ops.draft(caller, bot)
        if not draft.spec.tests:
            raise ConflictError(
                f"{draft.name}'s draft has no tests to make a dataset of: "
                f'/test {draft.name} add "INPUT" expect contains "TEXT" adds one'
            )
        rows = rows_from_tests(list(draft.spec.tests))
        return await self._write(
            caller,
            draft.name,
            dataset,
            lambda before: _content(_evaluators(before), rows),
            action="dataset.from_tests",
            source=f"the draft's tests (revision {draft.revision})",
            replaces=True,
            bot_id=draft.bot_id,
        )

    async def add_row(
        self,
        caller: Caller,
        bot: str,
        *,
        said: str,
        kind: EvaluatorKind,
        value: str,
        name: str | None = None,
    ) -> Saved:
        """One row at the end of a dataset (default `main`; made when it does not exist): the
        input `said`, expected to do `value` as `kind` checks it."""
        caller.require(Role.EDITOR, _CHANGING)

        def edit(before: DatasetContent | None) -> DatasetContent:
            rows = before.rows if before is not None else []
            if len(rows) >= MAX_ROWS:
                raise InvalidError(_full(dataset))
            row = _valid_row(
                {
                    "id": before.next_row_id() if before is not None else 1,
                    "turns": [said],
                    "expected": value,
                    "evaluators": [{"kind": kind}],
                    "source": f"added by {caller.identity}"[:200],
                }
            )
            return _content(_evaluators(before), [*rows, row])

        dataset = _name(name or ADDED)
        return await self._write(
            caller, bot, dataset, edit, action="dataset.add", source="rows added by hand"
        )

    async def put(self, caller: Caller, bot: str, name: str, content: DatasetContent) -> Saved:
        """A dataset's whole content, as given (REST): made, or replaced."""
        caller.require(Role.EDITOR, _CHANGING)
        return await self._write(
            caller,
            bot,
            _name(name),
            lambda _: content,
            action="dataset.put",
            source="content sent by REST",
            replaces=True,
        )

    async def import_csv(
        self, caller: Caller, bot: str, name: str, data: bytes, *, source: str
    ) -> Saved:
        """A dataset of a CSV file's rows; an existing one gets them in place of its own (its
        evaluators stay). A file with any problem changes nothing."""
        caller.require(Role.EDITOR, "Importing a dataset")
        dataset = _name(name)
        try:
            rows = await asyncio.to_thread(rows_from_csv, data)
        except CsvError as exc:
            raise InvalidError(f"{exc}; nothing was imported") from None
        return await self._write(
            caller,
            bot,
            dataset,
            lambda before: _content(_evaluators(before), rows),
            action="dataset.import",
            source=source[:200],
            replaces=True,
        )

    async def import_file(self, caller: Caller, bot: str, file: FileRef, fetch: Fetch) -> Answer:
        """A `.csv` file shared with the Studio becomes the dataset its name says."""
        name = name_from(PurePosixPath(file.name.replace("\\", "/")).stem)
        if name is None:
            return Answer(
                f"{one_line(file.name, 60)}: its name has no letter or digit to name a dataset "
                "by; rename it (golden.csv, say) and share it again."
            )
        if file.size is not None and file.size > MAX_CSV_BYTES:
            return Answer(
                f"{one_line(file.name, 60)} is {format_size(file.size)}; a dataset's CSV may "
                f"be {format_size(MAX_CSV_BYTES)}. Nothing was imported."
            )
        try:
            caller.require(Role.EDITOR, "Importing a dataset")
            data = await fetch(file, MAX_CSV_BYTES)
            saved = await self.import_csv(caller, bot, name, data, source=f"file {file.name}")
        except SendError as exc:
            return Answer(f"I could not download {one_line(file.name, 60)}: {exc}")
        except OperationError as exc:
            return Answer(f"{one_line(file.name, 60)}: {exc.message}")
        return _imported(saved, file.name)

    async def add_turns(
        self, caller: Caller, bot: str, dataset: str, message_ids: Sequence[int]
    ) -> Answer:
        """Rows made of the bot's answered turns whose answers have these ids (`/review BOT add`),
        at the end of `dataset` (made when new), each with the conversation before it, the
        answer given as its reference and "review ID" as its source. An id that names no
        answered turn of the bot refuses them all; a turn the dataset holds already is skipped."""
        caller.require(Role.EDITOR, _CHANGING)
        name = _name(dataset)
        wanted = list(dict.fromkeys(message_ids))
        bot_id, bot_name, spec = await self._production(caller, bot, needed=False)
        storable = [ident for ident in wanted if 0 < ident <= MAX_DB_INT]  # others name nothing
        async with self.ops.db.read_conn() as conn:
            found = await dataset_store.answered(conn, bot_id, storable, history=_window(spec))
        missing = [str(ident) for ident in wanted if ident not in found]
        if missing:
            raise NotFoundError(
                f"{bot_name} has no answered turn {', '.join(missing)}: nothing was added "
                f"(/review {bot_name} lists the ids)"
            )
        masked = spec.guardrails.pii
        rows = await _rows([found[ident] for ident in wanted], mask=masked, source=_review)
        added: list[DatasetRow] = []

        def edit(before: DatasetContent | None) -> DatasetContent:
            kept = before.rows if before is not None else []
            held = {row.source for row in kept}
            new = [row for row in rows if row.source not in held]
            if not new:
                raise ConflictError(f"*{name}* holds those turns already; nothing was added.")
            if len(kept) + len(new) > MAX_ROWS:
                raise InvalidError(_full(name))
            first = before.next_row_id() if before is not None else 1
            added[:] = [row.model_copy(update={"id": first + n}) for n, row in enumerate(new)]
            return _content(_evaluators(before), [*kept, *added])

        saved = await self._write(
            caller,
            bot_name,
            name,
            edit,
            action="dataset.add_turns",
            source="reviewed answers",
            bot_id=bot_id,
        )
        return _turns_added(replace(saved, masked=masked), added, len(rows) - len(added))

    # -- changing datasets (editors) -------------------------------------------------------------

    async def expect(
        self,
        caller: Caller,
        bot: str,
        name: str,
        row_id: int,
        value: str,
        *,
        kind: EvaluatorKind | None = None,
    ) -> Saved:
        """Set what row `row_id`'s answer must do. With `kind`, the row is checked by that
        evaluator (its own, in place of its others that read the expectation); without, by the
        evaluators that read it, or `contains` when none does."""
        caller.require(Role.EDITOR, _CHANGING)

        def edit(before: DatasetContent | None) -> DatasetContent:
            assert before is not None
            row = before.row(row_id)
            if row is None:
                raise NotFoundError(_no_row(name, before, row_id))
            evaluators = list(row.evaluators)
            reading = any(e.needs_value for e in before.evaluators_of(row))
            if kind is not None or not reading:
                evaluators = [e for e in evaluators if not e.needs_value]
                evaluators.append(Evaluator(kind=kind or "contains"))
            data = row.model_dump(mode="json")
            data |= {"expected": value, "evaluators": [e.model_dump() for e in evaluators]}
            changed = _valid_row(data)
            rows = [changed if r.id == row_id else r for r in before.rows]
            return _content(before.evaluators, rows)

        return await self._write(
            caller, bot, _name(name), edit, action="dataset.expect", existing=True
        )

    async def evaluate(
        self, caller: Caller, bot: str, name: str, evaluator: Evaluator
    ) -> tuple[Saved, Evaluator | None]:
        """Score every row of a dataset with `evaluator`, in place of its evaluator of that kind
        (returned, when there was one)."""
        caller.require(Role.EDITOR, _CHANGING)
        replaced: list[Evaluator] = []

        def edit(before: DatasetContent | None) -> DatasetContent:
            assert before is not None
            replaced[:] = [e for e in before.evaluators if e.kind == evaluator.kind]
            kept = [e for e in before.evaluators if e.kind != evaluator.kind]
            return _content([*kept, evaluator], before.rows)

        saved = await self._write(
            caller, bot, _name(name), edit, action="dataset.evaluate", existing=True
        )
        return saved, replaced[0] if replaced else None

    async def stop_evaluating(
        self, caller: Caller, bot: str, name: str, kind: EvaluatorKind
    ) -> Saved:
        """Stop scoring a dataset's rows with its evaluator of `kind`."""
        caller.require(Role.EDITOR, _CHANGING)

        def edit(before: DatasetContent | None) -> DatasetContent:
            assert before is not None
            kept = [e for e in before.evaluators if e.kind != kind]
            if len(kept) == len(before.evaluators):
                kinds = ", ".join(e.kind for e in before.evaluators) or "none"
                raise NotFoundError(f"*{name}* has no {kind} evaluator (its evaluators: {kinds})")
            return _content(kept, before.rows)

        return await self._write(
            caller, bot, _name(name), edit, action="dataset.evaluate", existing=True
        )

    async def remove(self, caller: Caller, bot: str, name: str) -> Removed:
        caller.require(Role.EDITOR, "Removing a dataset")
        async with self.ops.db.write() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            repo = DatasetRepository(session)
            dataset = await _known(repo, row.id, row.name, name)
            await _gated(session, caller, row.id, dataset.name, "removing")
            gone = Removed(bot=row.name, name=dataset.name, rows=_row_count(dataset))
            await repo.delete(dataset)
            await audit(
                session,
                caller,
                action="dataset.remove",
                target=row.name,
                before={"dataset": dataset.name, "rows": gone.rows, "hash": dataset.content_hash},
            )
        return gone

    async def _evaluate(self, caller: Caller, bot: str, command: DatasetEvaluate) -> Answer:
        if command.off:
            saved = await self.stop_evaluating(caller, bot, command.dataset, command.kind)
            view = saved.view
            return Answer(
                f"*{view.name}* of *{view.bot}* is no longer scored by {command.kind}. "
                f"{_scored_by(view.content)}"
            )
        try:
            evaluator = Evaluator(
                kind=command.kind,
                value=command.value,
                max_ms=command.max_ms,
                max_usd=command.max_usd,
                persona=command.persona,
                turns=command.turns,
            )
        except ValidationError as exc:
            raise InvalidError(_problem(exc)) from None
        saved, replaced = await self.evaluate(caller, bot, command.dataset, evaluator)
        return _evaluating(saved, evaluator, replaced)

    # -- helpers ---------------------------------------------------------------------------------

    async def _production(
        self, caller: Caller, bot: str, *, needed: bool
    ) -> tuple[int, str, BotSpec]:
        """The bot's id, name and the spec production runs (`needed`), or else its draft's."""
        async with self.ops.db.read() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            assert row.id is not None
            repo = BotRepository(session)
            pointer = (await repo.pointers(row.id)).get("production")
            version = await repo.version(row.id, pointer.number) if pointer else None
        if version is None and needed:
            raise ConflictError(
                f"{row.name} has no production version yet, so no real conversations: "
                f"/dataset {row.name} from-tests makes a dataset of its tests"
            )
        spec = version.spec if version is not None else row.draft
        return row.id, row.name, BotSpec.model_validate(spec)

    async def _write(
        self,
        caller: Caller,
        bot: str,
        name: str,
        edit: Edit,
        *,
        action: str,
        source: str = "",
        replaces: bool = False,
        bot_id: int | None = None,
        existing: bool = False,
    ) -> Saved:
        """Make the dataset's content from what it holds now (None: it is new; `existing`: it
        must exist) in one transaction, with its snapshot and audit event. `source` says how
        it was made: kept from when it was new, unless the new content `replaces` the old.
        `bot_id`: the bot whose data the content was made of, still the bot of that name."""
        async with self.ops.db.write() as session:
            row = await self.ops.owned_bot(session, caller, bot)
            assert row.id is not None
            if bot_id is not None and row.id != bot_id:
                raise ConflictError(f"{row.name} was replaced meanwhile; nothing was saved.")
            await _gated(session, caller, row.id, name, "changing")
            repo = DatasetRepository(session)
            found = await repo.locked(row.id, name)
            if found is None and existing:
                await _missing(repo, row.id, row.name, name)
            before = content_of(found) if found is not None else None
            content = edit(before)
            _storable(content)
            try:
                dataset = await repo.save(
                    team_id=caller.team_id,
                    bot_id=row.id,
                    name=name,
                    content=content,
                    actor=caller.identity,
                    source=source if found is None or replaces else None,
                )
            except IntegrityError:  # made by someone else at the same moment
                raise ConflictError(
                    f"{row.name}'s dataset {name} was made by someone else at the same moment; "
                    "nothing was saved. Say it again."
                ) from None
            await audit(
                session,
                caller,
                action=action,
                target=row.name,
                before=_counted(name, before) if before is not None else None,
                after=_counted(name, content),
            )
            return Saved(view=_view(row.name, dataset), before=before)


@dataclass(frozen=True, slots=True)
class Removed:
    """A removed dataset: whose, its name and how many rows went."""

    bot: str
    name: str
    rows: int


# -- pure helpers ----------------------------------------------------------------------------------


def _name(text: str) -> str:
    name = text.strip().lower()
    if not _NAME.fullmatch(name):
        raise InvalidError(
            f"'{one_line(text, 40)}' cannot name a dataset: use up to 40 lowercase letters, "
            "digits and '-', starting with a letter or digit"
        )
    if name in _RESERVED or _VERSION_WORD.fullmatch(name):
        raise InvalidError(
            f"'{name}' cannot name a dataset: `/eval` reads it as a version or an action; "
            "choose another name, e.g. golden"
        )
    return name


# What `/eval BOT …` reads as a version or an action rather than a dataset.
_RESERVED = frozenset({"draft", "staging", "production", "runs", "show", "gate", "online"})
_VERSION_WORD = re.compile(r"v?\d+")


async def _known(repo: DatasetRepository, bot_id: int | None, bot: str, name: str) -> Dataset:
    assert bot_id is not None
    wanted = name.strip().lower()
    found = await repo.get(bot_id, wanted) if _NAME.fullmatch(wanted) else None
    if found is not None:
        return found
    await _missing(repo, bot_id, bot, name)


async def _missing(repo: DatasetRepository, bot_id: int, bot: str, name: str) -> NoReturn:
    """Say that `bot` has no dataset `name`, and which it has."""
    names = [dataset.name for dataset in await repo.for_bot(bot_id)]
    if not names:
        raise NotFoundError(
            f"{bot} has no datasets yet: /dataset {bot} from-last 50 makes one of its real "
            "conversations"
        )
    raise NotFoundError(
        f"{bot} has no dataset '{one_line(name, 40)}'; its datasets: {', '.join(names)}"
    )


async def _gated(
    session: AsyncSession, caller: Caller, bot_id: int | None, name: str, doing: str
) -> None:
    """Only admins change or remove the dataset the bot's evaluation gate names: admins set the
    gate, and an editor could weaken or block it through its dataset."""
    assert bot_id is not None
    gate = await EvalRepository(session).gate(bot_id)
    if gate is not None and gate.dataset == name:
        caller.require(Role.ADMIN, f"*{name}* is the evaluation gate's dataset: {doing} it")


def _window(spec: BotSpec) -> int:
    """How many messages before a turn its row keeps: the bot's history window (exchanges of
    two messages), up to what a row may hold."""
    return min(spec.history * 2, MAX_HISTORY)


def _conversation(turn: AnsweredTurn) -> str:
    return f"conversation {turn.conversation_id}"


def _review(turn: AnsweredTurn) -> str:
    return dataset_store.review_source(turn.answer_id)


async def _rows(
    turns: list[AnsweredTurn], *, mask: bool, source: Callable[[AnsweredTurn], str]
) -> list[DatasetRow]:
    """Rows numbered from 1 of answered turns: the user's message as the turn, the messages
    before it as history, the answer as the reference (all masked when `mask`)."""

    def build() -> list[DatasetRow]:
        def kept(text: str, limit: int) -> str:
            return (mask_pii(text) if mask else text)[:limit]

        return [
            DatasetRow(
                id=number,
                turns=[kept(turn.question, MAX_TURN_CHARS)],
                history=[
                    HistoryMessage.model_validate(
                        {"role": role, "text": kept(text, MAX_KEPT_CHARS)}
                    )
                    for role, text in turn.history
                ],
                reference=kept(turn.answer, MAX_KEPT_CHARS),
                source=source(turn),
            )
            for number, turn in enumerate(turns, start=1)
        ]

    return await asyncio.to_thread(build)  # masking a few hundred conversations is CPU work


def _evaluators(content: DatasetContent | None) -> list[Evaluator]:
    return list(content.evaluators) if content is not None else []


def _content(evaluators: list[Evaluator], rows: list[DatasetRow]) -> DatasetContent:
    try:
        return DatasetContent(evaluators=evaluators, rows=rows)
    except ValidationError as exc:
        raise InvalidError(f"{_problem(exc)}; nothing was changed") from None


def _valid_row(data: dict[str, Any]) -> DatasetRow:
    try:
        return DatasetRow.model_validate(data)
    except ValidationError as exc:
        raise InvalidError(f"{_problem(exc)}; nothing was changed") from None


def _storable(content: DatasetContent) -> None:
    """What a model cannot check: regular expressions taken from rows, and NUL characters
    (PostgreSQL keeps none in text)."""
    problems = regex_problems(content)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidError(f"{problems[0]}{more}; nothing was changed")
    if any("\x00" in text for text in _texts(content)):
        raise InvalidError("the dataset would hold a NUL character; nothing was changed")


def _texts(content: DatasetContent) -> Iterator[str]:
    for evaluator in content.evaluators:
        yield from (evaluator.value or "", evaluator.persona or "")
    for row in content.rows:
        yield from row.turns
        yield from (message.text for message in row.history)
        yield from (row.expected or "", row.reference or "", row.source)
        yield from (evaluator.value or "" for evaluator in row.evaluators)


def _problem(exc: ValidationError) -> str:
    """A validation error in one line: where, then what."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    said = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {said}" if where else said


def _full(name: str) -> str:
    return f"*{name}* would have over {MAX_ROWS:,} rows, the most a dataset holds"


def _no_row(name: str, content: DatasetContent, row_id: int) -> str:
    ids = [row.id for row in content.rows]
    return f"*{name}* has no row {row_id} (its rows are {_ranges(ids)})"


def _ranges(ids: list[int]) -> str:
    """Row ids as runs: "1-5, 8, 10-12"."""
    runs: list[list[int]] = []
    for ident in sorted(ids):
        if runs and ident == runs[-1][1] + 1:
            runs[-1][1] = ident
        else:
            runs.append([ident, ident])
    shown = [str(a) if a == b else f"{a}-{b}" for a, b in runs[:8]]
    return ", ".join(shown) + (", …" if len(runs) > 8 else "")


def _counted(name: str, content: DatasetContent) -> dict[str, Any]:
    """A dataset in an audit event: its size and hash, never what people said."""
    return {
        "dataset": name,
        "rows": len(content.rows),
        "evaluators": [e.kind for e in content.evaluators],
        "hash": content.content_hash(),
    }


def _row_count(dataset: Dataset) -> int:
    rows = dataset.content.get("rows")
    return len(rows) if isinstance(rows, list) else 0


def _summary(dataset: Dataset) -> DatasetSummary:
    kinds = [str(e.get("kind")) for e in dataset.content.get("evaluators", [])]
    return DatasetSummary(
        name=dataset.name,
        rows=_row_count(dataset),
        evaluators=kinds,
        source=dataset.source,
        content_hash=dataset.content_hash,
        updated_by=dataset.updated_by,
        updated_at=dataset.updated_at,
    )


def _view(bot: str, dataset: Dataset) -> DatasetView:
    return DatasetView(**_summary(dataset).model_dump(), bot=bot, content=content_of(dataset))


# -- presenters ------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return f'"{one_line(text, _CLIP)}"'


def _evaluator(evaluator: Evaluator) -> str:
    """An evaluator in a few words."""
    kind = evaluator.kind
    if kind == "latency":
        return f"latency ≤ {evaluator.max_ms:,.0f} ms"
    if kind == "cost":
        return f"cost ≤ {usd(evaluator.max_usd or 0.0)}"
    if kind == "simulated":
        turns = f" for {plural(evaluator.turns, 'turn')}" if evaluator.turns else ""
        return (
            f"a simulated user {_quoted(evaluator.persona or '')}{turns}, the conversation "
            f"graded by {_quoted(evaluator.value or '')}"
        )
    if evaluator.value is not None:
        return f"{kind} {_quoted(evaluator.value)}"
    return f"{kind} (each row's expectation)"


def _scored_by(content: DatasetContent) -> str:
    if not content.evaluators:
        return "It has no evaluators of its own: each row is scored by its own."
    return "Every row is scored by " + " · ".join(map(_evaluator, content.evaluators)) + "."


def _unscorable(view: DatasetView) -> str:
    """What stands between the dataset and an evaluation, with the command that fixes it."""
    problems = view.content.unscorable()
    if not problems:
        return ""
    fix = f'/dataset {view.bot} expect {view.name} ROW "VALUE"'
    if not view.content.evaluators:  # one rubric could score every row
        fix += f' or /dataset {view.bot} evaluate {view.name} judge "RUBRIC"'
    need = "row needs" if len(problems) == 1 else "rows need"
    return (
        f" Before /eval can score it, {len(problems):,} {need} an expectation or evaluator ({fix})."
    )


def _masked(saved: Saved) -> str:
    if not saved.masked:
        return ""
    return " Emails, card and phone numbers are masked, as production's PII guard says."


def _rows_word(saved: Saved) -> str:
    return plural(len(saved.view.content.rows), "row")


def _from_last(saved: Saved, asked: int) -> Answer:
    view = saved.view
    rows = view.content.rows
    only = f" (only {len(rows)} were there)" if len(rows) < asked else ""
    history = max(len(row.history) for row in rows)
    return Answer(
        f"Made *{view.name}* of *{view.bot}*: {_rows_word(saved)} from production's last "
        f"answered turns{only}, each with the answer given then"
        + (f" and up to {history} messages before it" if history else "")
        + f".{_masked(saved)}{saved.replaced}{_unscorable(view)}"
    )


def _from_tests(saved: Saved) -> Answer:
    view = saved.view
    return Answer(
        f"Made *{view.name}* of *{view.bot}*: {_rows_word(saved)}, one per test case, each "
        f"expected to do what its test expects.{saved.replaced} /eval {view.bot} {view.name} "
        "scores versions on it."
    )


def _row_added(saved: Saved) -> Answer:
    view = saved.view
    row = view.content.rows[-1]
    made = "Made" if saved.before is None else "Added to"
    return Answer(
        f"{made} *{view.name}* of *{view.bot}*: row {row.id} {_quoted(row.turns[0])} → "
        f"{row.evaluators[0].kind} {_quoted(row.expected or '')} ({_rows_word(saved)} in all)."
    )


def _imported(saved: Saved, file: str) -> Answer:
    view = saved.view
    expecting = sum(1 for row in view.content.rows if row.expected is not None)
    return Answer(
        f"Imported {one_line(file, 60)} as *{view.name}* of *{view.bot}*: {_rows_word(saved)}, "
        f"{expecting} with an expectation.{saved.replaced}{_unscorable(view)}"
    )


def _turns_added(saved: Saved, added: list[DatasetRow], held: int) -> Answer:
    view = saved.view
    made = "Made" if saved.before is None else "Added to"
    ids = _ranges([row.id for row in added])
    there = f" ({held} {'was' if held == 1 else 'were'} there already)" if held else ""
    return Answer(
        f"{made} *{view.name}* of *{view.bot}*: {plural(len(added), 'row')} ({ids}) of "
        f"reviewed answers{there}, each with the conversation before it; "
        f"{_rows_word(saved)} in all.{_masked(saved)}{_unscorable(view)}"
    )


def _expected(saved: Saved, row_id: int) -> Answer:
    view = saved.view
    row = view.content.row(row_id)
    assert row is not None
    kinds = sorted({e.kind for e in view.content.evaluators_of(row) if e.needs_value})
    return Answer(
        f"Row {row_id} of *{view.name}* now expects {_quoted(row.expected or '')}, checked by "
        f"{' and '.join(kinds)}."
    )


def _evaluating(saved: Saved, evaluator: Evaluator, replaced: Evaluator | None) -> Answer:
    view = saved.view
    was = f" (in place of {_evaluator(replaced)})" if replaced else ""
    return Answer(
        f"*{view.name}* of *{view.bot}*: every row is now scored by {_evaluator(evaluator)}"
        f"{was}.{_unscorable(view)}"
    )


def _list(bot: str, summaries: list[DatasetSummary]) -> Answer:
    if not summaries:
        return Answer(
            f"*{bot}* has no datasets yet. /dataset {bot} from-last 50 makes one of production's "
            f"real conversations, /dataset {bot} from-tests one of its tests; a CSV file shared "
            "here (input, expected, evaluator) becomes one too."
        )
    lines = [f"*{bot}*'s datasets:"]
    for summary in summaries:
        kinds = ", ".join(summary.evaluators) or "no evaluators of its own"
        source = f" · {one_line(summary.source, 60)}" if summary.source else ""
        lines.append(
            f"• *{summary.name}*: {plural(summary.rows, 'row')} · {kinds}{source} · updated "
            f"{when(summary.updated_at)} by {summary.updated_by}"
        )
    return Answer("\n".join(lines))


def _row_lines(row: DatasetRow) -> list[str]:
    turns = " / ".join(_quoted(turn) for turn in row.turns)
    expected = _quoted(row.expected) if row.expected is not None else "no expectation yet"
    own = ", ".join(_evaluator(e) if not e.needs_value else e.kind for e in row.evaluators)
    lines = [f"#{row.id} {turns} → {expected}" + (f" ({own})" if own else "")]
    details = []
    if row.history:
        details.append(f"after {plural(len(row.history), 'message')}")
    if row.reference is not None:
        details.append(f"answered then: {_quoted(row.reference)}")
    if row.source:
        details.append(one_line(row.source, 40))
    if details:
        lines.append("   " + " · ".join(details))
    return lines


def _show(view: DatasetView) -> Answer:
    content = view.content
    source = f" · {one_line(view.source, 60)}" if view.source else ""
    lines = [
        f"*{view.name}* of *{view.bot}*: {plural(len(content.rows), 'row')}{source} · "
        f"`{short_hash(view.content_hash)}` · updated {when(view.updated_at)} by "
        f"{view.updated_by}",
        _scored_by(content),
    ]
    for row in content.rows[:SHOWN_ROWS]:
        lines += _row_lines(row)
    more = len(content.rows) - SHOWN_ROWS
    if more > 0:
        lines.append(
            f"…and {plural(more, 'more row')}: GET /api/v1/bots/{view.bot}/datasets/"
            f"{view.name} has them all."
        )
    return Answer("\n".join(lines))
