"""Team secrets set through Telegram, Slack, the terminal and REST never appear in clear
anywhere the service writes: not in the database file (any table, the WAL included), not in a
log line at DEBUG, not in anything sent to a platform. Only their ciphertext is stored."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapters.terminal.chat import LocalLink, converse
from tests.adapters.slack.test_slack_flow import SECRET, dm, post, posted, text_of
from tests.adapters.slack.test_slack_secrets import submit
from tests.adapters.slack.test_slack_telegram_token import opened_form
from tests.adapters.telegram.test_telegram_studio import (
    ALICE,
    BUILDER,
    member_of_local_team,
    said,
    tell,
)
from tests.adapters.telegram.test_telegram_studio import post as post_telegram
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import FORM, action_body
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update

PUBLIC = "https://studio.example.com"
VALUES = {
    "telegram": "sk-LEAKCHECK-telegram-7f3a9c",
    "slack": "sk-LEAKCHECK-slack-2b8e41",
    "terminal": "sk-LEAKCHECK-terminal-5d0c77",
    "rest": "sk-LEAKCHECK-rest-9e6f12",
}


@pytest.fixture
async def studio(
    tmp_path: Path, slack: FakeSlack, telegram: FakeTelegram
) -> AsyncIterator[Service]:
    telegram.add_bot(BUILDER, username="chat_studio_bot")
    settings = service_settings(
        tmp_path,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        telegram_api_url=telegram.base_url,
        telegram_builder_token=BUILDER,
        public_url=PUBLIC,
    )
    async with running_service(settings) as service:
        yield service


async def _by_telegram(studio: Service, telegram: FakeTelegram) -> None:
    await member_of_local_team(studio, telegram)
    await tell(studio, telegram, "/secret set from-telegram")
    before = len(await said(telegram, 0))
    value = message_update(VALUES["telegram"], chat_id=ALICE, user_id=ALICE)
    assert await post_telegram(studio, value) == 200
    assert "saved" in (await said(telegram, before + 1))[-1].body["text"]


async def _by_slack(studio: Service, slack: FakeSlack) -> None:
    asked = await dm(studio, slack, "secret set from-slack")
    (button,) = next(b for b in asked.body["blocks"] if b["type"] == "actions")["elements"]
    click = action_body(button["value"], action_id=button["action_id"], trigger_id="T.leak")
    await post(studio, click, content_type=FORM)
    form = await opened_form(slack)
    before = len(slack.calls_to("chat.postMessage"))
    await submit(studio, form, VALUES["slack"])
    assert "saved" in text_of((await posted(slack, before + 1))[-1])


async def _by_terminal(studio: Service) -> None:
    core = studio.app.state.core
    caller = await core.ops.authenticate(studio.key)
    lines = iter(["/secret set from-terminal\n", ""])
    written: list[str] = []
    await converse(
        LocalLink(core, caller.team_id, caller.identity),
        read=lambda: next(lines),
        write=written.append,
        interactive=False,
        hidden=lambda prompt: VALUES["terminal"],
    )
    assert "saved" in "".join(written)


async def test_secret_values_are_nowhere_in_clear(
    studio: Service, slack: FakeSlack, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _by_telegram(studio, telegram)
    await _by_slack(studio, slack)
    await _by_terminal(studio)
    await studio.call("PUT", "/api/v1/secrets/from-rest", json={"value": VALUES["rest"]})
    listed = await studio.call("GET", "/api/v1/secrets")
    audit = await studio.call("GET", "/api/v1/audit")

    core = studio.app.state.core
    stored: dict[str, Any] = {}
    async with core.db.read_conn() as conn:
        rows = await conn.execute(text("select team_id, name, ciphertext from team_secret"))
        sealed = {}
        for team, name, ciphertext in rows.all():
            stored[name] = await core.secrets.reveal(team, name)
            sealed[name] = ciphertext
    assert stored == {f"from-{front}": value for front, value in VALUES.items()}
    assert {s["name"] for s in listed} == {"from-telegram", "from-terminal", "from-rest"}

    await core.runtime.drain()
    database = core.db.sqlite_path
    assert database is not None
    files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    written = b"".join(p.read_bytes() for p in files)
    assert all(ciphertext in written for ciphertext in sealed.values())  # the grep sees the rows
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # and the DEBUG lines
    sent = json.dumps([c.body for c in [*telegram.calls, *slack.calls]], default=str)
    for value in VALUES.values():
        assert value.encode() not in written
        assert value not in caplog.text
        assert value not in sent
        assert value not in json.dumps([listed, audit])
