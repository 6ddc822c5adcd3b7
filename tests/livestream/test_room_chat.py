"""Chat over a real uvicorn server: sign-in, rate limits, moderation, delivery cap."""

from __future__ import annotations

import asyncio
from typing import Any

from livestream.room import ChatLimits, RoomHubConfig

from .harness import ServerFactory


async def test_chat_needs_sign_in(live_server: ServerFactory, open_viewer: Any) -> None:
    server = live_server()
    async with open_viewer(server.url("s1")) as anon:
        await anon.next_of("snapshot")
        reply = await anon.request(type="chat.send", id="1", text="hello")
        assert (reply["type"], reply["code"]) == ("error", "auth_required")
    async with open_viewer(server.url("s1", token="nonsense")) as rejected:
        welcome = await rejected.next()
        assert welcome["user"] is None
        assert (await rejected.next_of("error"))["code"] == "auth_failed"
        reply = await rejected.request(type="chat.send", id="1", text="hello")
        assert reply["code"] == "auth_required"
        ack = await rejected.request(type="auth", id="a", token="bob:viewer")
        assert ack["type"] == "ack" and ack["data"]["user"] == {"id": "bob", "role": "viewer"}
        reply = await rejected.request(type="chat.send", id="2", text="hello")
        assert reply["type"] == "ack"
        batch = await rejected.next_of("chat.batch")
        assert batch["data"]["messages"][0]["id"] == reply["data"]["message_id"]
        assert batch["data"]["messages"][0]["user_id"] == "bob"


async def test_chat_is_rate_limited_per_user_with_burst_three(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    async with (
        open_viewer(server.url("s1", token="ann:viewer")) as ann,
        open_viewer(server.url("s1", token="ann:viewer")) as ann_again,
        open_viewer(server.url("s1", token="cy:viewer")) as cy,
    ):
        replies = [await ann.request(type="chat.send", id=str(i), text=f"m{i}") for i in range(3)]
        assert [r["type"] for r in replies] == ["ack"] * 3
        limited = await ann_again.request(type="chat.send", id="x", text="same user")
        assert limited["type"] == "rate_limited" and limited["scope"] == "user"
        assert 1000 <= limited["retry_after_ms"] <= 2000
        retry = await ann.request(type="chat.send", id="0", text="m0")  # a client retry
        assert retry["type"] == "ack" and retry["data"]["duplicate"] is True
        assert retry["data"]["message_id"] == replies[0]["data"]["message_id"]
        assert (await cy.request(type="chat.send", id="c", text="other user"))["type"] == "ack"


async def test_room_wide_chat_cap_rejects_excess(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server(RoomHubConfig(chat=ChatLimits(room_rate=0.1, room_burst=3)))
    outcomes = []
    for user in "abcde":
        async with open_viewer(server.url("s1", token=f"{user}:viewer")) as viewer:
            reply = await viewer.request(type="chat.send", id="1", text="hi")
            outcomes.append((reply["type"], reply.get("scope")))
    assert outcomes == [("ack", None)] * 3 + [("rate_limited", "room")] * 2
    async with open_viewer(server.url("s1", token="host:host")) as host:
        assert (await host.request(type="chat.send", id="h", text="staff bypass"))["type"] == "ack"


async def test_only_host_and_moderators_can_moderate(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    async with (
        open_viewer(server.url("s1", token="vic:viewer")) as vic,
        open_viewer(server.url("s1", token="tom:viewer")) as tom,
        open_viewer(server.url("s1", token="mo:moderator")) as mod,
        open_viewer(server.url("s1")) as watcher,
    ):
        reply = await vic.request(type="mod.mute", id="m", user_id="tom")
        assert (reply["type"], reply["code"]) == ("error", "forbidden")
        reply = await vic.request(type="mod.delete", id="d", message_id="whatever")
        assert reply["code"] == "forbidden"
        assert (await tom.request(type="chat.send", id="1", text="still talking"))["type"] == "ack"

        posted = await tom.request(type="chat.send", id="2", text="buy my stuff elsewhere")
        message_id = posted["data"]["message_id"]
        assert (await mod.request(type="mod.delete", id="d", message_id=message_id))[
            "type"
        ] == "ack"
        deleted = await watcher.next_of("chat.deleted")
        assert deleted["data"] == {"message_id": message_id, "by": "mo"}
        assert isinstance(deleted["seq"], int)  # reliable: replayed on resume

        assert (await mod.request(type="mod.mute", id="m", user_id="tom"))["type"] == "ack"
        assert (await tom.next_of("chat.muted"))["data"]["user_id"] == "tom"
        reply = await tom.request(type="chat.send", id="3", text="hello?")
        assert reply["code"] == "muted"
        assert (await mod.request(type="mod.unmute", id="u", user_id="tom"))["type"] == "ack"
        await tom.next_of("chat.unmuted")

        reply = await mod.request(type="mod.banned_words", id="b", add=["Scam"])
        assert reply["type"] == "ack"
        assert (await vic.request(type="chat.send", id="4", text="total SCAM!"))["code"] == (
            "banned_word"
        )
        assert (await vic.request(type="chat.send", id="5", text="scampi is fine"))["type"] == "ack"


async def test_deleted_message_is_absent_from_later_snapshots(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    async with open_viewer(server.url("s1", token="h:host")) as host:
        kept = (await host.request(type="chat.send", id="1", text="welcome all"))["data"]
        gone = (await host.request(type="chat.send", id="2", text="oops"))["data"]
        await host.next_of("chat.batch")
        await asyncio.sleep(0.25)  # both delivered into recent chat
        await host.request(type="mod.delete", id="d", message_id=gone["message_id"])
        await host.next_of("chat.deleted")
    async with open_viewer(server.url("s1")) as late:
        snapshot = await late.next_of("snapshot")
    assert [m["id"] for m in snapshot["data"]["chat"]] == [kept["message_id"]]


async def test_delivery_cap_samples_viewer_chat_but_never_drops_host_messages(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    chat = ChatLimits(delivery_rate=0.1, delivery_burst=2)
    server = live_server(RoomHubConfig(chat=chat))
    async with (
        open_viewer(server.url("s1")) as watcher,
        open_viewer(server.url("s1", token="star:host")) as host,
    ):
        await watcher.next_of("snapshot")
        chatters = [open_viewer(server.url("s1", token=f"u{i}:viewer")) for i in range(8)]
        viewers = [await c.__aenter__() for c in chatters]
        try:
            for round_ in range(4):
                for i, viewer in enumerate(viewers):
                    await viewer.send(type="chat.send", id=f"{round_}-{i}", text=f"v{i}")
                await host.send(type="chat.send", id=f"h{round_}", text=f"host {round_}")
                await host.send(type="chat.send", id=f"h{round_}b", text=f"host {round_}b")
            batches = await watcher.collect(1.0, "chat.batch")
        finally:
            for c in chatters:
                await c.__aexit__(None, None, None)
    delivered = [m for batch in batches for m in batch["data"]["messages"]]
    host_texts = [m["text"] for m in delivered if m["role"] == "host"]
    viewer_texts = [m["text"] for m in delivered if m["role"] == "viewer"]
    assert sorted(host_texts) == sorted(f"host {r}{s}" for r in range(4) for s in ("", "b"))
    assert 1 <= len(viewer_texts) <= 2  # 24 accepted (burst 3 each), at most burst 2 shown
