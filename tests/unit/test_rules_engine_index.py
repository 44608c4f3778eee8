"""The engine's trigger index (type + minimum duration, bisected) fires exactly the rules a plain scan would."""

from __future__ import annotations

import random

from rules.engine import Engine, Ev, compile_rule
from rules.language import EVENT_TYPES, Rule

NO_LIMITS = {"max_fires_per_customer_per_day": 1000, "max_fires_per_hour": 1_000_000}


def _rules(rng: random.Random, n: int) -> list[Rule]:
    out = []
    for _ in range(n):
        flt: dict[str, object] = {}
        if rng.random() < 0.8:
            flt["types"] = rng.sample(EVENT_TYPES, rng.choice((1, 1, 2)))
        if rng.random() < 0.6:
            flt["min_duration_s"] = rng.randrange(0, 300)
        if rng.random() < 0.2:
            flt["page_prefix"] = rng.choice(("/pricing", "/docs"))
        conditions = ([{"kind": "aggregate", "fn": "count", "op": "ge", "value": 2, "window_minutes": 60}]
                      if rng.random() < 0.2 else [])
        out.append(Rule.model_validate({"trigger": {"kind": "event", "filter": flt}, "conditions": conditions,
                                        "actions": [{"type": "notify", "recipient": "owner"}], "limits": NO_LIMITS}))
    return out


def _naive(rule: Rule, ev: Ev, history: list[Ev]) -> bool:
    f = rule.trigger.filter  # type: ignore[union-attr]
    if f.types and ev.type not in f.types:
        return False
    if f.page_prefix and not (ev.page.startswith(f.page_prefix) or ev.page.startswith("/zh" + f.page_prefix)):
        return False
    if f.min_duration_s is not None and ev.duration_s < f.min_duration_s:
        return False
    if rule.conditions:
        recent = [e for e in history if e.customer == ev.customer and ev.ts - 3600 <= e.ts <= ev.ts]
        return len(recent) >= 2
    return True


def test_index_and_plain_scan_agree() -> None:
    rng = random.Random(7)
    for _ in range(20):
        rules = _rules(rng, rng.randrange(1, 40))
        engine = Engine([c for i, r in enumerate(rules) if (c := compile_rule(i, 1, r))])
        history: list[Ev] = []
        ts = 0.0
        for k in range(300):
            ts += rng.random() * 60
            ev = Ev(key=f"e{k}", customer=f"c{rng.randrange(5)}", type=rng.choice(EVENT_TYPES), ts=ts,
                    page=rng.choice(("/pricing/x", "/zh/pricing", "/docs/a", "/")), duration_s=rng.randrange(0, 300))
            history.append(ev)
            fired = sorted(f.rule_id for f in engine.process(ev))
            assert fired == [i for i, r in enumerate(rules) if _naive(r, ev, history)], (k, ev)


def test_rate_limits_still_hold_on_indexed_rules() -> None:
    rule = Rule.model_validate({"trigger": {"kind": "event", "filter": {"types": ["page_view"], "min_duration_s": 10}},
                                "actions": [{"type": "notify", "recipient": "owner"}]})
    engine = Engine([compile_rule(1, 1, rule)])  # type: ignore[list-item]
    evs = [Ev(key=f"e{i}", customer="c", type="page_view", ts=i * 600.0, duration_s=30) for i in range(3)]
    assert [len(engine.process(e)) for e in evs] == [1, 0, 0]  # one firing per customer per day by default
    later = Ev(key="e9", customer="c", type="page_view", ts=90_000.0, duration_s=30)
    assert len(engine.process(later)) == 1
