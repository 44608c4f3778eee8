"""Customer 360 in the browser, in Debian's chromium: the customer page (identity links with reasons, score
factors in English and Chinese, the timeline), and the duplicate queue (propose, approve, unmerge, refusals)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from config.db import session_factory
from crm.customer_models import CustomerScore, IdentityLink
from crm.models import Activity, Contact, Event
from inference.engine_process import free_port
from tests.world import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"
HOSTILE = "<img src=x onerror=alert(1)>"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is installed by `make test`")


def _duplicate(world: World, *, name: str = "Buyer a", team: str = "a",
               dup_team: str | None = None) -> tuple[int, int, int]:
    """Team ``team``'s buyer and a second contact record of them (in ``dup_team``), linked as one customer with a
    lead and a web visitor; a lead score with bilingual reasons, a segment, a lifetime value and an activity.

    Returns the ids of the buyer, the duplicate and the duplicate's activity.
    """
    with session_factory(world.engine)() as s, s.begin():
        orig = s.get(Contact, world.records[team]["contact"])
        home = world.records[dup_team or team]
        owner = s.get(Contact, home["contact"])
        dup = Contact(account_id=owner.account_id, name=name, title="Finance lead", phone=None,
                      email="buyer.a@gmail.com", owner_id=owner.owner_id, team_id=owner.team_id, custom={},
                      updated_at=datetime(2025, 1, 1))
        s.add(dup)
        s.flush()
        expo = Activity(kind="note", subject="Met at expo", occurred_at=datetime(2026, 9, 1), contact_id=dup.id,
                        owner_id=dup.owner_id, team_id=dup.team_id)
        s.add(expo)
        s.add(Event(visitor_id=f"anon-{team}", team_id=orig.team_id, type="form_submit", page="/contact",
                    occurred_at=datetime(2026, 9, 2)))
        cust = f"contact:{orig.id}"
        for obj, key, strength, reasons in (
                ("contact", str(orig.id), "anchor", []),
                ("contact", str(dup.id), "strong", ["name agrees (normalised)", "company agrees"]),
                ("lead", str(world.records[team]["lead"]), "strong", ["email agrees (normalised)"]),
                ("visitor", f"anon-{team}", "strong", ["form submit email agrees"])):
            s.add(IdentityLink(customer_id=cust, object_type=obj, record_key=key, match_probability=0.96,
                               reasons=reasons, strength=strength, run_id="t"))
        s.add(CustomerScore(object_type="lead", record_id=world.records[team]["lead"], kind="lead", value=82.0,
                            label="hot", model_version="lead-score@test", features={"pricing_views": 3},
                            reasons=[{"feature": "pricing_views", "value": 3, "contribution": 0.8,
                                      "en": "viewed pricing 3 times", "zh": "查看定价页3次"},
                                     {"feature": "days_since_reply", "value": 21, "contribution": -0.3,
                                      "en": "no reply for 21 days", "zh": "21天未回复"}]))
        s.add(CustomerScore(object_type="contact", record_id=orig.id, kind="rfm", value=4.7, label="champions",
                            model_version="rfm@test", reasons=[]))
        s.add(CustomerScore(object_type="contact", record_id=orig.id, kind="ltv", value=1250000.0, label="high",
                            model_version="ltv@test", reasons=[]))
        s.flush()
        return orig.id, dup.id, expo.id


@pytest.fixture
def server(sqlite_world: World) -> Iterator[tuple[str, World]]:
    from serving.api.app import create_app

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


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def _merged_into(world: World, contact_id: int) -> int | None:
    with session_factory(world.engine)() as s:
        return s.get(Contact, contact_id).merged_into_id


@needs_chromium
def test_customer_page_shows_identities_score_factors_in_both_languages_and_the_timeline(
        server: tuple[str, World], browser: Any) -> None:
    from playwright.sync_api import expect

    base, world = server
    orig, dup, expo_id = _duplicate(world)
    lead = world.records["a"]["lead"]
    page = browser.new_page(viewport={"width": 1100, "height": 1400}, locale="en-US")
    page.goto(f"{base}/records/contact/{dup}#token={world.tokens['a:rep']}")
    page.click("#c360-link")
    expect(page).to_have_url(f"{base}/customers/contact:{dup}")
    expect(page.locator("#name")).to_have_text("Buyer a")
    expect(page.locator("#cid")).to_have_text(f"customer contact:{orig}")

    rows = page.locator("tr.identity")
    expect(rows).to_have_count(4)
    twin = page.locator(f'tr.identity[data-ref="contact:{dup}"]')
    expect(twin.locator(".chip")).to_have_text(["name agrees (normalised)", "company agrees"])
    expect(twin).to_contain_text("96%")
    expect(twin.locator(f'a[href="/records/contact/{dup}"]')).to_have_text("Buyer a")
    expect(page.locator('tr.identity[data-ref="visitor:anon-a"]')).to_contain_text("form submit email agrees")

    score = page.locator(f'.score[data-kind="lead"][data-ref="lead:{lead}"]')
    expect(score).to_contain_text("82")
    expect(score).to_contain_text("hot")
    expect(score.locator(".factor-label")).to_have_text(["viewed pricing 3 times", "no reply for 21 days"])
    expect(score.locator('.factor[data-sign="pos"] .factor-bar.pos')).to_have_count(1)
    expect(score.locator('.factor[data-sign="neg"] .factor-bar.neg')).to_have_count(1)
    # The strongest factor fills its half of the track; the weaker one is drawn in proportion.
    widths = score.locator(".factor-bar").evaluate_all("bars => bars.map((b) => parseFloat(b.style.width))")
    assert widths[0] == 50 and abs(widths[1] - 50 * 0.3 / 0.8) < 0.1
    expect(page.locator("#segment")).to_have_text("champions")
    expect(page.locator("#ltv")).to_have_text("1,250,000 USD")

    timeline = page.locator("tr.tl")
    expo = page.locator("tr.tl", has_text="Met at expo")
    expect(expo.locator("a")).to_have_attribute("href", f"/records/activity/{expo_id}")
    expect(page.locator('tr.tl[data-ref^="event:"]').first).to_be_visible()
    expect(page.locator('tr.tl[data-ref^="case:"]')).to_have_count(1)
    expect(page.locator('tr.tl[data-ref^="opportunity:"]')).to_have_count(1)
    dates = timeline.locator("td:first-child").all_inner_texts()
    assert len(dates) >= 5 and dates == sorted(dates, reverse=True)
    page.screenshot(path=str(SHOTS / "customer.png"), full_page=True)

    zh = browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
    zh.goto(f"{base}/customers/lead:{lead}#token={world.tokens['a:rep']}")
    expect(zh.locator(".factor-label")).to_have_text(["查看定价页3次", "21天未回复"])
    expect(zh.locator('.score[data-kind="lead"] .score-head b')).to_have_text("线索评分")
    expect(zh.locator('.lang-switch a[data-lang="zh"]')).to_have_class("on")
    zh.screenshot(path=str(SHOTS / "customer_zh.png"), full_page=True)
    page.goto(f"{base}/customers/contact:{orig}?lang=zh")
    expect(page.locator(".factor-label").first).to_have_text("查看定价页3次")

    page.goto(f"{base}/customers/contact:{world.records['b']['contact']}")
    expect(page.locator("#identities .err")).to_contain_text("not found")
    assert page.request.get(f"{base}/customers/case:1").status == 422


@needs_chromium
def test_duplicate_queue_proposes_approves_and_unmerges_a_merge(server: tuple[str, World], browser: Any) -> None:
    from playwright.sync_api import expect

    base, world = server
    orig, dup, _ = _duplicate(world)
    entry_sel = f'.dup[data-customer="contact:{orig}"]'
    page = browser.new_page(viewport={"width": 1100, "height": 1300})

    # Support sees the records side by side as the API shows them to support: personal fields masked.
    page.goto(f"{base}/duplicates#token={world.tokens['a:support']}")
    entry = page.locator(entry_sel)
    expect(entry.locator('td[data-field="name"]')).to_have_text(["Buyer a", "Buyer a"])
    shown = entry.inner_text()
    assert world.phones["a"] not in shown and world.emails["a"] not in shown and "buyer.a@gmail.com" not in shown

    page.goto(f"{base}/duplicates#token={world.tokens['a:rep']}")
    page.reload()  # a hash-only change of URL keeps the page: load it again as the rep
    expect(page.locator("#who")).to_contain_text("rep a")
    expect(page.locator('header nav a[data-p="duplicates"]')).to_have_class("on")
    entry = page.locator(entry_sel)
    expect(entry.locator(".match")).to_have_text("96%")
    expect(entry.locator(".chip")).to_have_text(["company agrees", "name agrees (normalised)"])
    expect(entry.locator('td[data-field="title"]')).to_have_text(["CFO", "Finance lead"])
    expect(entry.locator(f'input[type=radio][value="{orig}"]')).to_be_checked()
    # Keep the newer, emptier record and fill its blanks from the most complete one.
    entry.locator(f'input[type=radio][value="{dup}"]').check()
    entry.locator(".policy").select_option("most_complete")
    entry.locator(".reason").fill("same buyer, personal address")
    entry.locator(".propose").click()
    proposal = entry.locator(".merge-proposal")
    expect(proposal.locator(".status")).to_have_text("pending")
    expect(proposal).to_contain_text("most complete")
    expect(proposal.locator('.changes tr[data-field="phone"] td.after')).not_to_have_text("—")
    proposal_id = int(proposal.get_attribute("data-proposal") or 0)
    assert proposal_id and _merged_into(world, orig) is None
    expect(entry.locator(".merge-form")).to_be_hidden()
    page.screenshot(path=str(SHOTS / "duplicates.png"), full_page=True)

    # The customer page points at the pending merge; a manager of the team approves it there.
    page.goto(f"{base}/customers/contact:{orig}#token={world.tokens['a:manager']}")
    expect(page.locator("#who")).to_contain_text("manager a")
    expect(page.locator("#pending-merges")).to_contain_text(f"proposal #{proposal_id}")
    page.click(f'#pending-merges a[href="/duplicates?proposal={proposal_id}"]')
    focus = page.locator(f'#focus [data-proposal="{proposal_id}"]')
    expect(focus.locator(".status")).to_have_text("pending")
    focus.locator(".approve").click()
    merged = page.locator(f'#merged [data-proposal="{proposal_id}"]')
    expect(merged.locator(".status")).to_have_text("applied")
    expect(page.locator(entry_sel)).to_have_count(0)
    expect(page.locator("#focus [data-proposal]")).to_have_count(0)
    assert _merged_into(world, orig) == dup
    page.screenshot(path=str(SHOTS / "duplicates_merged.png"), full_page=True)

    merged.locator(".unmerge").click()
    expect(page.locator(f'#merged [data-proposal="{proposal_id}"] .status')).to_have_text("undone")
    expect(page.locator(entry_sel)).to_have_count(1)
    assert _merged_into(world, orig) is None
    expect(page.locator(f'#merged [data-proposal="{proposal_id}"] button')).to_have_count(0)


@needs_chromium
def test_a_merge_across_teams_is_refused_to_one_teams_manager_naming_the_rule(server: tuple[str, World],
                                                                             browser: Any) -> None:
    from playwright.sync_api import expect

    base, world = server
    orig, dup, _ = _duplicate(world, dup_team="b")
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.goto(f"{base}/duplicates#token={world.tokens['admin']}")
    entry = page.locator(f'.dup[data-customer="contact:{orig}"]')
    entry.locator(".propose").click()
    expect(entry.locator(".merge-proposal .status")).to_have_text("pending")
    proposal_id = int(entry.locator(".merge-proposal").get_attribute("data-proposal") or 0)

    page.goto(f"{base}/duplicates?proposal={proposal_id}#token={world.tokens['a:manager']}")
    focus = page.locator(f'#focus [data-proposal="{proposal_id}"]')
    focus.locator(".approve").click()
    expect(focus.locator(".msg .err")).to_contain_text("approval_policy.merge=managers_of_each_team")
    expect(focus.locator(".status")).to_have_text("pending")
    assert _merged_into(world, dup) is None


@needs_chromium
def test_hostile_text_in_a_record_name_renders_as_text(server: tuple[str, World], browser: Any) -> None:
    from playwright.sync_api import expect

    base, world = server
    orig, dup, _ = _duplicate(world, name=HOSTILE)
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{base}/customers/contact:{dup}#token={world.tokens['a:rep']}")
    expect(page.locator(f'tr.identity[data-ref="contact:{dup}"] a').first).to_have_text(HOSTILE)
    page.goto(f"{base}/duplicates")
    expect(page.locator(f'.dup[data-customer="contact:{orig}"] td[data-field="name"]').last).to_have_text(HOSTILE)
    assert page.locator("img").count() == 0 and dialogs == []


def test_page_routes_accept_the_customer_references_the_api_accepts(sqlite_world: World) -> None:
    from fastapi.testclient import TestClient

    from serving.api.app import create_app

    with TestClient(create_app()) as client:
        for path in ("/customers/contact:12", "/customers/lead:7", "/customers/account:3",
                     "/customers/visitor:anon-a_1", "/duplicates"):
            page = client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        assert "/v1/customers/" in client.get("/customers/contact:12").text
        for bad in ("/customers/case:1", "/customers/contact:abc", "/customers/contact", "/customers/visitor:a%20b"):
            assert client.get(bad).status_code == 422, bad
