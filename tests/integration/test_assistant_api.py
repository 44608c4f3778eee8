"""The assistant's interfaces against a running server: SSE /v1/chat, the OpenAI client, and an MCP client."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from langchain_core.messages import BaseMessage, ToolMessage
from sqlalchemy import select

from config.db import session_factory
from crm.models import Opportunity, Proposal
from inference.engine_process import free_port
from tests.fixtures.assistant import now, stub_search
from tests.fixtures.fake_chat import FakeChatModel, call, say
from tests.world import World

pytestmark = pytest.mark.integration


def _cite(messages: list[BaseMessage]) -> Any:
    found = next(m for m in reversed(messages) if isinstance(m, ToolMessage))
    record = re.search(r"activity:\d+", str(found.content)).group(0)  # type: ignore[union-attr]
    return say(f"The budget is capped at 1.2M [{record}].")


@pytest.fixture
def served(world: World) -> Iterator[tuple[str, World, FakeChatModel]]:
    from agents.assistant.runner import Assistant
    from agents.checkpointer import open_checkpointer
    from serving.api.app import create_app

    fake = FakeChatModel(script=[])
    app = create_app()
    app.state.assistant = Assistant(checkpointer=open_checkpointer(":memory:"), model=fake.factory,
                                    search=stub_search, engine=world.engine, now=now)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", world, fake
    server.should_exit = True
    thread.join(10)


def _sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_sse_chat_cites_then_a_stage_change_waits_for_approval_and_applies(
        served: tuple[str, World, FakeChatModel]) -> None:
    base, world, fake = served
    opp = world.records["a"]["opportunity"]
    fake.script += [call("search_notes", query="pricing call"), _cite,
                    call("update_stage", opportunity=f"opportunity:{opp}", stage="negotiation"), say("Moved.")]
    auth = {"Authorization": f"Bearer {world.tokens['a:rep']}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        first = _sse(client.post("/v1/chat", json={"message": "What did we agree on the pricing call?"}))
        kinds = [k for k, _ in first]
        assert kinds[0] == "thread" and "tool" in kinds and kinds[-1] == "done"
        answer = next(d for k, d in first if k == "answer")
        assert answer["citations"] and answer["citations"][0]["ref"].startswith("activity:")
        assert answer["citations"][0]["link"].startswith("/records/activity/")
        thread = first[0][1]["thread_id"]

        second = _sse(client.post("/v1/chat", json={"message": "Move the ESS-200 rollout to negotiation",
                                                    "thread_id": thread}))
        proposal = next((d for k, d in second if k == "proposal"), None)
        assert proposal is not None, second
        assert proposal["changes"]["stage"]["after"] == "negotiation"
        with session_factory(world.engine)() as s:  # nothing written before the rep decides
            assert s.scalar(select(Opportunity.stage).where(Opportunity.id == opp)) == "proposal"
        assert client.post("/v1/chat", json={"message": "hi", "thread_id": thread}).status_code == 409
        third = _sse(client.post(f"/v1/chat/{thread}/decision", json={"action": "approve"}))
        assert any(k == "answer" for k, _ in third)
        assert client.get(f"/v1/chat/{thread}").json()["pending"] is None
        # another user can't read or resume the thread
        other = {"Authorization": f"Bearer {world.tokens['a:rep2']}"}
        assert client.get(f"/v1/chat/{thread}", headers=other).status_code == 404
    with session_factory(world.engine)() as s:
        assert s.scalar(select(Opportunity.stage).where(Opportunity.id == opp)) == "negotiation"


def test_openai_client_talks_to_the_assistant_with_the_crmind_token(served: tuple[str, World, FakeChatModel]) -> None:
    import openai

    base, world, fake = served
    fake.script += [call("search_notes", query="pricing call"), _cite, call("search_notes", query="pricing"), _cite]
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=world.tokens["a:rep"], max_retries=0)
    assert [m.id for m in client.models.list().data] == ["crmind-assistant"]
    reply = client.chat.completions.create(model="crmind-assistant",
                                           messages=[{"role": "user", "content": "What about the pricing call?"}])
    assert "[activity:" in (reply.choices[0].message.content or "")
    chunks = client.chat.completions.create(model="crmind-assistant", stream=True,
                                            messages=[{"role": "user", "content": "Pricing call budget?"}])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "1.2M" in text
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="crmind-assistant", messages=[{"role": "user", "content": "hi"}])


def test_mcp_client_lists_and_calls_tools_as_the_token_user(served: tuple[str, World, FakeChatModel]) -> None:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    base, world, _ = served
    mine, theirs = world.records["a"]["opportunity"], world.records["b"]["opportunity"]

    async def run() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {world.tokens['a:rep']}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
                streamable_http_client(f"{base}/mcp/", http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            names = {t.name for t in (await session.list_tools()).tools}
            own = await session.call_tool("get_record", {"record": f"opportunity:{mine}"})
            other = await session.call_tool("get_record", {"record": f"opportunity:{theirs}"})
            write = await session.call_tool("update_stage", {"opportunity": f"opportunity:{mine}",
                                                             "stage": "negotiation"})
            return {"names": names, "own": own, "other": other, "write": write}

    out = asyncio.run(run())
    assert {"get_record", "search_notes", "update_stage"} <= out["names"]
    assert not out["own"].is_error and "ESS-200 rollout a" in out["own"].content[0].text
    assert out["other"].is_error and "not found" in out["other"].content[0].text  # another team's: doesn't exist
    assert not out["write"].is_error
    proposal_id = json.loads(out["write"].content[0].text)["proposal_id"]
    with session_factory(world.engine)() as s:  # a proposal waiting for a person, nothing applied
        assert s.get(Proposal, proposal_id).status == "pending"
        assert s.scalar(select(Opportunity.stage).where(Opportunity.id == mine)) == "proposal"
    no_token = httpx.post(f"{base}/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert no_token.status_code == 401


def test_cli_chat_as_a_rep_approves_at_the_prompt(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import agents.assistant.runner as runner
    import inference.embedded
    from agents.assistant.runner import Assistant
    from agents.checkpointer import open_checkpointer
    from inference.engine_process import EngineHandle
    from serving.cli import app

    opp = world.records["a"]["opportunity"]
    fake = FakeChatModel(script=[call("update_stage", opportunity=f"opportunity:{opp}", stage="negotiation"),
                                 say(f"Done: opportunity:{opp} is in negotiation.")])
    bot = Assistant(checkpointer=open_checkpointer(":memory:"), model=fake.factory, search=stub_search,
                    engine=world.engine, now=now)
    monkeypatch.setattr(runner, "default_assistant", lambda: bot)
    monkeypatch.setattr(inference.embedded, "ensure_engine",
                        lambda *a, **k: EngineHandle(engine="llamacpp", base_url="http://127.0.0.1:9/v1",
                                                     models=[], owned=False))
    out = CliRunner().invoke(app, ["chat", "--as", "rep.a@crmind.test", "Move the ESS-200 rollout to negotiation"],
                             input="approve\n")
    assert out.exit_code == 0, out.output
    assert "Proposed update of opportunity" in out.output and "'negotiation'" in out.output
    assert "is in negotiation" in out.output
    with session_factory(world.engine)() as s:
        assert s.scalar(select(Opportunity.stage).where(Opportunity.id == opp)) == "negotiation"
