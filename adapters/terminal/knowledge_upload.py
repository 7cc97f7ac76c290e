"""`python main.py knowledge add BOT PATH...`: upload files to a bot's knowledge, with progress.

The files go through the running service's REST API (`POST /api/v1/bots/{bot}/knowledge`), since
the embedded vector store belongs to the one process that serves. Each body is streamed in 64 KB
chunks so a progress bar can follow it; on a terminal the bar is redrawn in place, elsewhere (logs,
pipes) only one line per file is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import mimetypes
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from runtime.knowledge.extract import MAX_SOURCE_BYTES, format_size

DEFAULT_URL = "http://127.0.0.1:8000"
CHUNK_BYTES = 64 * 1024
HEALTH_TIMEOUT_S = 3.0
UPLOAD_TIMEOUT_S = 120.0  # per file: the service extracts and embeds before it answers
EMBED_S_PER_KB = 0.5  # and more for a big one: about 0.2 s/KB of plain text on 2 CPUs offline
BAR_WIDTH = 20
NAME_WIDTH = 40
_PROCESSING = "  processing…"
ERROR_TEXT_CHARS = 200


class UploadFailed(Exception):
    """One file was not added; the message is one line for the user."""


@dataclass(slots=True)
class _Bar:
    """The progress of one upload on `out`: redrawn in place on a terminal, silent elsewhere."""

    out: TextIO
    label: str
    total: int
    live: bool
    sent: int = 0
    processing: bool = False  # every byte is sent; the service is working on the file
    drawn: str = field(default="", repr=False)

    def advance(self, size: int) -> None:
        self.sent += size
        self.draw()

    def draw(self, note: str = "") -> None:
        if not self.live:
            return
        done = 1.0 if self.total <= 0 else min(self.sent / self.total, 1.0)
        filled = round(done * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = f"{self.label}  [{bar}] {done:4.0%}  {_amounts(self.sent, self.total)}{note}"
        if line != self.drawn:
            self._write(line)

    def clear(self) -> None:
        """Take the bar off its line (before another line is printed there)."""
        if self.live and self.drawn:
            self.out.write("\r" + " " * len(self.drawn) + "\r")
            self.out.flush()
            self.drawn = ""

    def _write(self, line: str) -> None:
        padding = " " * max(len(self.drawn) - len(line), 0)
        self.out.write("\r" + line + padding)
        self.out.flush()
        self.drawn = line


def _amounts(sent: int, total: int) -> str:
    """`1.2/2.6 MB`, in the unit that suits the total."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if total >= scale:
            return f"{sent / scale:.1f}/{total / scale:.1f} {unit}"
    return f"{sent}/{total} bytes"


def _short(name: str) -> str:
    return name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _problem(path: Path) -> str | None:
    """Why `path` cannot be uploaded, found without the service; None when it can."""
    if path.is_dir():
        return f"is a directory; name the files in it (e.g. {path}/*.pdf)"
    if not path.is_file():
        return "no such file"
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        limit = format_size(MAX_SOURCE_BYTES)
        return f"not uploaded: {format_size(size)} is over the limit of {limit}"
    return None


async def _chunks(path: Path, size: int, bar: _Bar) -> AsyncIterator[bytes]:
    """At most `size` bytes of `path`, 64 KB at a time, advancing `bar` as each is taken."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        left = size
        while left > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
            bar.advance(len(chunk))
        bar.processing = True
        bar.draw(_PROCESSING)
    finally:
        handle.close()


def _error(response: httpx.Response) -> str:
    """The service's `{"error": ...}`, else the status and the start of the body."""
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    text = " ".join(response.text.split())[:ERROR_TEXT_CHARS]
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"


def _outcome(data: Any) -> str:
    """`added, 14 passages` (or replaced, already known) from the service's answer."""
    if not isinstance(data, dict) or not isinstance(data.get("chunks"), int):
        raise UploadFailed(f"unexpected answer from the service: {str(data)[:ERROR_TEXT_CHARS]}")
    chunks: int = data["chunks"]
    verb = (
        "already known"
        if data.get("unchanged")
        else "replaced"
        if data.get("replaced")
        else "added"
    )
    return f"{verb}, {chunks} passage{'' if chunks == 1 else 's'}"


def answer_timeout(size: int) -> float:
    """Seconds to wait for the service's answer about a file of `size` bytes."""
    return UPLOAD_TIMEOUT_S + EMBED_S_PER_KB * size / 1024


async def _tick(bar: _Bar) -> None:
    """While the service works on the file, show for how long (on a terminal)."""
    waited = 0
    while True:
        await asyncio.sleep(1)
        if bar.processing:
            waited += 1
            bar.draw(f"{_PROCESSING} {waited} s")


