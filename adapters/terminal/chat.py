"""`python main.py chat`: talk to the Studio in the terminal.

When a service is running (`--url`), the terminal speaks to it over HTTP with a team key, so the
running service stays the one owner of the embedded stores and its caches. Without one, the
Studio runs in this process on the same data. Either way it is the same engine, rendered as
plain text; what the Studio says later (test reports) is printed as it arrives. A secret's
value (`/secret set NAME`) is asked for with a prompt that does not echo, and goes to the Studio
sealed (in this process) or to `PUT /api/v1/secrets/NAME` (a running service).
"""

from __future__ import annotations

import asyncio
import getpass
import io
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from runtime.messages import Attachment, Button, Field, IncomingMessage, OutgoingMessage
from studio.address import PULL_CHANNEL, studio_address
from studio.presenters import render_text
from studio.replies import Answer, secret_action, secret_form

if TYPE_CHECKING:
    from main import Services

# Where a file the Studio sends (a flow's picture) is written when no data folder is at hand.
FILES_DIR = Path(tempfile.gettempdir()) / "chat-studio"
PROMPT = "you> "
GOODBYE = ("exit", "quit", "/exit", "/quit")
POLL_S = 1.0


class StudioLink(Protocol):
    """Where the terminal's words go: a running service, or the Studio in this process.
    `secret_form`: the private form the Studio's last answer offers (a secret's value to give
    with `give_secret`), or None."""

    secret_form: str | None

    async def say(self, text: str) -> list[str]: ...

    async def give_secret(self, form: str, value: str) -> list[str]: ...

    async def later(self) -> list[str]: ...

    async def settle(self) -> None:
        """Wait for work the Studio started in the background (before leaving)."""
        ...


def _answer(data: dict[str, Any]) -> Answer:
    file = data.get("file")
    return Answer(
        text=data.get("text", ""),
        fields=tuple(Field.model_validate(f) for f in data.get("fields", [])),
        buttons=tuple(Button.model_validate(b) for b in data.get("buttons", [])),
        file=Attachment.model_validate(file) if file else None,
    )


def _secret_form(buttons: list[Button]) -> str | None:
    return next((b.action for b in buttons if secret_form(b.action) is not None), None)


def _save(folder: Path, file: Attachment) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]", "_", file.name).lstrip(".")[:100] or "file")
    path.write_bytes(file.payload)
    return path


async def shown(message: Answer | OutgoingMessage, folder: Path) -> str:
    """A reply as plain text; the file it carries (a picture) is written into `folder` and the
    text says where."""
    text = render_text(message)
    file = message.file
    if file is None:
        return text
    path = await asyncio.to_thread(_save, folder, file)
    return text.removesuffix(f"(file: {file.name})") + f"(file: {file.name}, saved as {path})"


class HttpLink:
    """The Studio of a running service, through `POST|GET /api/v1/studio/messages`."""

    def __init__(self, client: httpx.AsyncClient, *, folder: Path = FILES_DIR) -> None:
        self.client = client
        self.folder = folder
        self.after = 0
        self.secret_form: str | None = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON answer, or `LinkError` with a message a person can act on."""
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LinkError(f"the service did not answer ({type(exc).__name__})") from None
        try:
            data = response.json()
        except ValueError:
            raise LinkError(f"the service answered HTTP {response.status_code}") from None
        if response.status_code >= 400 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            raise LinkError(error or f"HTTP {response.status_code}")
        return data

    async def start(self) -> None:
        """Begin after the member's newest stored message: old reports are not shown again."""
        data = await self._call("GET", "/api/v1/studio/messages")
        self.after = int(data["latest"])

    async def say(self, text: str) -> list[str]:
        data = await self._call("POST", "/api/v1/studio/messages", json={"text": text})
        answers = [_answer(m) for m in data["messages"]]
        self.secret_form = _secret_form([b for a in answers for b in a.buttons])
        return [await shown(answer, self.folder) for answer in answers]

    async def give_secret(self, form: str, value: str) -> list[str]:
        """Through REST, with the link's key, for the request the form names."""
        found = secret_form(form)
        assert found is not None
        body = {"request": found[0], "value": value}
        data = await self._call("POST", "/api/v1/studio/secrets", json=body)
        return [await shown(_answer(m), self.folder) for m in data["messages"]]

    async def later(self) -> list[str]:
        data = await self._call("GET", "/api/v1/studio/messages", params={"after": self.after})
        self.after = int(data["last"])
        return [await shown(_answer(m), self.folder) for m in data["messages"]]

    async def settle(self) -> None:
        return None


