"""The Studio: the builder bot every front talks to, mounted on the runtime as the built-in
deployment `studio` (ordering per conversation, dedupe and delivery come from the runtime).

A message becomes a typed command (the offline grammar, or the builder model's tool calls), the
command runs through the operations with the caller's role, and the outcome is presented as
neutral replies. Destructive or public commands wait for a stored confirmation first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from builders.spec import OFFLINE_MODEL, BotSpec
from builders.tokens import REDACTED, TOKEN_REFUSAL, redact_studio_input
from runtime.channel import DeployForm, SendError
from runtime.evaluation.online import OnlineEvaluator
from runtime.knowledge.extract import MAX_SOURCE_BYTES
from runtime.llm import LlmError, LlmGateway
from runtime.messages import (
    Address,
    Attachment,
    Button,
    FileRef,
    IncomingMessage,
    OutgoingMessage,
)
from runtime.net import too_big
from runtime.runtime import Runtime
from runtime.secrets import SecretVault
from runtime.tasks import settle
from studio import presenters
from studio.abtests import ABTEST_COMMANDS, AbTestFeature
from studio.address import (
    PULL_CHANNEL,
    studio_address,
    team_of,
)
from studio.bot_tests import BotTests, PreparedRun, RunElsewhere
from studio.commands import (
    COMMANDS,
    DATASET_COMMANDS,
    MAX_INPUT_CHARS,
    AbTestPromoteWinner,
    Command,
    Confirm,
    Delete,
    Deploy,
    Diff,
    FlowAdd,
    FlowAsk,
    FlowLink,
    FlowRemove,
    FlowSet,
    FlowShow,
    Help,
    History,
    Invite,
    Join,
    KnowledgeAdd,
    KnowledgeList,
    KnowledgeReindex,
    KnowledgeRemove,
    ListBots,
    ListDeployments,
    MemoryForget,
    MemorySet,
    MemoryShow,
    NewBot,
    Promote,
    Resume,
    Rollback,
    Route,
    SetField,
    SetRole,
    ShowBot,
    Stats,
    TestAdd,
    TestList,
    TestRemove,
    TestRun,
    ToolAdd,
    ToolAddMcp,
    ToolList,
    ToolRemove,
    TraceShow,
    TryBot,
    Undeploy,
)
from studio.confirmations import Confirmations
from studio.context import ContextStore
from studio.datasets import DatasetFeature
from studio.errors import InvalidError, OperationError
from studio.evals import EVAL_COMMANDS, EvalFeature
from studio.exports import EXPORT_COMMANDS, ExportFeature
from studio.flow import Flows
from studio.grammar import GrammarError, not_understood, parse
from studio.guard import GUARD_COMMANDS, GuardFeature
from studio.handoff import HANDOFF_COMMANDS, RESUME_HERE, HandoffFeature
from studio.knowledge import KnowledgeOperations
from studio.members import Members
from studio.operations import Expected, Operations, StatsSeries, already_runs, check_force
from studio.participants import Participants, typed_value
from studio.progress import ReadingProgress
from studio.replies import (
    CANCEL_PREFIX,
    CONFIRM_PREFIX,
    DEPLOY_SECRET,
    RUN_PREFIX,
    SECRET_PREFIX,
    Answer,
    secret_form,
)
from studio.review import REVIEW_COMMANDS, ReviewFeature
from studio.roles import Caller, Role
from studio.sandbox import Sandbox
from studio.schedules import SCHEDULE_COMMANDS, ScheduleFeature
from studio.stats_chart import stats_chart
from studio.team_secrets import SECRET_COMMANDS, TeamSecrets
from studio.test_report import TestReport
from studio.tools import Tools
from studio.traces import TraceFeature
from studio.understanding import understand

if TYPE_CHECKING:
    from runtime.scheduler.service import Scheduler
    from runtime.scheduler.types import Report

logger = logging.getLogger(__name__)
MAX_FILES = 3  # files read from one message
WATCH_S = 1.0  # how often a test run another worker does is looked at, for who joined it here


FAILED = "Something went wrong on our side (it is logged). Please try again."
# How the errors of steps other than the model begin (`runtime.nodes`): "bot: 'x' has no ...".
_STEP_ERRORS = frozenset({"tool", "tools", "bot", "template", "knowledge", "extract", "router"})


# Another way a deployment gets the secret `name` it needs, offered beside the private
# request: (bot, name, where the member asked) -> a paragraph, or None.
DeployOffer = Callable[[str, str, Address], str | None]
# A plugin's answer to an action its front hands the Studio: (caller, the action after its
# prefix, where it was said).
ActionAnswer = Callable[[Caller, str, Address], Awaitable[Answer]]


class NoBotError(InvalidError):
    def __init__(self) -> None:
        super().__init__("Which bot? Name it (/show NAME), or /bots to list them.")


class UnconfirmedError(OperationError):
    """`Studio.execute` of a command that waits for a confirmation in chat, not confirmed:
    the message says what it would do; nothing was done."""

    status = 409


@dataclass(slots=True)
class Turn:
    """One message being handled: who asks, and the bot they talk about."""

    caller: Caller
    current: str | None
    message: IncomingMessage
    expect: Expected | None = None  # set when the command was confirmed: what was asked about

    def bot(self, named: str | None) -> str:
        name = named or self.current
        if name is None:
            raise NoBotError()
        self.current = name.lower()
        return self.current


class Studio:
    def __init__(
        self,
        *,
        ops: Operations,
        runtime: Runtime,
        llm: LlmGateway,
        builder_model: str | None,
        judge_model: str | None,
        secrets: SecretVault | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.ops = ops
        self.runtime = runtime
        self.llm = llm
        self.builder_model = builder_model
        db = ops.db
        self.members = Members(db)
        self.confirmations = Confirmations(db)
        self.context = ContextStore(db)
        self.sandbox = Sandbox(ops=ops, runner=runtime.runner)
        self.knowledge = KnowledgeOperations(ops=ops, gateway=runtime.knowledge)
        self.tests = BotTests(db=db, ops=ops, runner=runtime.runner, judge_model=judge_model)
        self.participants = Participants(ops)
        self.guard = GuardFeature(ops=ops)
        self.handoff = HandoffFeature(ops=ops, fronts=runtime.fronts)
        self.scheduler = scheduler
        self.schedules = ScheduleFeature(
            ops=ops, fronts=runtime.fronts, scheduler=scheduler, reachable=self._reachable
        )
        if scheduler is not None:
            scheduler.report_poster = self.post_report
        self.datasets = DatasetFeature(ops=ops)
        self.evals = EvalFeature(
            ops=ops, runner=runtime.runner, judge_model=judge_model, push=self._push
        )
        # A sample of live answers is judged in the background (`/eval BOT online`).
        self.online = OnlineEvaluator(db=db, llm=llm, judge_model=judge_model)
        runtime.turn_listeners.append(self.online.heard)
        self.review = ReviewFeature(ops=ops, datasets=self.datasets, online=self.online)
        self.exports = ExportFeature(ops=ops)
        self.traces = TraceFeature(ops=ops)
        self.abtests = AbTestFeature(ops=ops)
        self.flows = Flows(ops)
        self.tools = Tools(ops, runtime.runner.tools)
        # The same vault the tool gateway reveals from, so a write here reaches its cache at once.
        self.secrets = TeamSecrets(
            db=db,
            vault=secrets or SecretVault(db, ops.cipher),
            confirmations=self.confirmations,
            cipher=ops.cipher,
            fronts=runtime.fronts,
        )
        self.secrets.on_value[DEPLOY_SECRET] = self._deploy_secret_given
        self._jobs: set[asyncio.Task[None]] = set()
        # What channel plugins add (set when they are built): another way a deployment of
        # theirs gets a secret it needs (the Studio's Telegram bot creates a bot and takes its
        # token), by channel kind; and their answers to actions only their fronts hand over,
        # by the action's prefix.
        self.deploy_offers: dict[str, DeployOffer] = {}
        self.on_action: dict[str, ActionAnswer] = {}
        self._watchers: dict[tuple[int, str], list[Address]] = {}  # running test runs
        self._revisions: dict[tuple[int, str], int] = {}  # the draft revision each one tests
        # who said /promote for a running run: promoted to staging for them when it passes
        self._promotions: dict[tuple[int, str], list[tuple[Caller, Address]]] = {}
        self._handlers: dict[type[Command], Callable[[Turn, Command], Awaitable[list[Answer]]]] = {
            NewBot: self._newbot,
            ListBots: self._bots,
            ShowBot: self._show,
            SetField: self._set,
            TryBot: self._try,
            TestAdd: self._test_add,
            TestList: self._test_list,
            TestRemove: self._test_remove,
            KnowledgeAdd: self._knowledge_add,
            KnowledgeList: self._knowledge_list,
            KnowledgeRemove: self._knowledge_remove,
            KnowledgeReindex: self._knowledge_reindex,
            TestRun: self._test_run,
            Promote: self._promote,
            Rollback: self._rollback,
            Deploy: self._deploy,
            ListDeployments: self._deployments,
            Undeploy: self._undeploy,
            Stats: self._stats,
            Diff: self._diff,
            History: self._history,
            MemoryShow: self._memory,
            MemorySet: self._memory_set,
            MemoryForget: self._memory_forget,
            Delete: self._delete,
            SetRole: self._role,
            Invite: self._invite,
            Join: self._join,
            Help: self._help,
            Confirm: self._confirm,
            FlowShow: self.flows.show,
            FlowAdd: self.flows.add,
            FlowSet: self.flows.set,
            FlowLink: self.flows.link,
            FlowRemove: self.flows.remove,
            FlowAsk: self.flows.ask,
            Route: self.flows.route,
            ToolAdd: self.tools.add,
            ToolAddMcp: self.tools.add,
            ToolList: self.tools.show,
            ToolRemove: self.tools.remove,
        }
        self._handlers.update({kind: self._guard for kind in GUARD_COMMANDS})
        self._handlers.update({kind: self._secret for kind in SECRET_COMMANDS})
        self._handlers.update({kind: self._handoff for kind in HANDOFF_COMMANDS})
        self._handlers.update({kind: self._schedule for kind in SCHEDULE_COMMANDS})
        self._handlers.update({kind: self._dataset for kind in DATASET_COMMANDS})
        self._handlers.update({kind: self._eval for kind in EVAL_COMMANDS})
        self._handlers.update({kind: self._review for kind in REVIEW_COMMANDS})
        self._handlers.update({kind: self._export for kind in EXPORT_COMMANDS})
        self._handlers[TraceShow] = self._trace
        self._handlers.update({kind: self._abtest for kind in ABTEST_COMMANDS})

    # -- the runtime's entry point -----------------------------------------------------------

    async def handle(self, message: IncomingMessage) -> list[OutgoingMessage]:
        return [_outgoing(message.address, a) for a in await self.answer(message)]

    async def answer(self, message: IncomingMessage) -> list[Answer]:
        """What the Studio says to `message`. Never raises: a problem is said, not thrown."""
        try:
            visit = await self.members.visit(team_of(message.address), message.address.user)
            caller = visit.caller
            turn = Turn(caller, visit.current_bot, message)
            before = turn.current
            answers = await self._understand_and_run(turn)
            if turn.current != before:
                await self.context.remember(caller.team_id, caller.identity, turn.current)
            return answers
        except OperationError as exc:
            return [Answer(exc.message)]
        except Exception:
            logger.exception(
                "the Studio failed", extra={"conversation": message.address.conversation}
            )
            return [Answer(FAILED)]

    async def _understand_and_run(self, turn: Turn) -> list[Answer]:
        message = turn.message
        if message.action:
            return await self._action(turn, message.action)
        text = redact_studio_input(message.text).strip()
        if REDACTED in text:  # a front may have removed it already: refused all the same
            return [
                Answer(
                    f"{TOKEN_REFUSAL[0].upper()}{TOKEN_REFUSAL[1:]}. Nothing was changed; to put "
                    "a bot on a channel, say /deploy BOT CHANNEL and I'll ask for its token "
                    "privately."
                )
            ]
        if message.files:  # from the platforms that can send files (Slack, Telegram)
            return await self._files(turn, text)
        return await self._text(turn, text)

    async def _text(self, turn: Turn, text: str) -> list[Answer]:
        if not text:
            return [Answer("Say /help to see what I can do.")]
        if len(text) > MAX_INPUT_CHARS:
            return [Answer(f"That message is too long: at most {MAX_INPUT_CHARS} characters.")]
        bots = await self.ops.bot_names(turn.caller)
        try:
            command = parse(text, bots=bots, channels=self.runtime.channels.offered())
        except GrammarError as exc:
            return [Answer(exc.message)]
        if command is not None:
            return await self.run(turn, command)
        if self.builder_model is None:
            return [Answer(not_understood(text))]
        return await self._free_text(turn, text, bots)

    async def _action(self, turn: Turn, action: str) -> list[Answer]:
        if action.startswith((CONFIRM_PREFIX, CANCEL_PREFIX)):
            accept = action.startswith(CONFIRM_PREFIX)
            token = action.split(":", 1)[1] or None
            return await self.run(turn, Confirm(accept=accept, token=token))
        if action.startswith(SECRET_PREFIX):
            handed = action.removeprefix(SECRET_PREFIX)
            return [await self.secrets.hand_over(turn.caller, handed, turn.message.address)]
        form = secret_form(action)
        if form is not None:
            return [self.secrets.form_clicked(form[1])]
        if action.startswith(RUN_PREFIX):
            text = action.removeprefix(RUN_PREFIX)
            turn.message = turn.message.model_copy(update={"text": text, "action": None})
            return await self._understand_and_run(turn)
        for prefix, answer in self.on_action.items():
            if action.startswith(prefix):
                handed = action.removeprefix(prefix)
                return [await answer(turn.caller, handed, turn.message.address)]
        return [Answer("That button is no longer valid.")]

    async def _free_text(self, turn: Turn, text: str, bots: list[str]) -> list[Answer]:
        assert self.builder_model is not None
        try:
            understood = await understand(
                text,
                llm=self.llm,
                model=self.builder_model,
                bots=bots,
                current=turn.current,
                role=turn.caller.role.value,
            )
        except LlmError as exc:
            return [
                Answer(
                    f"I could not reach the builder model ({exc}). Nothing was changed; the "
                    "commands still work (/help)."
                )
            ]
        if understood.problems:
            problems = "; ".join(understood.problems)
            return [Answer(f"I could not act on that: {problems}. Nothing was changed.")]
        if not understood.commands:
            return [Answer(understood.text or not_understood(text))]
        answers = [Answer(understood.text)] if understood.text else []
        return answers + await self._steps(turn, list(understood.commands))

    async def _steps(self, turn: Turn, commands: list[Command]) -> list[Answer]:
        """Run several commands in order, reporting each; the first failure stops the rest."""
        if len(commands) == 1:
            return await self.run(turn, commands[0])
        answers: list[Answer] = []
        total = len(commands)
        for number, command in enumerate(commands, start=1):
            rest = _not_run(number + 1, total)
            before = turn.current
            try:
                outcome = await self._dispatch(turn, command)
            except OperationError as exc:
                turn.current = before
                failed = exc.message.rstrip()
                if not failed.endswith((".", "!", "?")):
                    failed += "."
                answers.append(Answer(f"Step {number}/{total} failed: {failed}{rest}"))
                break
            for answer in outcome:
                answers.append(replace(answer, text=f"Step {number}/{total}: {answer.text}"))
            if command.needs_confirmation:
                if rest:  # what follows may depend on the answer: the person asks again
                    answers.append(Answer(f"Waiting for your confirmation.{rest}"))
                break
        return answers

    async def run(self, turn: Turn, command: Command) -> list[Answer]:
        """Run one command; when it fails, the current bot stays what it was."""
        before = turn.current
        try:
            return await self._dispatch(turn, command)
        except OperationError as exc:
            turn.current = before
            return [Answer(exc.message)]

    async def execute(
        self, caller: Caller, command: Command, *, address: Address, confirmed: bool = False
    ) -> list[Answer]:
        """Run one typed command for `caller` outside a conversation (the MCP server): the role
        checks, audit and answers of chat, no bot remembered between calls; what the Studio
        says later (a test run's report) goes to `address`. A command that asks for a
        confirmation in chat runs only when `confirmed`, bound to what it would do now, as a
        confirmed one is; otherwise `UnconfirmedError` says what that is. Raises
        `OperationError` when the Studio refuses."""
        turn = Turn(caller, None, IncomingMessage(address=address))
        if not command.needs_confirmation:
            return await self._dispatch(turn, command)
        command, facts, question = await self._resolve(turn, command)
        if not confirmed:
            raise UnconfirmedError(question)
        turn.expect = _expected(facts)
        return await self._handlers[type(command)](turn, command)

    async def _dispatch(self, turn: Turn, command: Command) -> list[Answer]:
        if command.needs_confirmation:
            return [await self._ask(turn, command)]
        if not isinstance(command, Confirm):
            caller = turn.caller
            await self.confirmations.lapse(team_id=caller.team_id, identity=caller.identity)
        return await self._handlers[type(command)](turn, command)

    # -- confirmations -------------------------------------------------------------------------

    async def _ask(self, turn: Turn, command: Command) -> Answer:
        """Check what can be checked now, then store the question and offer the buttons."""
        caller = turn.caller
        command, facts, question = await self._resolve(turn, command)
        bot = getattr(command, "bot", None)
        token = await self.confirmations.ask(
            team_id=caller.team_id,
            identity=caller.identity,
            command={
                "type": type(command).__name__,
                "args": command.model_dump(mode="json"),
                "facts": facts,
            },
            bot=bot,
            revision=facts.get("revision"),
        )
        style = "danger" if isinstance(command, Delete | MemoryForget) else "primary"
        return Answer(
            f"{question} Confirm within 5 minutes (or reply yes); otherwise nothing happens.",
            buttons=(
                Button(label="Confirm", action=CONFIRM_PREFIX + token, style=style),
                Button(label="Cancel", action=CANCEL_PREFIX + token),
            ),
        )

    async def _resolve(self, turn: Turn, command: Command) -> tuple[Command, dict[str, int], str]:
        """A confirmable command checked against the caller's role, for its bot (`_facts`)."""
        caller = turn.caller
        caller.require(_NEEDS.get(type(command), Role.ADMIN), _DOING[type(command)])
        bot = turn.bot(getattr(command, "bot", None))
        return await self._facts(caller, command.model_copy(update={"bot": bot}))

    async def _facts(self, caller: Caller, command: Command) -> tuple[Command, dict[str, int], str]:
        """What a confirmable command would do, resolved now: the command made exact, the facts
        a confirmation is bound to (checked again when it is confirmed), and the question."""
        bot = getattr(command, "bot", None)
        assert bot is not None
        view = await self.ops.get_bot(caller, bot)
        draft = await self.ops.draft(caller, bot)
        facts = {"bot_id": draft.bot_id}
        if isinstance(command, MemoryForget):
            remembered = await self.participants.memory(caller, bot, command.user)
            if not remembered.memory:
                raise InvalidError(presenters.participant_memory(remembered).text)
            return command, facts, presenters.forget_question(remembered)
        if isinstance(command, AbTestPromoteWinner):
            test, winner, question = await self.abtests.confirmation(caller, bot, command.env)
            facts.update(current=test.version_a, test=test.id, winner_b=int(winner == "B"))
            return command, facts, question
        if isinstance(command, Promote):
            check_force(command.to, force=command.force)
            staging = view.environments.get("staging")
            if staging is None:
                raise InvalidError(f"{bot} has no staging version yet: /promote {bot} first")
            facts["staging"] = staging
            return command, facts, f"Put *{bot}* v{staging} (staging's version) in production?"
        if isinstance(command, Rollback):
            current = view.environments.get(command.env)
            if current is None:
                raise InvalidError(f"{bot} has no {command.env} version to roll back")
            numbers = [v.number for v in await self.ops.versions(caller, bot)]
            if command.version is None:
                older = [n for n in numbers if n < current]
                if not older:
                    raise InvalidError(f"{command.env} already runs the first version (v{current})")
                command = command.model_copy(update={"version": older[-1]})
            elif command.version not in numbers:
                raise InvalidError(f"{bot} has no version v{command.version}")
            elif command.version == current:
                raise InvalidError(already_runs(bot, command.env, current))
            facts.update(current=current, target=command.version or 0)
            question = f"Roll *{bot}* {command.env} back from v{current} to v{command.version}?"
            return command, facts, question
        facts["revision"] = draft.revision
        count = len(await self.ops.versions(caller, bot))
        question = (
            f"Delete *{bot}* with its {count} version(s) and its deployments? "
            "This cannot be undone."
        )
        return command, facts, question

    async def _confirm(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Confirm)
        caller = turn.caller
        pending = await self.confirmations.claim(
            team_id=caller.team_id, identity=caller.identity, token=command.token
        )
        if pending is None:
            if command.token and await self.confirmations.asked_of_another(
                team_id=caller.team_id, identity=caller.identity, token=command.token
            ):
                return [
                    Answer("Only the person who asked can answer that question; nothing was done.")
                ]
            return [
                Answer(
                    "There is nothing to confirm (a question lasts 5 minutes and is answered once)."
                )
            ]
        if not command.accept:
            return [Answer("Cancelled; nothing was done.")]
        try:
            confirmed = _KINDS[pending.command["type"]].model_validate(pending.command["args"])
            turn.expect = _expected(pending.command["facts"])
        except (KeyError, TypeError, ValidationError):
            return [Answer("That confirmation can no longer be carried out; ask again.")]
        turn.current = pending.bot or turn.current
        return await self._handlers[type(confirmed)](turn, confirmed)

    # -- bots ------------------------------------------------------------------------------

    async def _newbot(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, NewBot)
        view = await self.ops.create_bot(turn.caller, command.bot.lower(), command.description)
        turn.current = view.name
        return [presenters.created(view)]

    async def _bots(self, turn: Turn, command: Command) -> list[Answer]:
        return [presenters.bot_list(await self.ops.list_bots(turn.caller))]

    async def _show(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ShowBot)
        return [presenters.bot_card(await self.ops.get_bot(turn.caller, turn.bot(command.bot)))]

    async def _set(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, SetField)
        bot = turn.bot(command.bot)
        view = await self.ops.set_field(turn.caller, bot, command.field, command.value)
        return [presenters.edited(view, command.field)]

    async def _try(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, TryBot)
        tried = await self.sandbox.try_draft(
            turn.caller, turn.bot(command.bot), command.message, new=command.new
        )
        if tried.turn is None:
            if command.new:
                return [Answer(f"Started a new conversation with *{tried.bot}*'s draft.")]
            raise InvalidError(f"What should I say to {tried.bot}? /try {tried.bot} MESSAGE")
        output = tried.turn.output
        text = f"*{tried.bot}* (draft): {output.reply}"
        if output.tool_calls:
            text += "\n\n" + presenters.tool_calls(output.tool_calls)
        if output.error:
            kind = output.error.partition(":")[0]
            failed = "A step failed" if kind in _STEP_ERRORS else "The model failed"
            text += (
                f"\n\n{failed}: {output.error}. End users would get the fallback "
                "message above; /stats counts such errors."
            )
        elif output.handed_over:
            text += (
                f"\n\nHanded over to {output.handed_over} (not in /try: nobody was asked). End "
                "users would wait for a person of the team there."
            )
        elif _only_falls_back(tried.spec, output.reply):
            name = tried.bot
            text += (
                f"\n\n{name} can only give its fallback: it has the offline model and no "
                "knowledge. To make it answer, add knowledge with "
                f"`/knowledge {name} add TEXT|URL`, or set a model whose provider key is "
                f"configured, e.g. `/set {name} model gpt-4o-mini` with OPENAI_API_KEY set."
            )
        return [Answer(text)]

    # -- tests -------------------------------------------------------------------------------

    async def _test_add(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, TestAdd)
        bot = turn.bot(command.bot)
        number, view = await self.tests.add_simple(
            turn.caller, bot, text=command.input, kind=command.kind, value=command.value
        )
        return [
            Answer(
                f'Added test {number} to *{view.name}*: "{command.input}" → {command.kind} '
                f"'{command.value}'. Run them with /test {view.name}."
            )
        ]

    async def _test_list(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, TestList)
        bot = turn.bot(command.bot)
        return [presenters.test_cases(bot, await self.tests.cases(turn.caller, bot))]

    async def _test_remove(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, TestRemove)
        bot = turn.bot(command.bot)
        view = await self.tests.remove(turn.caller, bot, command.number)
        left = len(view.draft.tests)
        return [Answer(f"Removed test {command.number} from *{view.name}*; {left} left.")]

    # -- knowledge ---------------------------------------------------------------------------------

    async def _knowledge_add(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, KnowledgeAdd)
        added = await self.knowledge.add_text(turn.caller, turn.bot(command.bot), command.source)
        return [presenters.knowledge_added(added)]

    async def _knowledge_list(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, KnowledgeList)
        bot = turn.bot(command.bot)
        sources = await self.knowledge.list(turn.caller, bot)
        draft = await self.ops.draft(turn.caller, bot)
        progress = self.knowledge.reindexing(draft.bot_id)
        return [presenters.knowledge_sources(bot, sources, reindexing=progress)]

    async def _knowledge_remove(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, KnowledgeRemove)
        bot = turn.bot(command.bot)
        removed = await self.knowledge.remove(turn.caller, bot, command.source)
        return [
            Answer(
                f"Removed {removed} from *{bot}*'s draft. Versions that use it keep it until "
                "they are replaced."
            )
        ]

    async def _knowledge_reindex(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, KnowledgeReindex)
        bot = turn.bot(command.bot)
        doing = f"Re-indexing {bot}'s knowledge"
        progress = ReadingProgress(self.runtime, turn.message.address, doing)
        try:
            done = await self.knowledge.reindex(turn.caller, bot, progress=progress.update)
        except Exception:  # the line must not say "…" forever, whatever went wrong
            await progress.finish(f"{doing} failed.")
            raise
        await progress.finish(f"{doing}: done.")
        return [presenters.knowledge_reindexed(bot, sources=done.sources, chunks=done.chunks)]

    async def _files(self, turn: Turn, text: str) -> list[Answer]:
        """Files shared with the Studio become the knowledge of the bot the message names, or
        of the bot talked about last; a CSV file becomes one of its datasets."""
        doing = "Importing a dataset" if _all_csv(turn.message.files) else "Adding knowledge"
        turn.caller.require(Role.EDITOR, doing)  # before anything is downloaded
        bots = await self.ops.bot_names(turn.caller)
        named = next((w for w in text.lower().replace(",", " ").split() if w in bots), None)
        try:
            bot = turn.bot(named)
        except NoBotError:
            return [
                Answer(
                    "Which bot should learn from this? Share the file again with the bot's name "
                    "in the message (or talk about the bot first)."
                )
            ]
        port = self.runtime.channels.get(turn.message.address.channel)
        fetch = getattr(port, "fetch_file", None)
        answers: list[Answer] = []
        for file in turn.message.files[:MAX_FILES]:
            if fetch is None:
                answers.append(Answer(f"I cannot read files sent here; {file.name} was not added."))
                continue
            if file.size is not None and file.size > MAX_SOURCE_BYTES:
                answers.append(
                    Answer(f"{too_big(file.name, file.size, MAX_SOURCE_BYTES)}. Nothing was added.")
                )
                continue
            if _is_csv(file):
                answers.append(await self.datasets.import_file(turn.caller, bot, file, fetch))
                continue
            progress = ReadingProgress(self.runtime, turn.message.address, f"Reading {file.name}")
            try:
                content = await fetch(file, MAX_SOURCE_BYTES)
                added = await self.knowledge.add_file(
                    turn.caller,
                    bot,
                    name=file.name,
                    content=content,
                    content_type=file.mime,
                    progress=progress.update,
                )
            except SendError as exc:
                answers.append(Answer(f"I could not download {file.name}: {exc}"))
                continue
            except OperationError as exc:
                await progress.finish(f"Reading {file.name} failed.")
                answers.append(Answer(f"{file.name}: {exc.message}"))
                continue
            await progress.finish(f"Read {file.name}: {added.chunks} passages.")
            answers.append(presenters.knowledge_added(added))
        if len(turn.message.files) > MAX_FILES:
            answers.append(Answer(f"I read the first {MAX_FILES} files; share the rest again."))
        return answers

    async def _test_run(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, TestRun)
        turn.caller.require(Role.EDITOR, "Running tests")
        return await self._start_tests(turn, turn.bot(command.bot))

    async def _start_tests(self, turn: Turn, bot: str, *, promote: bool = False) -> list[Answer]:
        """Run the draft's tests in the background (one run per bot at a time, on any worker:
        who asks meanwhile joins it); with `promote`, promote the draft to staging for the
        caller if they pass."""
        caller = turn.caller
        key = (caller.team_id, bot)
        address = turn.message.address
        then = " and promote it if they pass" if promote else ""
        watchers = self._watchers.get(key)
        if watchers is not None:  # one run per bot at a time; everyone who asked hears of it
            if address not in watchers:
                watchers.append(address)
            if promote and all(asked != address for _, asked in self._promotions.get(key, [])):
                self._promotions.setdefault(key, []).append((caller, address))
            revision = self._revisions.get(key)
            of = f" (draft revision {revision}; later edits need another /test)" if revision else ""
            running = f"{bot}'s tests are already running{of}"
            return [Answer(f"{running}. I'll report when they finish{then}.")]
        self._watchers[key] = [address]  # taken before the first await: no second run slips in
        if promote:
            self._promotions[key] = [(caller, address)]
        try:
            elsewhere = await self.tests.running_elsewhere(caller, bot)
            prepared = None if elsewhere else await self.tests.prepare(caller, bot)
        except OperationError as exc:
            self._promotions.pop(key, None)
            for other in self._watchers.pop(key)[1:]:  # who joined meanwhile was promised news
                await self._push(other, Answer(f"The tests of {bot} did not start: {exc.message}"))
            raise
        except BaseException:
            del self._watchers[key]
            self._promotions.pop(key, None)
            raise
        if elsewhere is not None:
            self._spawn(self._watch_elsewhere(elsewhere, key))
            of = "" if elsewhere.current else " (an earlier draft; later edits need another /test)"
            running = f"{elsewhere.bot}'s tests are already running{of}"
            return [Answer(f"{running}. I'll report when they finish{then}.")]
        assert prepared is not None
        self._revisions[key] = prepared.revision
        self._spawn(self._test_job(prepared, key))
        count = len(prepared.spec.tests)
        return [
            Answer(
                f"Running {count} test(s) of *{prepared.bot}* against draft revision "
                f"{prepared.revision} in the background. I'll report here{then}; carry on "
                "meanwhile."
            )
        ]

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _test_job(self, prepared: PreparedRun, key: tuple[int, str]) -> None:
        """The background part of /test: progress now and then, the report at the end, to
        everyone who asked for the run."""
        reported = 0

        async def progress(done: int, total: int) -> None:
            nonlocal reported
            quarter = done * 4 // total
            if total >= 4 and done < total and quarter > reported:
                reported = quarter
                for address in self._watchers.get(key, []):
                    await self._push(address, Answer(f"{prepared.bot}: {done}/{total} tests run…"))

        failed = f"The test run of {prepared.bot} failed on our side (it is logged)."
        await self._report(prepared.bot, key, self.tests.execute(prepared, progress), failed)

    async def _watch_elsewhere(self, run: RunElsewhere, key: tuple[int, str]) -> None:
        """Who asked here for a run another worker does hears its report when it ends."""
        lost = f"I lost track of the test run of {run.bot} (it is logged)."
        await self._report(run.bot, key, self._ending_elsewhere(run), lost)

    async def _ending_elsewhere(self, run: RunElsewhere) -> TestReport | str:
        """How a run another worker does ends (its stored row is read every `WATCH_S`)."""
        outcome = await self.tests.ended(run)
        while outcome is None:  # no event crosses processes: the stored run tells
            await asyncio.sleep(WATCH_S)
            outcome = await self.tests.ended(run)
        return outcome

    async def _report(
        self,
        bot: str,
        key: tuple[int, str],
        ending: Awaitable[TestReport | str],
        failed: str,
    ) -> None:
        """Tell who waited for a run of `bot` how it ended (`ending`: its report, or why it
        did not finish; `failed` is said when `ending` itself fails), then do each promotion
        that waited for it."""
        report: TestReport | None = None
        try:
            outcome = await ending
            if isinstance(outcome, TestReport):
                report = outcome
                answer = presenters.test_report(report)
            else:
                answer = Answer(f"The test run of {bot} did not finish: {outcome}.")
        except Exception:
            logger.exception("test run failed", extra={"bot": bot})
            answer = Answer(failed)
        finally:
            watchers = self._watchers.pop(key, [])
            promotions = self._promotions.pop(key, [])
            self._revisions.pop(key, None)
        for address in watchers:
            await self._push(address, answer)
        for caller, address in promotions:
            await self._push(address, await self._promote_tested(caller, bot, report))

    async def _promote_tested(self, caller: Caller, bot: str, report: TestReport | None) -> Answer:
        """The end of a /promote that waited for a test run: promoted if the run passed."""
        if report is None:
            return Answer(f"I did not promote {bot}: its test run did not finish.")
        if not report.ok:
            return Answer(presenters.not_promoted(report))
        try:
            result = await self.ops.promote(caller, bot, to="staging")
        except OperationError as exc:  # e.g. the draft changed during the run
            return Answer(exc.message)
        except Exception:
            logger.exception("promotion after a test run failed", extra={"bot": bot})
            return Answer(f"Promoting {bot} failed on our side (it is logged).")
        return presenters.promoted(bot, result, tests_passed=report.passed)

    async def _push(self, address: Address, answer: Answer) -> None:
        await self.runtime.push(_outgoing(address, answer))

    async def deployment_broken(self, deployment_id: str, reason: str) -> None:
        """A platform refused a deployment for good: mark it and tell the team's owners and
        admins, once, wherever each of them talks to the Studio."""
        marked = await self.ops.mark_broken(deployment_id, reason)
        if marked is None:
            return
        team_id, bot, channel = marked
        title = self.runtime.channels.title(channel)
        text = (
            f"*{bot}* stopped answering on {title}: {reason} (deployment `{deployment_id}`). "
            f"Deploy it again with new credentials: `/deploy {bot} {channel}`."
        )
        await self.tell_leaders(team_id, text)

    async def tell_leaders(self, team_id: int, text: str) -> None:
        """Tell the team's owners and admins something unasked, wherever each of them talks to
        the Studio (`_reachable`)."""
        for identity in await self.members.leaders(team_id):
            address = self._reachable(team_id, identity)
            await self.runtime.push(OutgoingMessage(address=address, text=text))

    def _reachable(self, team_id: int, identity: str) -> Address:
        """Where a member can be told something unasked: their DM with the Studio on the front
        they were seen on (Slack, its Telegram bot), else the pull channel that the web
        console and the terminal read."""
        for front in self.runtime.fronts.on():
            thread = front.dm(identity)
            if thread is not None:
                return studio_address(front.channel, team_id, identity, thread=thread)
        return studio_address(PULL_CHANNEL, team_id, identity)

    async def drain(self, *, grace_s: float | None = None) -> None:
        """Wait for background test runs (tests); with `grace_s` (shutdown), cancel those still
        running after it: they are marked failed and can be run again."""
        await settle(self._jobs, grace_s=grace_s)
        await self.evals.drain(grace_s=grace_s)
        await self.online.drain(grace_s=grace_s)

    # -- versions and environments ---------------------------------------------------------------

    async def _promote(self, turn: Turn, command: Command) -> list[Answer]:
        """To staging, a draft with tests waits for a passing run of exactly this draft: one
        running here is joined, and when there is none the promotion starts one."""
        assert isinstance(command, Promote)
        bot = turn.bot(command.bot)
        caller = turn.caller
        needs = await self.ops.needs_test_run(caller, bot, to=command.to, force=command.force)
        gated = command.to == "staging" and not command.force
        if needs or (gated and await self._test_running(caller, bot)):
            return await self._start_tests(turn, bot, promote=True)
        result = await self.ops.promote(
            turn.caller, bot, to=command.to, force=command.force, expect=turn.expect
        )
        return [presenters.promoted(bot, result)]

    async def _test_running(self, caller: Caller, bot: str) -> bool:
        """Whether a run of the bot's tests is going on, here or on another worker."""
        if (caller.team_id, bot) in self._watchers:
            return True
        return await self.tests.running_elsewhere(caller, bot) is not None

    async def _rollback(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Rollback)
        bot = turn.bot(command.bot)
        result = await self.ops.rollback(
            turn.caller, bot, env=command.env, version=command.version, expect=turn.expect
        )
        return [presenters.rolled_back(bot, result)]

    async def _diff(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Diff)
        bot = turn.bot(command.bot)
        return [
            presenters.diff(
                await self.ops.diff(turn.caller, bot, before=command.a, after=command.b)
            )
        ]

    async def _history(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, History)
        bot = turn.bot(command.bot)
        return [presenters.history(bot, await self.ops.history(turn.caller, bot, limit=20))]

    async def _delete(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Delete)
        bot = turn.bot(command.bot)
        await self.ops.delete_bot(turn.caller, bot, expect=turn.expect)
        await self.context.forget_bot(turn.caller.team_id, bot)
        turn.current = None
        return [Answer(f"Deleted *{bot}*.")]

    # -- participant memory ----------------------------------------------------------------------

    async def _memory(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, MemoryShow)
        bot = turn.bot(command.bot)
        view = await self.participants.memory(turn.caller, bot, command.user)
        return [presenters.participant_memory(view)]

    async def _memory_set(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, MemorySet)
        bot = turn.bot(command.bot)
        memory = await self.participants.set_memory(
            turn.caller, bot, command.user, command.key, typed_value(command.value)
        )
        return [presenters.remembered(bot, command.user, command.key, memory)]

    async def _memory_forget(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, MemoryForget)
        bot = turn.bot(command.bot)
        forgotten = await self.participants.forget_memory(
            turn.caller, bot, command.user, expect=turn.expect
        )
        return [presenters.memory_forgotten(forgotten)]

    # -- deployments and insight -----------------------------------------------------------------

    async def _deploy(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Deploy)
        bot = turn.bot(command.bot)
        form = await self.ops.deploy_form(
            turn.caller,
            bot,
            channel=command.channel,
            env=command.env,
            target=command.target,
            options=command.options,
        )
        if form.secrets:
            args = {
                "bot": bot,
                "channel": command.channel,
                "env": command.env,
                "target": command.target,
                "options": command.options,
                "given": {},
            }
            turn.current = bot
            return [await self._ask_deploy_secret(turn.caller, turn.message.address, args, form)]
        view = await self.ops.deploy(
            turn.caller,
            bot,
            channel=command.channel,
            env=command.env,
            target=command.target,
            options=command.options,
        )
        return [presenters.deployed(view)]

    async def _ask_deploy_secret(
        self, caller: Caller, address: Address, args: dict[str, Any], form: DeployForm
    ) -> Answer:
        """Ask privately for the next secret the deployment needs (`args["given"]` holds
        those given so far, sealed); `_deploy_secret_given` takes it."""
        secret = next(s for s in form.secrets if s.name not in args["given"])
        bot, channel = args["bot"], args["channel"]
        title = self.runtime.channels.title(channel)
        names = ", ".join(f'"{s.name}": "..."' for s in form.secrets)
        target = f'"target": "{args["target"]}", ' if args.get("target") else ""
        asked = await self.secrets.ask_privately(
            caller,
            address,
            command={"type": DEPLOY_SECRET, "args": {**args, "name": secret.name}},
            what=f"{secret.label} to put *{bot}* on {title}",
            form_name=secret.label,
            elsewhere=(
                f"POST /api/v1/bots/{bot}/deployments with "
                f'{{"channel": "{channel}", {target}{names}}}'
            ),
            retry=_deploy_again(args),
        )
        offer = self.deploy_offers.get(channel)
        another = offer(bot, secret.name, address) if offer is not None else None
        return replace(asked, text=f"{asked.text}\n\n{another}") if another else asked

    async def _deploy_secret_given(
        self, caller: Caller, args: dict[str, Any], value: str, address: Address
    ) -> Answer:
        """A secret a deployment asked for arrived privately: ask for the next, or deploy."""
        sealed = self.ops.cipher.encrypt(value).decode()
        given = {**dict(args.get("given") or {}), str(args.get("name")): sealed}
        args = {**args, "given": given}
        bot, channel, env = str(args["bot"]), str(args["channel"]), str(args["env"])
        target, options = args.get("target"), dict(args.get("options") or {})
        try:
            form = await self.ops.deploy_form(
                caller, bot, channel=channel, env=env, target=target, options=options
            )
            if any(s.name not in given for s in form.secrets):
                return await self._ask_deploy_secret(caller, address, args, form)
            secrets = {name: self.ops.cipher.decrypt(v.encode()) for name, v in given.items()}
            view = await self.ops.deploy(
                caller,
                bot,
                channel=channel,
                env=env,
                target=target,
                secrets=secrets,
                options=options,
            )
        except OperationError as exc:
            return Answer(
                f"{exc.message.rstrip('.')}. Nothing was deployed; {_deploy_again(args)} to retry."
            )
        return presenters.deployed(view)

    async def _deployments(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ListDeployments)
        bot = turn.bot(command.bot) if command.bot else None
        return [presenters.deployments(await self.ops.deployments(turn.caller, bot))]

    async def _undeploy(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Undeploy)
        bot = turn.bot(command.bot)
        removed = await self.ops.undeploy_channel(
            turn.caller, bot, channel=command.channel, env=command.env
        )
        envs = ", ".join(sorted(d.env for d in removed))
        return [Answer(f"*{bot}* is off {command.channel} ({envs}).")]

    async def _stats(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Stats)
        bot = turn.bot(command.bot) if command.bot else None
        views = await self.ops.stats(turn.caller, bot, command.period)
        answer = presenters.stats(views)
        if bot is not None and views[0].turns:  # one bot with traffic: the chart beside it
            series = await self.ops.stats_series(turn.caller, bot, command.period)
            answer = await _with_chart(answer, series)
        return [answer]

    # -- people ---------------------------------------------------------------------------------

    async def _role(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, SetRole)
        identity, before, after = await self.members.set_role(
            turn.caller, command.user, command.role
        )
        if before is after:
            return [Answer(f"{identity} already is {after.value}.")]
        return [Answer(f"{identity} is now {after.value} (was {before.value}).")]

    async def _invite(self, turn: Turn, command: Command) -> list[Answer]:
        code = await self.members.create_invite(turn.caller)
        return [
            Answer(
                f"Invite code for *{turn.caller.team}*: `{code}` (one use, valid 7 days). "
                f"The person says `/join {code}` to the Studio and joins as a viewer."
            )
        ]

    async def _join(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Join)
        joined = await self.members.join(turn.caller.identity, command.code)
        if joined.already:
            return [Answer(f"You already are in *{joined.team}* ({joined.role.value}).")]
        return [Answer(f"Welcome to *{joined.team}*! You joined as {joined.role.value}.")]

    async def _help(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, Help)
        return [presenters.help_text(command.command)]

    async def _guard(self, turn: Turn, command: Command) -> list[Answer]:
        """`/guard` and `/budget` (`studio.guard`)."""
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.guard.run(turn.caller, bot, command)]

    async def _secret(self, turn: Turn, command: Command) -> list[Answer]:
        """`/secret` (`studio.team_secrets`)."""
        return [await self.secrets.run(turn.caller, command, turn.message.address)]

    async def _handoff(self, turn: Turn, command: Command) -> list[Answer]:
        """`/handoff` (`studio.handoff`); `/resume` here was said outside a handoff's thread."""
        if isinstance(command, Resume):
            return [Answer(RESUME_HERE)]
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.handoff.run(turn.caller, bot, command, turn.message.address)]

    async def _schedule(self, turn: Turn, command: Command) -> list[Answer]:
        """`/schedule`, `/followup` and `/stats BOT daily|weekly|reports` (`studio.schedules`)."""
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.schedules.run(turn.caller, bot, command, turn.message.address)]

    async def _dataset(self, turn: Turn, command: Command) -> list[Answer]:
        """`/dataset` (`studio.datasets`)."""
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.datasets.run(turn.caller, bot, command)]

    async def _eval(self, turn: Turn, command: Command) -> list[Answer]:
        """`/eval` runs and gates (`studio.evals`): a run reports where it was asked for."""
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.evals.run(turn.caller, bot, command, turn.message.address)]

    async def _review(self, turn: Turn, command: Command) -> list[Answer]:
        """`/review` and `/eval BOT online` (`studio.review`)."""
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.review.run(turn.caller, bot, command)]

    async def _trace(self, turn: Turn, command: Command) -> list[Answer]:
        """`/trace BOT [last | CONVERSATION]` (`studio.traces`)."""
        assert isinstance(command, TraceShow)
        bot = turn.bot(command.bot)
        return [await self.traces.show(turn.caller, bot, command.conversation)]

    async def _export(self, turn: Turn, command: Command) -> list[Answer]:
        """`/export` (`studio.exports`): the conversations as a file."""
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.exports.run(turn.caller, bot, command)]

    async def _abtest(self, turn: Turn, command: Command) -> list[Answer]:
        """`/abtest` (`studio.abtests`); promote-winner arrives here once confirmed."""
        bot = turn.bot(getattr(command, "bot", None))
        return [await self.abtests.run(turn.caller, bot, command, expect=turn.expect)]

    async def post_report(self, report: Report) -> None:
        """A scheduled stats report (the scheduler's `report_poster`): what `/stats BOT PERIOD`
        says, posted where the report was asked for; raises SendError when the platform refused
        it."""
        view = await self.ops.bot_stats(report.team_id, report.bot_id, report.period)
        if view is None:  # the bot was deleted meanwhile
            return
        answer = presenters.stats([view])
        if view.turns:
            series = await self.ops.series_of(report.bot_id, view.bot, report.period)
            answer = await _with_chart(answer, series)
        address = Address.model_validate(report.address)
        refused = await self.runtime.push(_outgoing(address, answer))
        if refused is not None:  # the run records it: `/stats BOT reports` shows why
            raise SendError(refused, permanent=True)