async def _send(client: httpx.AsyncClient, bot: str, path: Path, bar: _Bar) -> str:
    """Upload one file; what became of it, or UploadFailed."""
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Content-Type": content_type, "Content-Length": str(bar.total)}
    wait = answer_timeout(bar.total)
    bar.draw()
    ticker = asyncio.create_task(_tick(bar)) if bar.live else None
    try:
        response = await client.post(
            f"/api/v1/bots/{bot}/knowledge",
            params={"name": path.name},
            content=_chunks(path, bar.total, bar),
            headers=headers,
            timeout=httpx.Timeout(UPLOAD_TIMEOUT_S, connect=HEALTH_TIMEOUT_S, read=wait),
        )
    except httpx.TimeoutException:
        raise UploadFailed(
            f"no answer within {wait:.0f} s (the service may still add it)"
        ) from None
    except (httpx.HTTPError, OSError) as exc:
        raise UploadFailed(f"the upload broke off: {exc or type(exc).__name__}") from None
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
    if response.status_code != 201:
        raise UploadFailed(_error(response))
    try:
        return _outcome(response.json())
    except ValueError:
        raise UploadFailed(_error(response)) from None


async def _service_answers(client: httpx.AsyncClient) -> bool:
    try:
        response = await client.get("/healthz", timeout=HEALTH_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def upload(
    *,
    client: httpx.AsyncClient,
    bot: str,
    paths: Sequence[Path],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Upload `paths` to `bot`'s knowledge through `client` (base URL and key already set).

    0 when every file was added, 1 when some were not, 2 when nothing could be tried: no service
    answers, or none of the paths is a file.
    """
    problems = {path: _problem(path) for path in paths}
    if not any(path.is_file() for path in paths):
        for path in paths:
            print(f"{path}: {problems[path]}", file=err)
        print("No files to add.", file=err)
        return 2
    if not await _service_answers(client):
        url = str(client.base_url).rstrip("/")
        print(
            f"No service at {url}: start it with `python main.py serve` "
            "(knowledge goes through the running service).",
            file=err,
        )
        return 2
    live = _is_tty(out)
    added = 0
    for number, path in enumerate(paths, start=1):
        counter = f"[{number}/{len(paths)}]"
        problem = problems[path]
        if problem is not None:
            shown = path.name if path.is_file() else str(path)
            print(f"{counter} {shown}: {problem}", file=err)
            continue
        bar = _Bar(out, f"{counter} {_short(path.name)}", path.stat().st_size, live)
        try:
            outcome = await _send(client, bot, path, bar)
        except UploadFailed as exc:
            bar.clear()
            print(f"{counter} {path.name}: failed: {exc}", file=err)
            continue
        bar.clear()
        added += 1
        print(f"{counter} {path.name}: {outcome}", file=out)
    print(f"Added {added} of {len(paths)} files to {bot}.", file=out)
    return 0 if added == len(paths) else 1


def _local_key() -> str | None:
    """The local team's key in the data directory (`./data/local.key` by default)."""
    from pydantic import ValidationError

    from studio.settings import Settings

    try:
        data_dir = Settings().data_dir  # type: ignore[call-arg]
    except ValidationError:
        data_dir = Path("data")
    try:
        return (data_dir / "local.key").read_text().strip() or None
    except OSError:
        return None


async def _upload_to(url: str, key: str, bot: str, paths: Sequence[Path]) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=UPLOAD_TIMEOUT_S) as client:
        return await upload(client=client, bot=bot, paths=paths, out=sys.stdout, err=sys.stderr)


def cli(args: argparse.Namespace) -> int:
    """Run `knowledge add` from parsed arguments (`bot`, `paths`, `url`, `key`)."""
    key = args.key or os.environ.get("STUDIO_API_KEY") or _local_key()
    if not key:
        print(
            "No API key: give --key, set STUDIO_API_KEY, or run from the directory whose "
            "data/local.key the service wrote.",
            file=sys.stderr,
        )
        return 2
    paths = [Path(p) for p in args.paths]
    try:
        return asyncio.run(_upload_to(args.url, key, args.bot, paths))
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define `knowledge add BOT PATH [PATH ...] [--url URL] [--key KEY]` under `parser`."""
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="upload files (txt, md, html, pdf, docx) through the running service"
    )
    add.add_argument("bot", help="the bot whose knowledge gets the files")
    add.add_argument("paths", nargs="+", metavar="PATH", help="files to upload")
    add.add_argument(
        "--url", default=DEFAULT_URL, help=f"the running service (default {DEFAULT_URL})"
    )
    add.add_argument("--key", help="its team key (default STUDIO_API_KEY or data/local.key)")
    add.set_defaults(run=cli)
