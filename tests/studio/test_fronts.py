"""The Studio asks its fronts (`runtime.team_front`) instead of naming platforms: a front added
by a plugin, unknown to the Studio's code, takes handoffs, stats reports, DMs and secrets."""

from __future__ import annotations

from typing import ClassVar

from runtime.handoff import Room, RoomError
from runtime.messages import Address, IncomingMessage
from runtime.team_front import PrivateWay, Spot, TeamFronts
from studio.address import studio_address
from studio.presenters import render_text
from studio.roles import Role
from tests.factories import Service

ROOMS = {"ops-42": "~ops", "ops-43": "~elsewhere"}


class ChatOpsFront:
    """A made-up platform: rooms are typed `~name`, a room's id is `ops-N`, a DM's thread is
    `dm-USER`, and secrets go into a private form."""

    kind: ClassVar[str] = "chatops"
    channel: ClassVar[str] = "chatops-studio"
    title: ClassVar[str] = "ChatOps"
    private: ClassVar[PrivateWay | None] = "form"
    room_hint: ClassVar[str] = "~room (ChatOps)"

    def room(self, said: str) -> str | None:
        said = said.strip()
        return said if said.startswith(("~", "ops-")) else None

    def chat(self, said: str) -> Room | None:
        return None

    def spot(self, address: Address) -> Spot | None:
        thread = address.thread or ""
        return Spot(thread, direct=thread.startswith("dm-")) if thread else None

    def report_thread(self, room: str) -> str:
        return f"room:{room}"

    def dm(self, identity: str) -> str | None:
        platform, _, user = identity.partition(":")
        return f"dm-{user}" if platform == "chatops" else None


class ChatOpsRooms:
    kind: ClassVar[str] = "chatops"
    threads: ClassVar[bool] = True
    hint: ClassVar[str] = "Reply in the thread"
    give_back: ClassVar[str] = "say resume in the thread"

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []

    async def find(self, target: str, *, by: str, team_id: int) -> Room:
        for room_id, name in ROOMS.items():
            if target in (room_id, name):
                if room_id == "ops-43":
                    raise RoomError("the app is not in ~elsewhere: invite it there")
                return Room(kind=self.kind, id=room_id, name=name)
        raise RoomError(f"ChatOps has no room {target}")

    async def post(self, room: str, text: str, *, thread: str | None = None) -> str:
        self.posts.append((room, text))
        return str(len(self.posts))


async def _with_chatops(service: Service) -> tuple[int, ChatOpsRooms]:
    core = service.app.state.core
    rooms = ChatOpsRooms()
    core.runtime.fronts.add(ChatOpsFront(), rooms=rooms)
    team = (await core.ops.authenticate(service.key)).team_id
    await core.studio.members.admit(team, "chatops:ann", Role.ADMIN, actor="test")
    return team, rooms


async def _said(service: Service, team: int, text: str, *, thread: str) -> str:
    address = studio_address("chatops-studio", team, "chatops:ann", thread=thread)
    reply = await service.app.state.core.runtime.answer(IncomingMessage(address=address, text=text))
    return "\n".join(render_text(m) for m in reply.messages)


async def test_a_new_front_takes_handoffs_named_or_here(service: Service) -> None:
    team, _ = await _with_chatops(service)
    await service.import_bot("faq-bot")
    said = await _said(service, team, "/handoff faq-bot to ~ops", thread="dm-ann")
    assert "hands conversations over to ~ops" in said and "say resume in the thread" in said
    shown = await service.call("GET", "/api/v1/bots/faq-bot")
    assert shown["draft"]["handoff"]["channel"] == "chatops"
    assert shown["draft"]["handoff"]["target"] == "ops-42"
    assert "~ops (Chatops)" in await service.reply("/show faq-bot")
    said = await _said(service, team, "/handoff faq-bot to here", thread="ops-43")
    assert "the app is not in ~elsewhere: invite it there" in said
    said = await _said(service, team, "/handoff faq-bot to here", thread="dm-ann")
    assert said.startswith("A DM cannot take handed-over conversations")
    assert "~room (ChatOps)" in said


async def test_a_new_front_takes_stats_reports(service: Service) -> None:
    team, _ = await _with_chatops(service)
    await service.import_bot("faq-bot")
    said = await _said(service, team, "/stats faq-bot daily at 9:00 in ~ops", thread="dm-ann")
    assert "hours in ~ops (report" in said, said
    said = await _said(service, team, "/stats faq-bot daily at 9:00 here", thread="ops-42")
    assert "hours in ~ops (report" in said, said
    [report] = await service.app.state.core.scheduler.reports(1)  # the same place: replaced
    assert report.place == "~ops"


async def test_a_new_front_is_where_its_members_are_told_and_asked(service: Service) -> None:
    team, _ = await _with_chatops(service)
    said = await _said(service, team, "/secret set acme-crm", thread="dm-ann")
    assert "goes into a private form" in said
    core = service.app.state.core
    assert core.studio._reachable(team, "chatops:ann") == studio_address(
        "chatops-studio", team, "chatops:ann", thread="dm-ann"
    )
    assert core.studio._reachable(team, "api:owner").channel == "studio"  # the pull channel


async def test_the_registry_says_why_a_front_has_no_rooms() -> None:
    fronts = TeamFronts()
    fronts.add_off(ChatOpsFront(), missing=("CHATOPS_TOKEN", "CHATOPS_SECRET"))
    assert fronts.rooms("chatops") is None
    assert fronts.off_reason("chatops") == (
        "ChatOps is not configured here (set CHATOPS_TOKEN and CHATOPS_SECRET and restart)"
    )
    assert fronts.off_reason("fax") == "fax is no platform this service has"
    assert fronts.on() == () and fronts.of_channel("chatops-studio") is not None
    fronts.add(ChatOpsFront(), rooms=None)
    assert fronts.off_reason("chatops") == "ChatOps has no rooms for the team"
    assert [front.title for front in fronts.on()] == ["ChatOps"]
