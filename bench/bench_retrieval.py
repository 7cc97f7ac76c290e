"""Retrieval quality: do the passages a bot's knowledge gives the model hold the answer?

Four real documents that ship in bench/data/retrieval/ (SOURCES.md cites them: the GNU GPL v3
and the Mozilla Public License 2.0 as plain text, IDLE's user guide and five topics of the Python
Language Reference as Markdown; ~19,000 words) are read with `KnowledgeGateway.read_file` and
ingested for one bot with the default offline embedder (`OnnxMiniLmEmbedder`) into in-memory
Qdrant, as the service does. Each question of questions.yaml (written against them, as a user
would ask; its answer a phrase copied from its document, which occurs once in the four) is then
asked with `KnowledgeGateway.retrieve`, all four sources allowed, with the top_k and min_score
a `retrieve` step has in a bot that sets neither:

- retrieval_recall_at_k: the fraction of questions whose answer is in a passage sent to the
  model (lower case, whitespace collapsed on both sides);
- retrieval_top1: the fraction whose answer is in the `offline` model's reply (`offline_answer`,
  what a bot without a real model says).

The misses are printed (not as figures) with where the answer was and what came first, and
counted by kind, to guide the work. `load_questions`, `ingest` and `evaluate` are for a unit test
over the questions marked `small` (a subset over the two licences) too.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import yaml

from bench.common import Figure, Report
from builders.spec import BotSpec, PipelineNode
from runtime.knowledge.embedder import OnnxMiniLmEmbedder
from runtime.knowledge.gateway import Ingested, KnowledgeGateway, Passage
from runtime.knowledge.store import VectorStore
from runtime.nodes.llm import offline_answer
from runtime.nodes.retrieve import RetrieveNode

DATA = Path(__file__).resolve().parent / "data" / "retrieval"
QUESTIONS = DATA / "questions.yaml"
DOCUMENTS = ("gpl-3.0.txt", "mpl-2.0.txt", "idle.md", "python-reference.md")
BOT_ID = 1
FALLBACK = "Sorry, I don't know."
RECALL_GOAL = ">= 0.95"
TOP1_GOAL = ">= 0.8"
DEPTH = 1000  # passages asked for to find where a missed answer ranked (more than all chunks)
NEAR_CHARS = 300  # an answer this close to a passage sent is in its neighbouring chunk
SNIPPET_WORDS = 12
_HEADING_MARK = re.compile(r"^ {0,3}#{1,6}[ \t]+", re.MULTILINE)
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be but by can do does for from how i if in is it its my of on or so"
        " that the their them they this to under what when where which who why will with you your",
    )
)
BUDGET_S = 30.0  # unloaded ~15 s: ingesting ~170 chunks (model loading included) most of it
FIGURES = ("retrieval_recall_at_k", "retrieval_top1")


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    source: str  # the file that answers it
    answer: str  # a phrase of that file that a passage answering the question holds
    small: bool = False


def normalise(text: str) -> str:
    """Lower case, every run of whitespace one space: how answers and passages are compared."""
    return " ".join(text.lower().split())


def load_questions(*, small: bool = False) -> list[Question]:
    """questions.yaml (only its `small` subset if asked), checked: every answer occurs exactly
    once in the documents, in its own source; ValueError listing those that do not."""
    entries = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    texts = {name: normalise((DATA / name).read_text(encoding="utf-8")) for name in DOCUMENTS}
    questions: list[Question] = []
    problems: list[str] = []
    for entry in entries:
        question = Question(
            question=str(entry["question"]),
            source=str(entry["source"]),
            answer=str(entry["answer"]),
            small=bool(entry.get("small", False)),
        )
        answer = normalise(question.answer)
        found = {name: text.count(answer) for name, text in texts.items() if answer in text}
        if found != {question.source: 1}:
            problems.append(f"{question.answer!r} ({question.source}): found {found or 'nowhere'}")
        questions.append(question)
    if problems:
        raise ValueError(
            f"{QUESTIONS.name}: each answer must occur once, in its source: " + "; ".join(problems)
        )
    return [q for q in questions if q.small or not small]


def sources_of(questions: Iterable[Question]) -> list[str]:
    """The documents that answer `questions`, in DOCUMENTS' order."""
    needed = {q.source for q in questions}
    return [name for name in DOCUMENTS if name in needed]


