"""The manager's browser path, in Debian's chromium: write the Chinese example rule, answer the question, read
the explanation, backtest and findings; a second manager approves and activates; posted web events create the VIP
lead, and the firing's "why" opens the ledger trace."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from config.db import session_factory
from crm.models import Event, Lead
from inference.engine_process import free_port
from tests.world import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"
ZH = "当客户在官网停留超3分钟且访问价格页≥2次时,自动创建高意向线索并分配至VIP销售池"


def _history(world: World) -> None:
    rng = random.Random(3)
    t = datetime(2026, 9, 1)
    rows = []
    for _ in range(1500):
        t += timedelta(seconds=rng.randrange(60, 1800))
        rows.append(Event(visitor_id=f"h{rng.randrange(80)}", type=rng.choice(["page_view", "pricing_view"]),
                          page="/pricing", duration_s=rng.randrange(10, 150), occurred_at=t, properties={}))
    with session_factory(world.engine)() as s, s.begin():
        s.add_all(rows)


@pytest.fixture
def server(sqlite_world: World) -> Iterator[tuple[str, World]]:
    from serving.api.app import create_app

    _history(sqlite_world)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
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
def test_manager_writes_the_chinese_rule_and_matching_events_create_the_vip_lead(server: tuple[str, World]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, world = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(f"{base}/rules#token={world.tokens['a:manager']}")
        expect(page.locator("#who")).to_contain_text("manager a")
        page.fill("#text", ZH)
        page.click("#compile")
        expect(page.locator(".question")).to_contain_text("累计")
        page.click("[data-q=duration_scope][data-v=total]")
        expect(page.locator("#explanation")).to_contain_text("累计停留时间超过3分钟")
        expect(page.locator("#explanation")).to_contain_text("vip")
        expect(page.locator("#findings")).to_contain_text("compliant")
        page.click("#save")
        expect(page.locator("#backtest-card")).to_contain_text("firings", timeout=30_000)
        expect(page.locator("#chart rect").first).to_be_attached()
        page.click("#approve")  # the author may not approve their own rule
        expect(page.locator("#step")).to_contain_text("other than its author")
        rule_url = page.url

        page.goto(f"{base}/rules#token={world.tokens['admin']}")
        page.goto(rule_url)
        expect(page.locator("#rule-status")).to_have_text("draft")
        page.click("#approve")
        expect(page.locator("#rule-status")).to_have_text("approved")
        page.click("#activate")
        expect(page.locator("#rule-status")).to_have_text("active")
        expect(page.locator("#backtest-card")).to_contain_text("firings", timeout=30_000)
        page.screenshot(path=str(SHOTS / "rules_active.png"), full_page=True)

        t0 = datetime(2026, 11, 30, 10, 0)
        steps = [("page_view", "/zh/products/ess-200", 80), ("pricing_view", "/zh/pricing", 70),
                 ("page_view", "/zh/docs", 30), ("pricing_view", "/zh/pricing", 40)]
        batch = {"events": [{"event_id": f"web-{i}", "visitor_id": "anon-vip", "type": t, "page": p, "duration_s": d,
                             "occurred_at": (t0 + timedelta(minutes=2 * i)).isoformat()}
                            for i, (t, p, d) in enumerate(steps)]}
        headers = {"Authorization": f"Bearer {world.tokens['a:manager']}"}
        posted = httpx.post(f"{base}/v1/events", json=batch, headers=headers, timeout=30).json()
        assert posted["accepted"] == 4 and len(posted["firings"]) == 1
        again = httpx.post(f"{base}/v1/events", json=batch["events"][3], headers=headers, timeout=30).json()
        assert again == {"accepted": 0, "duplicates": 1, "firings": []}

        page.reload()
        expect(page.locator("#firings-card")).to_contain_text("web-3")
        expect(page.locator("#backtest-card")).to_contain_text("firings", timeout=30_000)
        page.screenshot(path=str(SHOTS / "rules_fired.png"), full_page=True)
        page.click("a.why")
        expect(page.locator("#trace")).to_contain_text("rule_firing")
        expect(page.locator("#trace")).to_contain_text("approval")
        page.screenshot(path=str(SHOTS / "rules_why.png"), full_page=True)
        browser.close()

    with session_factory(world.engine)() as s:
        lead = s.scalar(select(Lead).where(Lead.pool == "vip"))
        assert lead is not None and lead.name == "Web visitor anon-vip" and lead.score == 80
