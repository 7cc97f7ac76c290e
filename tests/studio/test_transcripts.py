"""Transcripts: lines sent to the Studio over `POST /api/v1/studio/messages`, replies asserted.

The service is the real one (SQLite file, offline model unless a test points a bot at the fake
LLM); the owner key's member speaks unless a test names another `user`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from storage.tables import Bot, Confirmation, utcnow
from storage.test_runs import TestRunRepository
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM


async def wait_for_notice(service: Service, needle: str, *, user: str | None = None) -> str:
    """The first later message containing `needle` (background test runs report this way)."""
    for _ in range(200):
        for text in await service.notices(user=user):
            if needle in text:
                return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"no notice containing {needle!r}: {await service.notices(user=user)}")


async def test_build_a_bot_with_and_without_slashes(service: Service) -> None:
    created = await service.reply("/newbot faq-bot Answers refund questions")
    assert "faq-bot" in created
    assert "already exists" in await service.reply("newbot faq-bot")

    shown = await service.reply("show faq-bot")
    assert "faq-bot" in shown and "offline" in shown

    # the bot talked about last is the default subject
    edited = await service.reply("/set greeting Hello! Ask me about refunds.")
    assert "greeting" in edited
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["draft"]["greeting"] == (
        "Hello! Ask me about refunds."
    )
    await service.reply("/set faq-bot prompt You're Acme's refund helper; be brief.")
    draft = (await service.call("GET", "/api/v1/bots/faq-bot"))["draft"]
    assert draft["prompt"] == "You're Acme's refund helper; be brief."

    listed = await service.reply("/bots")
    assert "faq-bot" in listed


async def test_bad_input_gets_a_short_answer_and_changes_nothing(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    before = await service.call("GET", "/api/v1/bots/faq-bot")

    assert "Did you mean 'faq-bot'" in await service.reply("/show faq-bt")
    unknown_field = await service.reply("/set faq-bot colour red")
    assert "prompt" in unknown_field and "model" in unknown_field
    assert "at most 2" in await service.reply("/set faq-bot temperature 7")
    keyless = await service.reply("/set faq-bot model gpt-4o-mini")
    assert "OPENAI_API_KEY" in keyless
    assert "/show" in await service.reply("/shwo faq-bot")
    assert "knows nothing yet" in await service.reply("/knowledge faq-bot list")
    assert "has no source 'nope'" in await service.reply("/knowledge faq-bot remove nope")
    assert "has no schedule 'nope'" in await service.reply("/schedule faq-bot pause nope")
    assert "PERCENT must be from 1 to 99" in await service.reply("/abtest faq-bot v1 v2 150")
    assert "N must be from 1 to 500" in await service.reply("/dataset faq-bot from-last 0")
    assert "bots" in (await service.reply("blorp the zanzibar")).lower()

    too_long = await service.client.post(
        "/api/v1/studio/messages", headers=service.auth(), json={"text": "x" * 4001}
    )
    assert too_long.status_code == 413

    after = await service.call("GET", "/api/v1/bots/faq-bot")
    assert after["revision"] == before["revision"] and after["draft"] == before["draft"]
    for line in ("/set faq-bot colour red", "/show faq-bt", "/promote faq-bot prod"):
        assert "Traceback" not in await service.reply(line)


async def test_natural_phrasings_offline(service: Service) -> None:
    assert "support-bot" in await service.reply(
        "create a bot called support-bot that answers questions about Acme"
    )
    bot = await service.call("GET", "/api/v1/bots/support-bot")
    assert "Acme" in bot["draft"]["description"]

    await service.reply("set support-bot's prompt to You are polite and brief.")
    await service.reply("make support-bot use offline")
    draft = (await service.call("GET", "/api/v1/bots/support-bot"))["draft"]
    assert draft["prompt"] == "You are polite and brief."

    assert "v1" in await service.reply("promote support-bot to staging")
    asked = await service.say("promote support-bot to production")
    assert [b["label"] for b in asked["messages"][0]["buttons"]] == ["Confirm", "Cancel"]
    assert "production" in await service.reply("yes")
    deployed = await service.reply("deploy support-bot to the web")
    assert "/chat/" in deployed
    assert "support-bot" in await service.reply("how is support-bot doing?")


async def test_try_uses_the_draft_in_a_private_sandbox(tmp_path: Path, llm: FakeLLM) -> None:
    settings = service_settings(tmp_path, llm_api_base=llm.base_url)
    async with running_service(settings) as service:
        await service.reply("/newbot faq-bot")
        assert "I can't answer that yet." in await service.reply("/try faq-bot hello")

        await service.reply("/set faq-bot model openai/fake-model")
        llm.reply("Refunds take 5 days.")
        assert "Refunds take 5 days." in await service.reply("/try faq-bot How long?")
        llm.reply("Yes, by card too.")
        await service.reply("/try By card?")  # the current bot
        sent = [(m["role"], m["content"]) for m in llm.calls[-1].messages]
        assert sent[1:] == [
            ("user", "hello"),
            ("assistant", "I can't answer that yet."),
            ("user", "How long?"),
            ("assistant", "Refunds take 5 days."),
            ("user", "By card?"),
        ]

        assert "new conversation" in await service.reply("/try faq-bot --new")
        llm.reply("Hello again.")
        await service.reply("/try faq-bot Hi")
        assert [m["role"] for m in llm.calls[-1].messages] == ["system", "user"]

        # the real error is shown; end users would get the fallback
        llm.fail(401, times=1)
        failed = await service.reply("/try faq-bot Still there?")
        assert "The model failed" in failed and "auth" in failed

        stats = await service.call("GET", "/api/v1/bots/faq-bot/stats")
        assert stats["turns"] == 0  # sandbox conversations are never counted


async def test_tests_gate_promotion(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    added = await service.reply('/test faq-bot add "hello" expect contains "answer that"')
    assert "Added test 1" in added
    await service.reply('/test faq-bot add "refund?" expect regex "^I can.t"')
    await service.reply('/test faq-bot add "x" expect contains "never said"')
    listed = await service.reply("/test faq-bot list")
    assert "1." in listed and "3." in listed and "never said" in listed

    started = await service.reply("/promote faq-bot")  # no run of this draft: it runs them
    assert "Running 3 test(s)" in started and "promote it if they pass" in started
    await service.app.state.core.studio.drain()
    *_, report, refused = await service.notices()
    assert "2 passed, 1 failed" in report and "never said" in report
    assert refused.startswith("Not promoted: faq-bot's tests did not pass")
    assert "3. \"x\": expected it to contain 'never said'" in refused
    assert "did not pass" in await service.reply("/promote faq-bot")  # that run stands
    assert await service.call("GET", "/api/v1/bots/faq-bot/versions") == []

    assert "Removed test 3" in await service.reply("/test faq-bot remove 3")
    await service.reply("/test faq-bot")  # a run of this draft passed: /promote freezes at once
    await wait_for_notice(service, "2 passed, 0 failed")
    assert "v1" in await service.reply("/promote faq-bot")
    assert "say a number from 1 to 2" in await service.reply("/test faq-bot remove 9")


async def test_promote_runs_the_tests_and_promotes_when_they_pass(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply('/test faq-bot add "hello" expect contains "answer that"')
    assert "Running 1 test(s)" in await service.reply("/promote faq-bot")
    await service.app.state.core.studio.drain()
    *_, report, promoted = await service.notices()
    assert "1 passed, 0 failed" in report
    assert promoted.startswith("The tests passed (1 of 1). Froze the draft of *faq-bot* into v1")
    assert "staging runs it now" in promoted
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["environments"] == {"staging": 1}


async def test_force_is_for_owners_and_audited(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply('/test faq-bot add "hi" expect contains "nope"')
    await service.reply("/bots", user="ada")
    await service.reply("/role ada admin")
    assert "owner role" in await service.reply("/promote faq-bot --force", user="ada")
    assert "Running 1 test(s)" in await service.reply("/promote faq-bot", user="ada")
    await service.app.state.core.studio.drain()
    assert "Not promoted" in (await service.notices(user="ada"))[-1]

    forced = await service.reply("/promote faq-bot staging --force")
    assert "v1" in forced
    events = await service.call("GET", "/api/v1/audit")
    promote = next(e for e in events if e["action"] == "bot.promote")
    assert promote["after"]["forced"] is True


async def test_confirmations_are_stored_bound_and_single_use(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")

    asked = await service.say("/promote faq-bot production")
    confirm = asked["messages"][0]["buttons"][0]["action"]
    assert confirm.startswith("confirm:")

    # another member cannot use it
    stolen = await service.say(action=confirm, user="mallory")
    assert "Only the person who asked" in stolen["reply"]

    done = await service.say(action=confirm)
    assert "production" in done["reply"]
    assert "nothing to confirm" in (await service.say(action=confirm))["reply"]  # second click
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["environments"] == {
        "production": 1,
        "staging": 1,
    }

    # cancel
    asked = await service.say("/delete faq-bot")
    cancel = asked["messages"][0]["buttons"][1]["action"]
    assert "Cancelled" in (await service.say(action=cancel))["reply"]
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["name"] == "faq-bot"

    # stale: the draft changed (through REST) after the question
    await service.say("/delete faq-bot")
    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"greeting": "Changed meanwhile"})
    assert "changed since you were asked" in await service.reply("yes")

    # moving on to another command lets the question lapse: a later "ok" confirms nothing
    await service.say("/delete faq-bot")
    await service.reply("/show faq-bot")
    assert "nothing to confirm" in await service.reply("ok")
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["name"] == "faq-bot"

    # expired after 5 minutes
    await service.say("/delete faq-bot")
    db = service.app.state.core.db
    async with db.write() as session:
        await session.exec(update(Confirmation).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert "nothing to confirm" in await service.reply("yes")

    # and at last, really
    await service.say("/delete faq-bot")
    assert "Deleted" in await service.reply("yes")
    response = await service.client.get("/api/v1/bots/faq-bot", headers=service.auth())
    assert response.status_code == 404


async def test_roles_invites_and_members(service: Service) -> None:
    # a member the front speaks for joins as a viewer
    assert "editor" in await service.reply("/newbot x-bot", user="alice")
    assert "viewer" in await service.reply("/newbot x-bot", user="alice")
    assert "x-bot" not in await service.reply("/bots", user="alice")  # viewers may list

    assert "now editor" in await service.reply("/role alice editor")
    assert "x-bot" in await service.reply("/newbot x-bot", user="alice")
    assert "admin role" in await service.reply("/role alice admin", user="alice")
    assert "admin role" in await service.reply("/promote x-bot", user="alice")

    assert "keeps the role" in await service.reply("/role api:owner viewer")
    await service.reply("/role alice admin")
    assert "Only an owner" in await service.reply("/role alice owner", user="alice")

    # a code lets someone from elsewhere (here: another team's front) join this team, once
    invite = await service.reply("/invite")
    code = invite.split("`")[1]
    assert code.startswith("join-")
    other = await service.app.state.core.ops.create_team("other")

    async def elsewhere(text: str, user: str) -> str:
        response = await service.client.post(
            "/api/v1/studio/messages",
            headers=service.auth(other.key),
            json={"text": text, "user": user},
        )
        return str(response.json()["reply"])

    assert "Welcome to *local*" in await elsewhere(f"/join {code}", "bob")
    assert "not valid" in await elsewhere(f"/join {code}", "carol")
    assert "not valid" in await elsewhere("/join join-forged", "carol")
    fresh = (await service.reply("/invite")).split("`")[1]
    assert "already are in *local*" in await service.reply(f"/join {fresh}", user="alice")

    members = await service.call("GET", "/api/v1/members")
    roles = {m["identity"]: m["role"] for m in members}
    assert roles["http:alice"] == "admin" and roles["http:bob"] == "viewer"
    assert "http:carol" not in roles
    actions = [e["action"] for e in await service.call("GET", "/api/v1/audit")]
    assert "member.role" in actions and "invite.create" in actions


async def test_another_teams_bot_does_not_exist(service: Service) -> None:
    other = await service.app.state.core.ops.create_team("other")
    await service.reply("/newbot secret-bot")
    response = await service.client.post(
        "/api/v1/studio/messages",
        headers=service.auth(other.key),
        json={"text": "/show secret-bot"},
    )
    assert "No bot named" in response.json()["reply"]
    response = await service.client.post(
        "/api/v1/studio/messages",
        headers=service.auth(other.key),
        json={"text": "/delete secret-bot"},
    )
    assert "No bot named" in response.json()["reply"]


async def test_deploy_chat_and_stats(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    assert "promote it" in await service.reply("/deploy faq-bot web")
    await service.reply("/promote faq-bot")
    await service.say("/promote faq-bot production")
    await service.reply("yes")
    deployed = await service.reply("/deploy faq-bot web")
    deployment = deployed.split("/chat/")[1].split()[0].rstrip(".")
    chat = await service.chat(deployment, "Hello?")
    assert chat.json()["reply"] == "I can't answer that yet."

    assert deployment in await service.reply("/deployments")
    stats = await service.reply("/stats faq-bot 24h")
    assert "1" in stats and "faq-bot" in stats
    asked = await service.reply("/deploy faq-bot telegram")  # its token, in a hidden field
    assert "the terminal and the web console ask for it in a hidden field" in asked
    assert "off web" in await service.reply("/undeploy faq-bot web")
    assert (await service.chat(deployment, "Still there?")).status_code == 404


async def test_diff_history_and_rollback(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")
    await service.reply("/set faq-bot prompt You are terse.")
    diff = await service.reply("/diff faq-bot")
    assert "prompt" in diff and "You are terse." in diff
    await service.reply("/promote faq-bot")
    history = await service.reply("/history faq-bot")
    assert "bot.edit" in history and "bot.promote" in history

    await service.say("/rollback faq-bot staging")
    assert "v1" in await service.reply("yes")
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["environments"]["staging"] == 1
    # to the version it runs already: refused up front, nothing to confirm, nothing audited
    before = await service.call("GET", "/api/v1/audit")
    same = await service.reply("/rollback faq-bot staging v1")
    assert same == "faq-bot staging already runs v1: nothing to roll back to (/history faq-bot)"
    again = await service.client.post(
        "/api/v1/bots/faq-bot/rollback",
        json={"env": "staging", "version": 1},
        headers=service.auth(),
    )
    assert again.status_code == 409 and again.json()["error"] == same
    assert await service.call("GET", "/api/v1/audit") == before


async def test_help_names_every_command(service: Service) -> None:
    text = await service.reply("/help")
    for command in (
        "newbot",
        "bots",
        "show",
        "set",
        "try",
        "test",
        "promote",
        "rollback",
        "deploy",
        "deployments",
        "undeploy",
        "stats",
        "diff",
        "history",
        "delete",
        "role",
        "invite",
        "join",
        "help",
        "knowledge",
        "dataset",
        "eval",
        "review",
        "abtest",
    ):
        assert f"/{command}" in text
    assert "not available yet" not in text
    assert "FIELD" in await service.reply("/help set")


@pytest.mark.parametrize("text", ["/newbot", "/set", "/promote faq-bot prod", "/role bob king"])
async def test_wrong_arguments_give_usage(service: Service, text: str) -> None:
    reply = await service.reply(text)
    assert reply and "Traceback" not in reply and len(reply) < 400


async def test_a_confirmation_is_bound_to_what_it_asked(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")
    await service.reply("/set faq-bot greeting Second")
    await service.reply("/promote faq-bot --force")  # staging v2
    await service.say("/promote faq-bot production")  # "put v2 in production?"
    await service.call(
        "POST", "/api/v1/bots/faq-bot/rollback", json={"env": "staging", "version": 1}
    )
    assert "changed since you were asked" in await service.reply("yes")
    assert "production" not in (await service.call("GET", "/api/v1/bots/faq-bot"))["environments"]

    assert "no version v9" in await service.reply("/rollback faq-bot staging v9")

    # a bot deleted and created again under the same name is another bot
    await service.say("/delete faq-bot")
    await service.call("DELETE", "/api/v1/bots/faq-bot")
    await service.call("POST", "/api/v1/bots", json={"name": "faq-bot"})
    assert "changed since you were asked" in await service.reply("yes")
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["name"] == "faq-bot"


async def test_a_failed_command_keeps_the_current_bot(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    assert "No bot named" in await service.reply("/show nosuch")
    await service.reply("/set greeting Still faq-bot")
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["draft"]["greeting"] == (
        "Still faq-bot"
    )


async def test_a_key_never_speaks_for_someone_above_it(service: Service) -> None:
    await service.reply("/bots", user="boss")
    await service.reply("/role boss owner")
    admin = await service.app.state.core.ops.create_api_key(team="local", role="admin", name="ops")
    response = await service.client.post(
        "/api/v1/studio/messages",
        headers=service.auth(admin.key),
        json={"text": "/role api:owner viewer", "user": "boss"},
    )
    assert response.status_code == 403
    roles = {m["identity"]: m["role"] for m in await service.call("GET", "/api/v1/members")}
    assert roles["api:owner"] == "owner"


async def test_one_test_run_per_bot_and_everyone_hears(tmp_path: Path, llm: FakeLLM) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        await service.reply("/newbot faq-bot")
        await service.reply("/set faq-bot model openai/fake-model")
        await service.reply('/test faq-bot add "hi" expect contains "answer"')
        await service.reply("/bots", user="eve")
        await service.reply("/role eve editor")
        llm.stall(0.5, text="The answer.")  # the run lasts while eve asks
        assert "Running 1 test(s)" in await service.reply("/test faq-bot")
        assert "already running" in await service.reply("/test faq-bot", user="eve")
        await service.app.state.core.studio.drain()
        assert len(llm.calls) == 1
        assert any("1 passed" in t for t in await service.notices())
        assert any("1 passed" in t for t in await service.notices(user="eve"))


async def test_promote_during_a_run_waits_for_it(tmp_path: Path, llm: FakeLLM) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        await service.reply("/newbot faq-bot")
        await service.reply("/set faq-bot model openai/fake-model")
        await service.reply('/test faq-bot add "hi" expect contains "answer"')
        await service.reply("/bots", user="ada")
        await service.reply("/role ada admin")
        llm.stall(0.5, text="The answer.")
        await service.reply("/test faq-bot")
        joined = await service.reply("/promote faq-bot", user="ada")
        assert "already running" in joined and "promote it if they pass" in joined
        await service.app.state.core.studio.drain()
        assert len(llm.calls) == 1  # the run was not repeated
        *_, report, promoted = await service.notices(user="ada")
        assert "1 passed" in report and "Froze the draft of *faq-bot* into v1" in promoted
        assert not any("v1" in t for t in await service.notices())  # only who asked hears it


async def test_a_long_run_reports_progress_then_the_report(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    for n in range(8):
        await service.reply(f'/test faq-bot add "q{n}" expect contains "answer"')
    await service.reply("/test faq-bot")
    await service.app.state.core.studio.drain()
    notices = await service.notices()
    assert any("tests run…" in t for t in notices[:-1])
    assert "8 passed, 0 failed" in notices[-1]


async def test_an_interrupted_run_is_marked_and_blocks_nothing(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        await service.reply("/newbot faq-bot")
        await service.reply("/set faq-bot model openai/fake-model")
        await service.reply('/test faq-bot add "hi" expect contains "answer"')
        llm.stall(5.0, text="The answer.")
        await service.reply("/test faq-bot")
        await service.app.state.core.studio.drain(grace_s=0.2)  # as at shutdown
        llm.reset()
        llm.reply("The answer.")
        assert "Running 1 test(s)" in await service.reply("/promote faq-bot")  # runs it again
        await service.app.state.core.studio.drain()
        assert "into v1" in (await service.notices())[-1]


async def test_a_run_left_running_by_a_stopped_process_is_not_joined(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply('/test faq-bot add "hi" expect contains "hi"')
    async with service.app.state.core.db.write() as session:  # a crashed earlier `serve`'s
        bot = (await session.exec(select(Bot).where(Bot.name == "faq-bot"))).one()
        assert bot.id is not None
        await TestRunRepository(session).start(bot.id, "old", 1, "someone", worker="stopped")
    assert "Running 1 test(s)" in await service.reply("/test faq-bot")
    await service.app.state.core.studio.drain()


async def test_force_for_production_is_refused_not_ignored(service: Service) -> None:
    """Production runs staging's version through its checks: --force there would do nothing,
    so it is refused before anything is asked (by REST too), and the plain promotion works."""
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")
    await service.reply("/bots", user="ada")
    await service.reply("/role ada admin")
    for who in ("ada", None):
        said = await service.reply("/promote faq-bot production --force", user=who)
        assert said.startswith("force (--force) is only for promotions to staging")
    response = await service.client.post(
        "/api/v1/bots/faq-bot/promote",
        json={"to": "production", "force": True},
        headers=service.auth(),
    )
    assert response.status_code == 422 and "only for promotions to staging" in response.text
    assert "production" not in (await service.call("GET", "/api/v1/bots/faq-bot"))["environments"]
    await service.say("/promote faq-bot production", user="ada")
    assert "production now runs v1" in await service.reply("yes", user="ada")