async def ingest(
    gateway: KnowledgeGateway, *, bot_id: int, names: Sequence[str]
) -> dict[str, Ingested]:
    """Read and ingest the documents `names` of DATA for the bot, by name (each its source id,
    the one a spec lists, and its chunk count)."""
    ingested: dict[str, Ingested] = {}
    for name in names:
        document = await gateway.read_file(name=name, content=(DATA / name).read_bytes())
        ingested[name] = await gateway.ingest(bot_id=bot_id, document=document)
    return ingested


def retrieve_defaults() -> tuple[int, float]:
    """The `retrieve` step's top_k and min_score in a bot that sets neither."""
    step = PipelineNode(id="retrieve", kind="retrieve")
    node = RetrieveNode.from_definition(step, BotSpec(name="bench"))
    return node.top_k, node.min_score


def offline_reply(passages: Sequence[Passage], question: str) -> str:
    """What the `offline` model answers `question` from the passages retrieved for it."""
    reply, _quoted = offline_answer(passages, FALLBACK, question=question)
    return reply


@dataclass(frozen=True, slots=True)
class Outcome:
    question: Question
    passages: list[Passage]
    reply: str

    @property
    def recalled(self) -> bool:
        answer = normalise(self.question.answer)
        return any(answer in normalise(p.text) for p in self.passages)

    @property
    def top1(self) -> bool:
        return normalise(self.question.answer) in normalise(self.reply)


@dataclass(frozen=True, slots=True)
class Evaluation:
    outcomes: list[Outcome]

    @property
    def recall(self) -> float:
        return sum(o.recalled for o in self.outcomes) / len(self.outcomes)

    @property
    def top1(self) -> float:
        return sum(o.top1 for o in self.outcomes) / len(self.outcomes)

    def only(self, questions: Iterable[Question]) -> Evaluation:
        kept = set(questions)
        return Evaluation([o for o in self.outcomes if o.question in kept])


async def evaluate(
    gateway: KnowledgeGateway,
    *,
    bot_id: int,
    source_ids: frozenset[str],
    questions: Sequence[Question],
    top_k: int,
    min_score: float,
) -> Evaluation:
    """Ask each question as the `retrieve` node would, and what the offline model answers."""
    outcomes = []
    for question in questions:
        found = await gateway.retrieve(
            bot_id=bot_id,
            source_ids=source_ids,
            text=question.question,
            limit=top_k,
            min_score=min_score,
        )
        passages = found.passages
        outcomes.append(Outcome(question, passages, offline_reply(passages, question.question)))
    return Evaluation(outcomes)


# -- what went wrong --------------------------------------------------------------------------


def _log(text: str) -> None:
    print(f"# retrieval: {text}", file=sys.stderr, flush=True)


def _snippet(passage: Passage) -> str:
    words = passage.text.split()
    more = " ..." if len(words) > SNIPPET_WORDS else ""
    return f"{passage.source_name} {passage.score:.2f} {' '.join(words[:SNIPPET_WORDS])!r}{more}"


def _located(name: str) -> str:
    """A document's text as its passages hold it, normalised: without Markdown heading marks."""
    return normalise(_HEADING_MARK.sub("", (DATA / name).read_text(encoding="utf-8")))


def _span(texts: dict[str, str], passage: Passage) -> tuple[int, int] | None:
    """Where a passage lies in its document's text (None where it is not a slice of it)."""
    text = texts.get(passage.source_name, "")
    found = text.find(normalise(passage.text))
    return None if found < 0 else (found, found + len(normalise(passage.text)))


def _mid_sentence(passage: Passage) -> bool:
    first = passage.text.lstrip()[:1]
    return first.isalpha() and first.islower()


