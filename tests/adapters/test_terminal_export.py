"""`/export` in the terminal: the CSV is written into the files folder, and the answer says
where."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx

from adapters.terminal.chat import HttpLink
from studio.exports import CSV_COLUMNS
from tests.factories import Service


async def test_an_export_is_saved_and_its_path_printed(service: Service, tmp_path: Path) -> None:
    deployment = await service.live_web_bot()
    assert (await service.chat(deployment, "Hello?")).status_code == 200
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio.test", headers=service.auth()
    ) as client:
        [text] = await HttpLink(client, folder=tmp_path / "files").say("/export faq-bot 30d")
    saved = tmp_path / "files" / "faq-bot-conversations-30d.csv"
    assert "1 conversation, 2 messages in the last 30 days" in text
    assert text.endswith(f"(file: faq-bot-conversations-30d.csv, saved as {saved})")
    with saved.open(newline="") as exported:
        header, *rows = list(csv.reader(exported))
    question, _ = rows
    assert tuple(header) == CSV_COLUMNS and question[7] == "Hello?"
