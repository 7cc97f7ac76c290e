"""The terminal writes a file the Studio sends (a flow's picture) into a folder and says where."""

from __future__ import annotations

from pathlib import Path

import httpx

from adapters.terminal.chat import HttpLink, LocalLink, shown
from runtime.messages import Attachment
from studio.replies import Answer
from tests.factories import Service
from tests.png import png_size


async def test_a_flow_picture_is_saved_and_its_path_printed(
    service: Service, tmp_path: Path
) -> None:
    await service.reply("/newbot faq-bot")
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio.test", headers=service.auth()
    ) as client:
        [text] = await HttpLink(client, folder=tmp_path / "files").say("/flow faq-bot")
    saved = tmp_path / "files" / "faq-bot-flow.png"
    assert text.endswith(f"(file: faq-bot-flow.png, saved as {saved})")
    assert "runs the plain flow" in text
    png_size(saved.read_bytes())


async def test_the_local_link_saves_under_the_data_folder(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    core = service.app.state.core
    caller = await core.ops.authenticate(service.key)
    link = LocalLink(core, caller.team_id, "api:owner")
    [text] = await link.say("/flow faq-bot")
    saved = service.settings.data_dir / "files" / "faq-bot-flow.png"
    assert text.endswith(f"saved as {saved})")
    png_size(saved.read_bytes())


async def test_a_file_name_cannot_leave_the_folder(tmp_path: Path) -> None:
    answer = Answer("Here.", file=Attachment(name="../../etc/passwd", content="x"))
    text = await shown(answer, tmp_path / "files")
    written = tmp_path / "files" / "_.._etc_passwd"
    assert text == f"Here.\n\n(file: ../../etc/passwd, saved as {written})"
    assert written.read_text() == "x"
