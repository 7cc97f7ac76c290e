"""The README's walk-throughs, played as written on a fresh service (offline model, no keys).

The lines are read from README.md: the `you>` transcript under "Talking to the Studio" goes to
`POST /api/v1/studio/messages`, and the REST example's shell lines (variables, a heredoc, curl) go
to the app over ASGI. Each step's effect is checked through REST, and each walk must end with a
deployed bot answering in the web chat, so an edit that stops working fails here.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from studio.commands import (
    Command,
    Deploy,
    KnowledgeAdd,
    NewBot,
    Promote,
    SetField,
    Stats,
    TestAdd,
    TestRun,
    TryBot,
)
from studio.grammar import parse
from tests.factories import Service
from tests.png import png_size

README = Path(__file__).resolve().parents[2] / "README.md"
ORIGIN = "http://127.0.0.1:8000"  # where `make run` serves, as the README's URLs say
_LINE = re.compile(r"you> (?P<text>.+?)(?:\s{2,}\((?P<note>.+)\))?")
_SAY = re.compile(r'say "(?P<word>[^"]+)"')
_CHAT_URL = re.compile(r"/chat/(?P<id>d_[\w-]+)")


def _fence(heading: str, info: str) -> str:
    """The first fenced block marked `info` right under `heading` (before any sub-heading)."""
    tokens = MarkdownIt().parse(README.read_text(encoding="utf-8"))
    current = None
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            current = tokens[index + 1].content
        elif token.type == "fence" and token.info == info and current == heading:
            return token.content
    raise AssertionError(f"README.md has no ```{info} block under '{heading}'")


# -- the Studio transcript -------------------------------------------------------------------


@dataclass
class Walk:
    """Plays transcript lines as one person, remembering what later steps check."""

    service: Service
    bot: str | None = None
    question: tuple[str, str] | None = None  # a test case's input and what the answer contains
    chats: int = 0  # turns sent to the web deployment
    done: set[str] = field(default_factory=set)

    async def play(self, text: str, note: str) -> None:
        bots = [b["name"] for b in await self.service.call("GET", "/api/v1/bots")]
        command = parse(text, bots=bots)
        assert command is not None, f"the offline Studio does not understand {text!r}"
        self.bot = getattr(command, "bot", None) or self.bot
        answer = await self.service.say(text)
        checks: dict[type[Command], Callable[[Any, dict[str, Any], str], Awaitable[None]]] = {
            NewBot: self._created,
            SetField: self._set,
            KnowledgeAdd: self._knowledge,
            TryBot: self._tried,
            TestAdd: self._test_added,
            TestRun: self._tested,
            Promote: self._promoted,
            Deploy: self._deployed,
            Stats: self._stats,
        }
        check = checks.get(type(command))
        assert check is not None, f"{text!r}: no check for {type(command).__name__} here yet"
        await check(command, answer, note)

    async def draft(self) -> dict[str, Any]:
        return (await self.service.call("GET", f"/api/v1/bots/{self.bot}"))["draft"]  # type: ignore[no-any-return]

    async def later(self) -> str:
        """What the Studio said after its answer (a background test run), once it finished."""
        await self.service.app.state.core.studio.drain()
        return (await self.service.notices())[-1]

    async def _created(self, command: NewBot, answer: dict[str, Any], note: str) -> None:
        assert (await self.draft())["model"] == "offline", answer["reply"]
        self.done.add("create")

    async def _set(self, command: SetField, answer: dict[str, Any], note: str) -> None:
        assert str((await self.draft())[command.field]) == command.value, answer["reply"]

    async def _knowledge(self, command: KnowledgeAdd, answer: dict[str, Any], note: str) -> None:
        sources = await self.service.call("GET", f"/api/v1/bots/{self.bot}/knowledge")
        assert sources and sources[-1]["chunks"] > 0, answer["reply"]

    async def _tried(self, command: TryBot, answer: dict[str, Any], note: str) -> None:
        reply = answer["reply"]
        assert reply.startswith(f"*{self.bot}* (draft): "), reply
        assert (await self.draft())["fallback"] not in reply, f"the bot could not answer: {reply}"

    async def _test_added(self, command: TestAdd, answer: dict[str, Any], note: str) -> None:
        case = {"turns": [command.input], "expect": {"kind": command.kind, "value": command.value}}
        assert (await self.draft())["tests"][-1] == case, answer["reply"]
        if command.kind == "contains":
            self.question = (command.input, command.value)

    async def _tested(self, command: TestRun, answer: dict[str, Any], note: str) -> None:
        assert "the report follows" in note, "say that the report comes later"
        report = await self.later()
        assert re.search(r"tests: \d+ passed, 0 failed", report), report

    async def _promoted(self, command: Promote, answer: dict[str, Any], note: str) -> None:
        path = f"/api/v1/bots/{self.bot}"
        if command.to == "staging":
            await self.service.app.state.core.studio.drain()  # if /promote ran the tests
            staging = (await self.service.call("GET", path))["environments"].get("staging")
            assert staging is not None, (answer["reply"], await self.service.notices())
            self.done.add("staging")
            return
        buttons = [b["label"] for m in answer["messages"] for b in m["buttons"]]
        assert "Confirm" in buttons, answer["reply"]
        said = _SAY.search(note)
        assert said, f"the line must say how to confirm ({answer['reply']})"
        confirmed = await self.service.reply(said["word"])
        environments = (await self.service.call("GET", path))["environments"]
        assert environments.get("production") == environments["staging"], confirmed
        self.done.add("production")

    async def _deployed(self, command: Deploy, answer: dict[str, Any], note: str) -> None:
        assert command.channel == "web" and "URL" in note
        found = _CHAT_URL.search(answer["reply"])
        assert found, answer["reply"]
        page = await self.service.client.get(f"/chat/{found['id']}")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert self.question, "the transcript needs a test case before it deploys"
        question, expected = self.question
        chat = await self.service.chat(found["id"], question)
        assert chat.status_code == 200 and expected in chat.json()["reply"], chat.text
        self.chats += 1
        self.done.add("web chat")

    async def _stats(self, command: Stats, answer: dict[str, Any], note: str) -> None:
        fields = {f["label"]: f["value"] for m in answer["messages"] for f in m["fields"]}
        assert fields.get("Turns") == str(self.chats), answer["reply"]


def _transcript() -> Iterator[tuple[str, str]]:
    for line in _fence("Talking to the Studio", "text").splitlines():
        said = _LINE.fullmatch(line.rstrip())
        assert said, f"not a 'you> ...' line: {line!r}"
        yield said["text"], said["note"] or ""


async def test_the_studio_walk_through_works_as_written(service: Service) -> None:
    walk = Walk(service)
    for text, note in _transcript():
        await walk.play(text, note)
    assert walk.done == {"create", "staging", "production", "web chat"}


# -- the REST example ------------------------------------------------------------------------


@dataclass
class Shell:
    """Just enough of sh for the README's example: `A=B;` assignments, `$(cat FILE)`, `$VAR`,
    `cat > FILE <<'TAG'` heredocs, `curl` (-s, -H, -d, --data-binary @FILE, -o FILE), and
    `# -> ...` lines that show what the previous command printed."""

    service: Service
    variables: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    saved: dict[str, bytes] = field(default_factory=dict)  # curl -o
    printed: Any = None
    chats: int = 0

    async def run(self, script: str) -> None:
        lines = iter(script.splitlines())
        for line in lines:
            heredoc = re.fullmatch(r"cat > (\S+) <<'(\w+)'", line)
            if heredoc:
                body = []
                for text in lines:
                    if text == heredoc[2]:
                        break
                    body.append(text + "\n")
                self.files[heredoc[1]] = "".join(body)
            elif line.startswith("# -> "):
                await self._shown(line.removeprefix("# -> "))
            else:
                await self._line(self._read(line))

    def _read(self, line: str) -> str:
        """`$(cat FILE)` replaced by the file: `data/` is the service's data folder."""

        def cat(match: re.Match[str]) -> str:
            path = match[1]
            if path.startswith("data/"):
                data_dir = self.service.settings.data_dir
                return (data_dir / path.removeprefix("data/")).read_text().strip()
            return self.files[path].strip()

        return re.sub(r"\$\(cat (\S+)\)", cat, line)

    def _expand(self, word: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: self.variables[m[1]], word)

    async def _line(self, line: str) -> None:
        """Words as sh splits them (quotes removed), statement by statement at each `;`."""
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
        lexer.whitespace_split = True
        words: list[str] = []
        for word in [*lexer, ";"]:
            if word == ";":
                await self._statement(words)
                words = []
            else:
                words.append(word)

    async def _statement(self, words: list[str]) -> None:
        if not words:
            return
        if all(re.fullmatch(r"\w+=.*", w) for w in words):
            for word in words:
                name, _, value = word.partition("=")
                self.variables[name] = self._expand(value)
            return
        assert words[0] == "curl", f"not in the example's sh: {words}"
        await self._curl([self._expand(w) for w in words[1:]])

    async def _curl(self, args: list[str]) -> None:
        headers: dict[str, str] = {}
        body: str | None = None
        url, output = "", ""
        options = iter(args)
        for arg in options:
            if arg == "-s":
                continue
            if arg == "-H":
                name, _, value = next(options).partition(":")
                headers[name.strip()] = value.strip()
            elif arg in ("-d", "--data-binary"):
                data = next(options)
                body = self.files[data[1:]] if data.startswith("@") else data
            elif arg == "-o":
                output = next(options)
            else:
                assert arg.startswith(f"{ORIGIN}/") and not url, f"unexpected curl word {arg!r}"
                url = arg
        method = "POST" if body is not None else "GET"
        response = await self.service.client.request(
            method, url.removeprefix(ORIGIN), headers=headers, content=body
        )
        assert response.status_code < 300, (url, response.status_code, response.text)
        if output:
            self.saved[output] = response.content
        else:
            self.printed = response.json()

    async def _shown(self, comment: str) -> None:
        """`{"id": "d_...", ...}: open URL in a browser`: the previous output has that shape
        (`...` stands for any id), and the page opens and its bot answers."""
        shown, _, then = comment.partition(": open ")
        expected = json.loads(shown)
        assert set(expected) == set(self.printed), (expected, self.printed)
        for key, value in expected.items():
            pattern = re.escape(value).replace(re.escape("..."), r"[\w-]+")
            assert re.fullmatch(pattern, str(self.printed[key])), (key, self.printed)
        url = then.removesuffix(" in a browser")
        assert url.removeprefix(ORIGIN) == expected["url"], url
        page = await self.service.client.get(self.printed["url"])
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        first = await self.service.chat(self.printed["id"], "Hello!")
        assert first.status_code == 200 and first.json()["reply"], first.text
        again = await self.service.chat(self.printed["id"], "Thanks", first.json()["session"])
        assert again.status_code == 200 and again.json()["reply"], again.text
        self.chats += 2


async def test_the_rest_example_works_as_written(service: Service) -> None:
    shell = Shell(service)
    await shell.run(_fence("A bot from YAML to a browser, by REST", "sh"))
    assert shell.files["faq-bot.yaml"].startswith("name: faq-bot\n")
    assert shell.chats == 2, "the example must open the deployed bot's chat page"
    assert shell.printed["turns"] == 2 and shell.printed["conversations"] == 1, shell.printed
    assert png_size(shell.saved["stats.png"]) == (800, 640)  # the chart of those two turns