def _shared_phrases(question: str, passage: Passage) -> list[str]:
    """Two-word phrases of the question (neither word a stop word) that the passage holds."""
    asked = _WORD.findall(question.lower())
    held = " " + " ".join(_WORD.findall(passage.text.lower())) + " "
    pairs = [f"{a} {b}" for a, b in pairwise(asked) if not {a, b} & _STOPWORDS]
    return [pair for pair in dict.fromkeys(pairs) if f" {pair} " in held]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    kind: str  # why the answer did not get there
    flags: list[str]  # what else went wrong
    lines: list[str]  # what shows it


async def diagnose(
    gateway: KnowledgeGateway,
    outcome: Outcome,
    *,
    bot_id: int,
    source_ids: frozenset[str],
    texts: dict[str, str],
    min_score: float,
) -> Diagnosis:
    """Why a question was missed: where the answer's best chunk ranked (every chunk ranked), how
    far the answer was from the passages sent, what came first."""
    q = outcome.question
    answer = normalise(q.answer)
    ranked = (
        await gateway.retrieve(
            bot_id=bot_id, source_ids=source_ids, text=q.question, limit=DEPTH, min_score=-1.0
        )
    ).passages
    holding = [p for p in ranked if answer in normalise(p.text)]
    lines = [f"  answer {q.answer!r}"]
    flags = []
    if outcome.passages:
        top = outcome.passages[0]
        lines.append(f"  top: {_snippet(top)}")
        if _mid_sentence(top):
            flags.append("top passage starts mid-sentence")
        if top.source_name != q.source:
            flags.append("another document first")
    else:
        lines.append(f"  no passage scored >= {min_score}")
    if holding:
        best = holding[0]
        rank = ranked.index(best) + 1
        lines.append(f"  the answer's chunk ranks {rank} ({best.score:.2f}): {_snippet(best)}")
        shared = _shared_phrases(q.question, best)
        if shared:
            flags.append("the question's own words in the answer's chunk")
            lines.append(f"  the question's words in it: {', '.join(shared)}")
    if outcome.recalled:  # in the passages, not in the reply
        number = next(p.number for p in outcome.passages if answer in normalise(p.text))
        words = outcome.reply.split()
        more = " ..." if len(words) > SNIPPET_WORDS else ""
        lines.append(f"  reply: {' '.join(words[:SNIPPET_WORDS])!r}{more}")
        kind = "answer in passage 1" if number == 1 else "answer in a later passage"
        return Diagnosis(kind, flags, lines)
    if not holding:
        lines.append("  no chunk holds the whole answer")
        return Diagnosis("answer split across chunks", flags, lines)
    position = texts[q.source].find(answer)
    gaps = []
    for p in outcome.passages:
        span = _span(texts, p)
        if p.source_name == q.source and span is not None:
            start, end = span
            gaps.append(max(start - (position + len(answer)), position - end, 0))
    if gaps and min(gaps) <= NEAR_CHARS:
        lines.append(f"  the answer is {min(gaps)} characters from a passage sent")
        return Diagnosis("neighbouring chunk", flags, lines)
    if holding[0].score < min_score:
        return Diagnosis("answer's chunk below min_score", flags, lines)
    return Diagnosis("ranked lower", flags, lines)


async def report_misses(
    gateway: KnowledgeGateway,
    evaluation: Evaluation,
    *,
    bot_id: int,
    source_ids: frozenset[str],
    min_score: float,
) -> tuple[Counter[str], Counter[str]]:
    """Print each question missed (recall first, then top-1) and why; the count of each kind
    and of each flag."""
    texts = {name: _located(name) for name in DOCUMENTS}
    kinds: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    missed = [o for o in evaluation.outcomes if not o.recalled]
    missed += [o for o in evaluation.outcomes if o.recalled and not o.top1]
    for outcome in missed:
        found = await diagnose(
            gateway,
            outcome,
            bot_id=bot_id,
            source_ids=source_ids,
            texts=texts,
            min_score=min_score,
        )
        what = "not in the passages" if not outcome.recalled else "not in the reply"
        kinds[f"{what}: {found.kind}"] += 1
        flags.update(f"{what}: {flag}" for flag in found.flags)
        q = outcome.question
        _log(f"MISSED ({what}; {found.kind}) [{q.source}] {q.question}")
        for line in found.lines:
            _log(line)
    return kinds, flags


