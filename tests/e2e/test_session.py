"""Tokens, welcome, command ids and the HTTP routes around the socket."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer
from tests.e2e.rawws import raw_session


async def test_guest_token_endpoint(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/v1/auth/guest", json={"display_name": "  Ann\u0000 Lee "})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"token", "user_id", "expires_in_s"}
        assert body["expires_in_s"] == 86_400
        anonymous = await http.post("/v1/auth/guest")
        assert anonymous.status_code == 200
        assert anonymous.json()["user_id"] != body["user_id"]
        bad = await http.post("/v1/auth/guest", content=b"{nope")
        assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    async with raw_session(server.url, token=body["token"]) as session:
        assert session.welcome["user_id"] == body["user_id"]


async def test_welcome_describes_a_new_session(server: RunningServer) -> None:
    async with raw_session(server.url) as session:
        welcome = session.welcome
        assert welcome["type"] == "welcome" and "seq" not in welcome
        assert welcome["session"] and welcome["last_seq"] == 0 and welcome["replayed"] == 0
        assert welcome["heartbeat_ms"] == 500
        assert welcome["state"] == {
            "status": "idle",
            "position": None,
            "eta_ms": None,
            "match": None,
            "cooldown_ms": None,
        }


async def test_a_resent_command_id_gets_the_same_answer_and_no_second_effect(
    server: RunningServer,
) -> None:
    async with raw_session(server.url) as session:
        await session.send({"type": "join", "id": "once"})
        first = await session.next("reply")
        await session.send({"type": "join", "id": "once"})
        again = await session.next("reply")
        assert again["seq"] > first["seq"]
        assert {k: v for k, v in again.items() if k != "seq"} == {
            k: v for k, v in first.items() if k != "seq"
        }
        await session.send({"type": "join", "id": "twice"})  # a new id is a new command
        refused = await session.next("error")
        assert refused["code"] == "invalid_state" and refused["re"] == "twice"
        await session.send({"type": "join", "id": "twice"})
        assert (await session.next("error"))["code"] == "invalid_state"


async def test_messages_carry_gapless_seqs(server: RunningServer) -> None:
    async with raw_session(server.url) as session:
        seqs = []
        for i in range(5):
            await session.send({"type": "leave", "id": f"l{i}"})
            seqs.append((await session.next())["seq"])
        assert seqs == list(range(seqs[0], seqs[0] + 5))


async def test_health_readiness_and_openapi(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).json() == {"ok": True}
        assert (await http.get("/readyz")).status_code == 200
        spec = (await http.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.")
        assert {"/v1/auth/guest", "/v1/status", "/healthz", "/readyz"} <= set(spec["paths"])