async def _with_chart(answer: Answer, series: StatsSeries) -> Answer:
    """`/stats`'s numbers with their picture (`studio.stats_chart`)."""
    png = await stats_chart(series)
    name = f"{series.bot}-stats-{series.period}.png"
    return replace(answer, file=Attachment(name=name, mime="image/png", data=png))


def _deploy_again(args: dict[str, Any]) -> str:
    """The `/deploy` that asks for a deployment again (what was given, never its secrets)."""
    words = ["/deploy", str(args["bot"]), str(args["channel"])]
    words += [str(args["target"])] if args.get("target") else []
    words += [f"{name}={value}" for name, value in dict(args.get("options") or {}).items()]
    words += ["--env staging"] if args.get("env") == "staging" else []
    return " ".join(words)


def _expected(facts: dict[str, int]) -> Expected:
    """What a confirmation is bound to (`Studio._facts`), checked when it is carried out."""
    return Expected(
        bot_id=facts["bot_id"],
        version=facts.get("staging", facts.get("current")),
        revision=facts.get("revision"),
        ab_winner=(facts["test"], "B" if facts["winner_b"] else "A") if "test" in facts else None,
    )


def _is_csv(file: FileRef) -> bool:
    return file.name.lower().endswith(".csv") or file.mime == "text/csv"