# -- the run ----------------------------------------------------------------------------------


async def run(report: Report) -> None:
    started = time.perf_counter()
    top_k, min_score = retrieve_defaults()
    questions = load_questions()
    small = [q for q in questions if q.small]
    gateway = KnowledgeGateway(store=VectorStore(":memory:"), embedder=OnnxMiniLmEmbedder())
    try:
        report.begin("ingesting the documents")
        clock = time.perf_counter()
        ingested = await ingest(gateway, bot_id=BOT_ID, names=DOCUMENTS)
        chunks = sum(i.chunks for i in ingested.values())
        _log(
            f"ingested {len(DOCUMENTS)} documents, {chunks} chunks, in "
            f"{time.perf_counter() - clock:.1f} s (model loading included)"
        )
        report.begin("asking the questions")
        clock = time.perf_counter()
        sources = frozenset(i.source_id for i in ingested.values())
        found = await evaluate(
            gateway,
            bot_id=BOT_ID,
            source_ids=sources,
            questions=questions,
            top_k=top_k,
            min_score=min_score,
        )
        _log(f"asked {len(questions)} questions in {time.perf_counter() - clock:.1f} s")
        recalled = sum(o.recalled for o in found.outcomes)
        first = sum(o.top1 for o in found.outcomes)
        setup = (
            f"{len(questions)} questions (bench/data/retrieval/questions.yaml) over "
            f"{len(DOCUMENTS)} real documents for one bot (GPL-3.0 and MPL-2.0 texts, IDLE's "
            f"guide, 5 topics of the Python Language Reference; {chunks} chunks); "
            f"KnowledgeGateway.retrieve(limit={top_k}, min_score={min_score}: a retrieve "
            "step's defaults), offline MiniLM embedder, in-memory Qdrant; an answer is a phrase "
            "of its document, compared in lower case, whitespace collapsed"
        )
        report.add(
            Figure(
                "retrieval_recall_at_k",
                round(found.recall, 3),
                goal=RECALL_GOAL,
                how=f"{recalled}/{len(questions)} with the answer in a passage sent; {setup}",
            ),
            Figure(
                "retrieval_top1",
                round(found.top1, 3),
                goal=TOP1_GOAL,
                how=(
                    f"{first}/{len(questions)} with the answer in the offline model's reply "
                    "(offline_answer, what a bot on the offline model says); the same questions"
                ),
            ),
        )
        for name in DOCUMENTS:
            part = found.only(q for q in questions if q.source == name)
            _log(
                f"{name}: recall {part.recall:.3f}, top-1 {part.top1:.3f} "
                f"({len(part.outcomes)} questions)"
            )
        part = found.only(small)
        alone = await evaluate(
            gateway,
            bot_id=BOT_ID,
            source_ids=frozenset(ingested[name].source_id for name in sources_of(small)),
            questions=small,
            top_k=top_k,
            min_score=min_score,
        )
        _log(
            f"small subset, {len(small)} questions: with all {len(DOCUMENTS)} documents recall "
            f"{part.recall:.3f}, top-1 {part.top1:.3f}; with only {', '.join(sources_of(small))} "
            f"recall {alone.recall:.3f}, top-1 {alone.top1:.3f}"
        )
        report.begin("looking at the misses")
        kinds, flags = await report_misses(
            gateway, found, bot_id=BOT_ID, source_ids=sources, min_score=min_score
        )
        for kind, count in kinds.most_common():
            _log(f"{count} x {kind}")
        for flag, count in flags.most_common():
            _log(f"  of which {count} x {flag}")
    finally:
        await gateway.close()
    _log(f"took {time.perf_counter() - started:.1f} s")
