"""The rep's browser path, in Debian's chromium: sign in, ask, see a citation, approve a change, see the record."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from langchain_core.messages import BaseMessage, ToolMessage
from sqlalchemy import select

from config.db import session_factory
from crm.models import Opportunity
from inference.engine_process import free_port
from tests.fixtures.assistant import now, stub_search
from tests.fixtures.fake_chat import FakeChatModel, call, say
from tests.world import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


def _cite_first_hit(messages: list[BaseMessage]) -> Any:
    """Answer from what the search tool returned, citing the first record it found."""
    found = next(m for m in reversed(messages) if isinstance(m, ToolMessage))
    record = re.search(r"activity:\d+", str(found.content)).group(0)  # type: ignore[union-attr]
    return say(f"On the pricing call the budget was capped at 1.2M and the next step is a demo [{record}].")


@pytest.fixture
def server(sqlite_world: World) -> Iterator[tuple[str, World]]:
    from agents.assistant.runner import Assistant
    from agents.checkpointer import open_checkpointer
    from serving.api.app import create_app

    opp = sqlite_world.records["a"]["opportunity"]
    fake = FakeChatModel(script=[
        call("search_notes", query="pricing call"), _cite_first_hit,
        call("update_stage", opportunity=f"opportunity:{opp}", stage="negotiation"),
        say(f"Done: opportunity:{opp} is now in negotiation."),
    ])
    app = create_app()
    app.state.assistant = Assistant(checkpointer=open_checkpointer(":memory:"), model=fake.factory,
                                    search=stub_search, engine=sqlite_world.engine, now=now)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", sqlite_world
    srv.should_exit = True
    thread.join(10)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is installed by `make test`")
def test_rep_asks_sees_a_citation_approves_a_stage_change_and_sees_the_record(server: tuple[str, World]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, world = server
    opp = world.records["a"]["opportunity"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{base}/#token={world.tokens['a:rep']}")
        page.goto(f"{base}/chat")
        expect(page.locator("#who")).to_contain_text("rep a")

        page.fill("#q", "What did we discuss on the pricing call?")
        page.click("#send")
        cite = page.locator("a.cite").first
        expect(cite).to_be_visible(timeout=20_000)
        assert cite.inner_text().startswith("activity:")

        page.fill("#q", "Move the ESS-200 rollout to negotiation")
        page.click("#send")
        card = page.locator(".proposal").first
        expect(card).to_contain_text("negotiation", timeout=20_000)
        page.screenshot(path=str(SHOTS / "chat-proposal.png"), full_page=True)
        card.get_by_role("button", name="Approve").click()
        expect(page.locator(".msg.bot").last).to_contain_text("negotiation", timeout=20_000)

        page.goto(f"{base}/records/opportunity/{opp}")
        expect(page.locator("#fields")).to_contain_text("negotiation", timeout=10_000)
        expect(page.locator("#history")).to_contain_text("apply", timeout=10_000)
        # A link to another record shows that record's name, not its id.
        expect(page.locator("#fields a[data-ref^='account:']")).to_have_text("Acme East China", timeout=10_000)
        page.screenshot(path=str(SHOTS / "record-after-approval.png"), full_page=True)
        # the applied change's "why?" (the answer that cites the record has its own row)
        why = page.locator("#history tr", has_text="apply").locator("a", has_text="why?").first
        why.click()
        expect(page.locator("#trace")).to_contain_text("proposal", timeout=10_000)
        # The change's "why?" names the model that suggested it.
        expect(page.locator("#trace")).to_contain_text("model fake-scripted", timeout=10_000)
        page.screenshot(path=str(SHOTS / "why.png"), full_page=True)
        browser.close()
    with session_factory(world.engine)() as s:
        assert s.scalar(select(Opportunity.stage).where(Opportunity.id == opp)) == "negotiation"
