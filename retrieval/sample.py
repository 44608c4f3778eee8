"""A tiny bilingual CRM for tests and examples: two teams, every role, text with planted facts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from config.db import transaction
from crm import outbox
from crm.models import Account, Activity, Case, Contact, KnowledgeArticle, Opportunity, Team, User

BASE = datetime(2026, 3, 1, 9, 0)

# (team, account, language, subject, body)
ACTIVITIES: list[tuple[int, int, str, str, str]] = [
    (1, 1, "en", "Battery order", "Acme wants 40 units of ESS-200-7731 delivered before the end of March. "
     "Call Li Wei back on 13812345678 or li.wei@acme.example to confirm the dock."),
    (1, 1, "en", "Pricing call", "The CFO pushed back on the renewal price and asked for a 12% discount. "
     "We agreed to send a revised quote next Tuesday."),
    (1, 2, "zh", "储能项目", "华东电力希望在四月底前完成储能设备ESS-500-1024的安装。张经理的手机是13987654321。"),
    (1, 2, "zh", "续约谈判", "客户对续约价格不满意，要求百分之十的折扣。我们答应周五前发送新的报价单。"),
    (2, 3, "en", "Secret merger", "Globex plans to acquire Initech in June; the board meeting is on the 14th. "
     "The renewal price discount request from the CFO is confidential."),
    (2, 3, "zh", "机密", "环球公司计划收购一家电池厂，请勿外传。联系邮箱 boss@globex.example。"),
]


def build_sample(engine: Engine) -> dict[str, int]:
    """Insert the sample rows (with outbox entries) and return the ids tests refer to by name."""
    with transaction(engine) as s:
        t1, t2 = Team(id=1, name="East"), Team(id=2, name="West")
        s.add_all([t1, t2])
        s.flush()
        users = [User(id=1, name="Rita Rep", email="rep1@x", role="rep", team_id=1),
                 User(id=2, name="Roy Rep", email="rep2@x", role="rep", team_id=2),
                 User(id=3, name="Mia Manager", email="mgr1@x", role="manager", team_id=1),
                 User(id=4, name="Sam Support", email="sup1@x", role="support", team_id=1),
                 User(id=5, name="Ada Admin", email="admin@x", role="admin", team_id=None),
                 User(id=6, name="Nobody", email="rep3@x", role="rep", team_id=None)]
        s.add_all(users)
        s.flush()
        s.add_all([Account(id=1, name="Acme Energy", owner_id=1, team_id=1, industry="energy", country="US"),
                   Account(id=2, name="华东电力", owner_id=1, team_id=1, language="zh", country="CN"),
                   Account(id=3, name="Globex", owner_id=2, team_id=2, annual_revenue=5_000_000)])
        s.flush()
        s.add_all([Contact(id=1, account_id=1, name="Li Wei", title="CTO", phone="13812345678",
                           email="li.wei@acme.example", owner_id=1, team_id=1),
                   Contact(id=2, account_id=3, name="Hank Scorpio", title="CEO", phone="15500001111",
                           email="hank@globex.example", owner_id=2, team_id=2)])
        s.flush()
        s.add(Opportunity(id=1, account_id=1, name="Acme storage expansion", stage="proposal", amount=120000,
                          close_date=BASE.date() + timedelta(days=30), owner_id=1, team_id=1, product="ESS-200"))
        for i, (team, acc, lang, subject, body) in enumerate(ACTIVITIES, start=1):
            s.add(Activity(id=i, kind="note", subject=subject, body=body, language=lang, account_id=acc,
                           contact_id=1 if i == 1 else (2 if acc == 3 else None),
                           owner_id=1 if team == 1 else 2, team_id=team,
                           occurred_at=BASE + timedelta(days=i)))
        s.add(Case(id=1, account_id=1, contact_id=1, subject="Inverter fault", owner_id=4, team_id=1,
                   description="The inverter on ESS-200-7731 trips at night.", resolution="Firmware 2.1 fixed it.",
                   internal_notes="Customer is difficult; do not tell them about the recall."))
        s.add(KnowledgeArticle(id=1, title="Resetting the ESS-200 inverter",
                               body="Hold the reset button for ten seconds. Then wait for the green light."))
        s.flush()
        for obj, n in (("account", 3), ("contact", 2), ("opportunity", 1), ("activity", len(ACTIVITIES)),
                       ("case", 1), ("article", 1)):
            for rid in range(1, n + 1):
                outbox.emit(s, obj, rid)
    return {"rep1": 1, "rep2": 2, "manager1": 3, "support1": 4, "admin": 5, "loner": 6}
