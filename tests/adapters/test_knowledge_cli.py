"""`python main.py knowledge add`: files go through the running service, with progress."""

from __future__ import annotations

import argparse
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.terminal.knowledge_upload import add_arguments, answer_timeout, cli, upload
from tests.conftest import running_service, service_settings
from tests.factories import Service

REFUNDS = "# Refunds\n\nRefunds take five working days.\n\nWe refund to the original card.\n"
HOURS = "Opening hours\n\nWe are open from nine to five, Monday to Friday.\n"


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(service_settings(tmp_path / "service")) as running:
        yield running


def client_for(service: Service, requests: list[httpx.Request] | None = None) -> httpx.AsyncClient:
    """A client like the command's, speaking to the app in this process (and noting requests)."""

    async def note(request: httpx.Request) -> None:
        if requests is not None:
            requests.append(request)

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app),
        base_url="http://studio.test",
        headers=service.auth(),
        event_hooks={"request": [note]},
    )


async def run(
    client: httpx.AsyncClient, bot: str, *paths: Path, out: io.StringIO | None = None
) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    async with client:
        status = await upload(client=client, bot=bot, paths=paths, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def knowledge_posts(requests: list[httpx.Request]) -> list[str]:
    return [r.url.params["name"] for r in requests if r.method == "POST"]


async def test_good_files_are_added_and_bad_ones_are_named(svc: Service, tmp_path: Path) -> None:
    await svc.import_bot("faq-bot")
    (tmp_path / "refunds.md").write_text(REFUNDS)
    (tmp_path / "hours.txt").write_text(HOURS)
    (tmp_path / "notes.xyz").write_text("what is this")
    (tmp_path / "folder").mkdir()
    paths = [tmp_path / n for n in ("refunds.md", "missing.md", "hours.txt", "notes.xyz", "folder")]

    status, out, err = await run(client_for(svc), "faq-bot", *paths)

    assert status == 1
    lines = out.splitlines()
    assert re.fullmatch(r"\[1/5\] refunds\.md: added, \d+ passages?", lines[0])
    assert lines[1].startswith("[3/5] hours.txt: added, ")
    assert lines[-1] == "Added 2 of 5 files to faq-bot."
    assert "\r" not in out and "%" not in out
    problems = err.splitlines()
    assert problems[0] == f"[2/5] {tmp_path / 'missing.md'}: no such file"
    assert problems[1].startswith("[4/5] notes.xyz: failed: ")
    assert "unsupported file type" in problems[1]  # the service's own words
    assert problems[2].startswith(f"[5/5] {tmp_path / 'folder'}: is a directory")
    listed = await svc.call("GET", "/api/v1/bots/faq-bot/knowledge")
    assert {source["name"] for source in listed} == {"refunds.md", "hours.txt"}


async def test_again_is_already_known_and_changed_is_replaced(svc: Service, tmp_path: Path) -> None:
    await svc.import_bot("faq-bot")
    doc = tmp_path / "refunds.md"
    doc.write_text(REFUNDS)
    assert (await run(client_for(svc), "faq-bot", doc))[0] == 0

    status, out, _ = await run(client_for(svc), "faq-bot", doc)
    assert status == 0 and out.startswith("[1/1] refunds.md: already known, ")

    doc.write_text(REFUNDS + "\nExpress refunds take one day.\n")
    status, out, _ = await run(client_for(svc), "faq-bot", doc)
    assert status == 0 and out.startswith("[1/1] refunds.md: replaced, ")
    assert out.endswith("Added 1 of 1 files to faq-bot.\n")


async def test_the_services_refusals_are_shown(svc: Service, tmp_path: Path) -> None:
    doc = tmp_path / "refunds.md"
    doc.write_text(REFUNDS)

    status, out, err = await run(client_for(svc), "ghost", doc)
    assert status == 1
    assert err == "[1/1] refunds.md: failed: No bot named 'ghost'.\n"
    assert out == "Added 0 of 1 files to ghost.\n"

    client = client_for(svc)
    client.headers["Authorization"] = "Bearer cs_not-a-key"
    status, _, err = await run(client, "ghost", doc)
    assert status == 1 and err.startswith("[1/1] refunds.md: failed: ") and "key" in err.lower()


async def test_a_file_over_the_limit_is_not_sent(svc: Service, tmp_path: Path) -> None:
    await svc.import_bot("faq-bot")
    big = tmp_path / "huge.pdf"
    with big.open("wb") as f:
        f.truncate(21 * 1024 * 1024)
    doc = tmp_path / "refunds.md"
    doc.write_text(REFUNDS)
    requests: list[httpx.Request] = []

    status, out, err = await run(client_for(svc, requests), "faq-bot", big, doc)

    assert status == 1
    assert err == "[1/2] huge.pdf: not uploaded: 21 MB is over the limit of 20 MB\n"
    assert "[2/2] refunds.md: added" in out
    assert knowledge_posts(requests) == ["refunds.md"]


async def test_without_a_service_nothing_is_tried(tmp_path: Path) -> None:
    doc = tmp_path / "refunds.md"
    doc.write_text(REFUNDS)
    client = httpx.AsyncClient(base_url="http://127.0.0.1:9")

    status, out, err = await run(client, "faq-bot", doc)

    assert status == 2 and out == ""
    assert err.startswith("No service at http://127.0.0.1:9: start it with `python main.py serve`")


async def test_no_file_at_all_is_a_usage_error(svc: Service, tmp_path: Path) -> None:
    requests: list[httpx.Request] = []
    status, out, err = await run(client_for(svc, requests), "faq-bot", tmp_path / "nope.md")
    assert status == 2 and out == "" and requests == []
    assert err == f"{tmp_path / 'nope.md'}: no such file\nNo files to add.\n"


async def test_progress_is_drawn_in_place_on_a_terminal(svc: Service, tmp_path: Path) -> None:
    await svc.import_bot("faq-bot")
    doc = tmp_path / "long.txt"
    doc.write_text("Refunds take five working days to reach the card. " * 3000)  # ~150 KB
    tty = FakeTty()

    status, out, _ = await run(client_for(svc), "faq-bot", doc, out=tty)

    assert status == 0
    assert out.count("\r") >= 4  # 0%, three chunks of 64 KB or less, then the answer
    assert "[1/1] long.txt  [" in out and " 44%" in out and "100%" in out
    assert "[#########...........]  44%  64.0/146.5 KB" in out
    last_line = out.rsplit("\r", 1)[-1]
    assert last_line.startswith("[1/1] long.txt: added, ")
    assert last_line.endswith("\nAdded 1 of 1 files to faq-bot.\n")


async def test_a_non_json_error_shows_the_status_and_the_text(tmp_path: Path) -> None:
    """A proxy in front of the service may answer in HTML."""
    doc = tmp_path / "refunds.md"
    doc.write_text(REFUNDS)
    received: list[bytes] = []

    async def proxy(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        received.append(await request.aread())
        assert request.headers["content-type"] == "text/markdown"
        assert request.headers["content-length"] == str(len(REFUNDS))
        return httpx.Response(502, text="<html>Bad gateway " + "x" * 500 + "</html>")

    client = httpx.AsyncClient(transport=httpx.MockTransport(proxy), base_url="http://proxy")
    status, _, err = await run(client, "faq-bot", doc)

    assert status == 1 and received == [REFUNDS.encode()]
    assert err.startswith("[1/1] refunds.md: failed: HTTP 502: <html>Bad gateway xxx")
    assert len(err) < 260


def test_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STUDIO_API_KEY", raising=False)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    top = argparse.ArgumentParser()
    add_arguments(top.add_subparsers(dest="command").add_parser("knowledge"))
    (tmp_path / "a.md").write_text(REFUNDS)

    args = top.parse_args(["knowledge", "add", "faq-bot", "a.md", "b.txt"])
    assert (args.bot, args.paths, args.url, args.key) == (
        "faq-bot",
        ["a.md", "b.txt"],
        "http://127.0.0.1:8000",
        None,
    )
    assert args.run is cli
    with pytest.raises(SystemExit):
        top.parse_args(["knowledge", "add", "faq-bot"])

    assert cli(args) == 2
    assert "No API key" in capsys.readouterr().err

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "local.key").write_text("cs_local\n")
    args = top.parse_args(["knowledge", "add", "faq-bot", "a.md", "--url", "http://127.0.0.1:9"])
    assert cli(args) == 2
    assert "No service at http://127.0.0.1:9" in capsys.readouterr().err


def test_a_bigger_file_gets_longer_to_be_embedded() -> None:
    assert answer_timeout(0) == 120
    assert answer_timeout(256 * 1024) > 2 * 60  # such a text took the service about a minute
    assert answer_timeout(20 * 1024 * 1024) > 2 * 60 * 60