class LocalLink:
    """The Studio in this process (no service running), speaking as `identity`."""

    def __init__(self, services: Services, team_id: int, identity: str) -> None:
        self.services = services
        self.team_id = team_id
        self.identity = identity
        self.folder = services.settings.data_dir / "files"
        self.after = 0
        self.secret_form: str | None = None

    async def start(self) -> None:
        self.after = await self.services.mailbox.latest_id(self.team_id, self.identity)

    async def say(self, text: str) -> list[str]:
        return await self._answer(text=text)

    async def give_secret(self, form: str, value: str) -> list[str]:
        """Sealed at once, like a front that takes a value privately, for the form's request."""
        found = secret_form(form)
        assert found is not None
        cipher = self.services.cipher
        return await self._answer(action=secret_action(cipher, value, request=found[0]))

    async def _answer(self, *, text: str = "", action: str | None = None) -> list[str]:
        message = IncomingMessage(
            address=studio_address(PULL_CHANNEL, self.team_id, self.identity),
            text=text,
            action=action,
        )
        reply = await self.services.runtime.answer(message)
        self.secret_form = _secret_form([b for m in reply.messages for b in m.buttons])
        return [await shown(m, self.folder) for m in reply.messages]

    async def later(self) -> list[str]:
        found = await self.services.mailbox.fetch(self.team_id, self.identity, after=self.after)
        if found:
            self.after = found[-1][0]
        return [await shown(m, self.folder) for _, m in found]

    async def settle(self) -> None:
        await self.services.studio.drain()


async def _typed(read: Callable[..., str], *args: str) -> str:
    """What `read` returns, waited for in a daemon thread of its own: a thread of the loop's
    executor blocked on the terminal held the process at exit (Ctrl-C quit only after Enter)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():  # a cancelled wait (Ctrl-C) takes no answer
            outcome()

    def run() -> None:
        try:
            line = read(*args)
        except Exception as exc:  # handed to the waiting task
            loop.call_soon_threadsafe(settle, partial(future.set_exception, exc))
        else:
            loop.call_soon_threadsafe(settle, partial(future.set_result, line))

    threading.Thread(target=run, name="terminal-input", daemon=True).start()
    return await future


class LinkError(Exception):
    """The service refused a message (bad key, wrong role); the message says why."""


async def converse(
    link: StudioLink,
    *,
    read: Callable[[], str],
    write: Callable[[str], None],
    interactive: bool,
    hidden: Callable[[str], str] | None = None,
) -> None:
    """Read lines until EOF or `exit`, print the Studio's answers and, meanwhile, what it says
    later. `read` blocks, so it runs in a thread; so does `hidden`, the prompt that does not
    echo (None: the terminal cannot hide what is typed, and a secret's value is set by REST)."""

    async def later() -> list[str]:
        try:
            return await link.later()
        except LinkError as exc:
            return [f"error: {exc}"]

    async def watch() -> None:
        while True:
            await asyncio.sleep(POLL_S)
            for text in await later():
                write(f"\n{text}\n" + (PROMPT if interactive else ""))

    watcher = asyncio.create_task(watch())
    try:
        while True:
            if interactive:
                write(PROMPT)
            line = await _typed(read)
            if not line:
                break
            text = line.strip()
            if text.lower() in GOODBYE:
                break
            if not text:
                continue
            try:
                for answer in await link.say(text):
                    write(f"{answer}\n\n")
                if link.secret_form is not None and hidden is not None:
                    await _give_secret(link, link.secret_form, hidden, write)
            except LinkError as exc:
                write(f"error: {exc}\n\n")
    finally:
        watcher.cancel()
    await link.settle()
    for text in await later():
        write(f"{text}\n\n")


async def _give_secret(
    link: StudioLink, form: str, hidden: Callable[[str], str], write: Callable[[str], None]
) -> None:
    """Ask for a secret's value without echoing it, and hand it over."""
    found = secret_form(form)
    assert found is not None
    value = await _typed(hidden, f"Value of {found[1]} (not shown; Enter to cancel): ")
    if not value:
        write("Nothing was saved.\n\n")
        return
    for answer in await link.give_secret(form, value):
        write(f"{answer}\n\n")


async def chat_in_terminal(link: StudioLink) -> None:
    """The loop on this process's stdin and stdout (a prompt only when stdin is a terminal)."""
    interactive = sys.stdin.isatty()
    if isinstance(sys.stdin, io.TextIOWrapper):
        # Bytes that are not text in the terminal's encoding (a paste, a pipe) become U+FFFD:
        # strict decoding stopped the chat with a traceback, and surrogate escapes cannot be
        # sent or stored.
        sys.stdin.reconfigure(errors="replace")

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if interactive:
        write("Chat Studio: talk to the Studio (/help for the commands, exit to leave).\n\n")
    await converse(
        link,
        read=sys.stdin.readline,
        write=write,
        interactive=interactive,
        hidden=getpass.getpass if interactive else None,
    )
