"""Web sessions: anonymous and known visitors, bounces, browsing, research and planted high-intent sessions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

from crm.demo.catalog import PRODUCTS, REFERENCE
from crm.demo.world import Row, World

_PRODUCT_PAGES = tuple(f"/products/{p.code.lower()}" for p in PRODUCTS)
_DOCS = ("/docs/ess-200/installation", "/docs/gridpilot/api", "/docs/telelink/setup", "/docs/warranty",
         "/docs/security", "/docs/bp-48/datasheet", "/blog/peak-shaving-explained", "/case-studies/cold-chain")
_DOWNLOADS = ("/resources/ess-200-datasheet.pdf", "/resources/gridpilot-security-whitepaper.pdf",
              "/resources/roi-calculator.xlsx", "/resources/bp-96-datasheet.pdf")
_REFERRERS = ("google", "baidu", "linkedin", "direct", "newsletter", "wechat", "partner-site")
# Session archetypes and their share of sessions.
_KINDS = (("bounce", 30), ("browse", 45), ("research", 13), ("high_intent", 12))


def _zh(page: str, lang: str) -> str:
    return f"/zh{page}" if lang == "zh" and page != "/" else page


def _session(rng: random.Random, kind: str, lang: str) -> list[tuple[str, str, int]]:
    """(type, page, duration_s) steps of one session."""
    home = rng.choice(("/", *_PRODUCT_PAGES, "/blog/peak-shaving-explained"))
    if kind == "bounce":
        return [("page_view", _zh(home, lang), rng.randrange(2, 12))]
    steps = [("page_view", _zh(home, lang), int(rng.lognormvariate(3.3, 0.8)) + 3)]
    if kind == "browse":
        for _ in range(rng.randrange(1, 5)):
            page = rng.choice(_PRODUCT_PAGES + ("/about", "/customers", "/pricing"))
            etype = "pricing_view" if page == "/pricing" else "page_view"
            steps.append((etype, _zh(page, lang), int(rng.lognormvariate(3.2, 0.9)) + 2))
        if rng.random() < 0.15:
            steps.append(("video_play", _zh(rng.choice(_PRODUCT_PAGES), lang), rng.randrange(20, 240)))
    elif kind == "research":
        for _ in range(rng.randrange(2, 7)):
            steps.append(("page_view", _zh(rng.choice(_DOCS), lang), int(rng.lognormvariate(4.2, 0.7)) + 10))
        steps.append(("download", rng.choice(_DOWNLOADS), 0))
        if rng.random() < 0.2:
            steps.append(("form_submit", _zh("/contact", lang), 35))
    else:  # high intent: long stay and the pricing page at least twice
        product = rng.choice(_PRODUCT_PAGES)
        steps += [("page_view", _zh(product, lang), rng.randrange(60, 240)),
                  ("pricing_view", _zh("/pricing", lang), rng.randrange(45, 200)),
                  ("video_play", _zh(product, lang), rng.randrange(30, 180)),
                  ("pricing_view", _zh("/pricing", lang), rng.randrange(40, 150))]
        if rng.random() < 0.5:
            steps.append(("pricing_view", _zh("/pricing", lang), rng.randrange(20, 90)))
        if rng.random() < 0.4:
            steps.append(("demo_request", _zh("/demo", lang), rng.randrange(30, 90)))
    return steps


def with_form_emails(rng: random.Random, w: World, events: Iterator[Row], truth: dict[str, str]) -> Iterator[Row]:
    """Anonymous visitors' contact-form submits carry the email typed into the form: a lead's or a contact's.

    Drawn from its own random stream so every other event stays as it was; ``truth`` records which person each
    such visitor is (visitor id -> "lead:12"), for the identity eval.
    """
    for event in events:
        if event["type"] == "form_submit" and event["contact_id"] is None:
            visitor = event["visitor_id"]
            if visitor not in truth:
                pool, kind = (w.leads, "lead") if rng.random() < 0.6 else (w.contacts, "contact")
                person = rng.choice(pool)
                truth[visitor] = f"{kind}:{person['id']}"
            kind, _, pid = truth[visitor].partition(":")
            person = (w.leads if kind == "lead" else w.contacts)[int(pid) - 1]
            event = {**event, "properties": {**event["properties"], "email": person["email"]}}
        yield event


def build_events(rng: random.Random, w: World, n: int) -> Iterator[Row]:
    """``n`` events in sessions over the last ~6 months; about 40% of sessions are by known contacts."""
    known = rng.sample(w.contacts, max(1, len(w.contacts) * 2 // 5))
    anon = [f"anon-{rng.randrange(16**10):010x}" for _ in range(max(5, n // 12))]
    eid = 0
    sid = 0
    kinds, weights = [k for k, _ in _KINDS], [x for _, x in _KINDS]
    while eid < n:
        sid += 1
        kind = rng.choices(kinds, weights)[0]
        if rng.random() < 0.4:
            c = rng.choice(known)
            visitor, contact_id, account_id, team_id, lang = (f"c-{c['id']:06d}", c["id"], c["account_id"],
                                                              c["team_id"], c["language"])
        else:
            visitor, contact_id, account_id, team_id = rng.choice(anon), None, None, None
            lang = "zh" if rng.random() < 0.3 else "en"
        t = REFERENCE - timedelta(days=rng.randrange(0, 182), seconds=rng.randrange(86_400))
        props = {"session": f"s{sid:07d}", "referrer": rng.choice(_REFERRERS), "lang": lang,
                 "device": rng.choice(("desktop", "desktop", "mobile", "tablet"))}
        for etype, page, dur in _session(rng, kind, lang):
            if eid >= n:
                return
            eid += 1
            yield {"id": eid, "visitor_id": visitor, "contact_id": contact_id, "account_id": account_id,
                   "team_id": team_id, "type": etype, "page": page, "duration_s": dur, "occurred_at": t,
                   "properties": props}
            t += timedelta(seconds=dur + rng.randrange(1, 20))