def _all_csv(files: tuple[FileRef, ...]) -> bool:
    return bool(files) and all(_is_csv(file) for file in files[:MAX_FILES])


def _only_falls_back(spec: BotSpec, reply: str) -> bool:
    """A fresh offline bot: without knowledge (or a pipeline) its fallback is all it can say."""
    plain = spec.model == OFFLINE_MODEL and not spec.knowledge and not spec.pipeline
    return plain and reply == spec.fallback


def _not_run(first: int, last: int) -> str:
    if first > last:
        return ""
    if first == last:
        return f" Step {last} was not run."
    return f" Steps {first}-{last} were not run."


def _outgoing(address: Address, answer: Answer) -> OutgoingMessage:
    return OutgoingMessage(
        address=address,
        text=answer.text,
        fields=answer.fields,
        buttons=answer.buttons,
        file=answer.file,
        reply_to=address.thread,
    )


_KINDS: dict[str, type[Command]] = {c.__name__: c for c in COMMANDS}

_DOING: dict[type[Command], str] = {
    Promote: "Promoting to production",
    Rollback: "Rolling back",
    Delete: "Deleting a bot",
    MemoryForget: "Forgetting what a bot remembers about someone",
    AbTestPromoteWinner: "Promoting an A/B test's winner",
}
# The role a confirmable command needs (default: admin).
_NEEDS: dict[type[Command], Role] = {MemoryForget: Role.EDITOR}
