"""Ground-truth facts: one specific sentence planted in one record, with paraphrased questions in both languages."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from crm.demo.catalog import TITLES, money, money_zh

# Kinds planted in sales activities and in support cases. One fact per (account, kind) keeps answers unique.
OPP_KINDS = ("warranty_question", "budget_cap", "pilot_site", "decision_date", "security_requirement",
             "integration", "payment_terms", "rollout_size", "competitor_offer", "reference_visit")
CASE_KINDS = ("serial_number", "site_access", "part_number")

_WARRANTY = {"en": ("battery degradation below 70% capacity", "replacement of the PCS inverter",
                    "damage from grid surges", "labour costs for on-site repairs", "cell balancing after year five",
                    "operation at minus 25 degrees"),
             "zh": ("电池容量衰减到70%以下", "PCS逆变器的更换", "电网浪涌造成的损坏", "上门维修的人工费",
                    "第五年后的电芯均衡", "零下25度环境下运行")}
_SITES = {"en": ("the Fremont distribution centre", "Plant 3 in Monterrey", "the Rotterdam cold store",
                 "the Leeds fulfilment hub", "the Stuttgart paint shop", "the Brisbane depot",
                 "the Dallas data hall", "the Lyon bottling line"),
          "zh": ("苏州工业园区二期厂房", "嘉兴平湖物流仓", "东莞松山湖研发楼", "宁波北仑港区堆场", "合肥经开区三号车间",
                 "佛山顺德冷库", "常州武进涂装车间", "惠州大亚湾基地")}
_SECURITY = {"en": ("a SOC 2 Type II report", "an ISO 27001 certificate", "on-premise deployment of the monitoring "
                    "server", "data residency in the EU", "a penetration test report from the last 12 months",
                    "single sign-on through Okta"),
             "zh": ("等保三级认证", "数据存储在境内服务器", "监控服务器私有化部署", "近一年的第三方渗透测试报告",
                    "国密算法加密", "与企业微信的单点登录")}
_SYSTEMS = {"en": ("SAP S/4HANA", "Oracle NetSuite", "Microsoft Dynamics 365", "Siemens WinCC", "Ignition SCADA",
                   "IBM Maximo"),
            "zh": ("金蝶云星空", "用友U8", "SAP S/4HANA", "浪潮GS", "鼎捷ERP", "和利时SCADA")}
_TERMS = {"en": ("net 90 payment terms", "payment in three equal instalments", "a 10% retention for 12 months",
                 "a bank guarantee instead of a deposit", "net 60 payment terms"),
          "zh": ("90天账期", "分三期等额付款", "10%质保金扣留12个月", "以银行保函代替预付款", "60天账期")}
_OFFERS = {"en": ("a {n}-year warranty extension", "free installation and commissioning", "a {n}% volume discount",
                  "a free second battery rack", "{n} months of free monitoring"),
           "zh": ("延保{n}年", "免费安装调试", "{n}%的批量折扣", "免费多送一个电池簇", "{n}个月免费监控服务")}
_REFS = {"en": ("the Port of Antwerp", "a brewery in Bavaria", "the Heathrow logistics park", "a hospital in Ohio",
                "a mine site in Western Australia", "a data centre in Virginia"),
         "zh": ("宁波舟山港", "青岛啤酒工厂", "深圳前海数据中心", "无锡某半导体工厂", "广州白云机场物流园",
                "杭州某三甲医院")}
_ACCESS = {"en": ("badge pickup at Gate 4 before 8am", "escort required from the security lodge on Dock Road",
                  "access only on Saturdays between 9am and 1pm", "hard hat and permit-to-work from the HSE office"),
           "zh": ("早8点前到4号门领取临时门禁卡", "需在码头路门卫室登记并由专人陪同", "只能在周六上午9点到13点进场",
                  "需到安环部办理动火作业许可")}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


@dataclass
class Fact:
    """A planted fact before it is tied to a record id."""

    kind: str
    lang: str
    sentence: str
    answer: str
    questions: list[dict[str, str]] = field(default_factory=list)


def _title(key: str) -> tuple[str, str]:
    return TITLES[key]


def opp_fact(rng: random.Random, kind: str, lang: str, c: dict[str, Any]) -> Fact:
    """A fact for a sales activity. ``c`` holds acct, contact, title_key, competitor, amount, currency, year."""
    acct, who = c["acct"], c["contact"]
    t_en, t_zh = _title(c["title_key"])
    t = t_en if lang == "en" else t_zh
    zh = lang == "zh"
    if kind == "warranty_question":
        a = rng.choice(_WARRANTY[lang])
        s = f"{who}（{t}）询问质保是否覆盖{a}。" if zh else f"{who} ({t}) asked whether the warranty covers {a}."
        q = (f"What warranty concern did the {t_en} at {acct} raise?", f"{acct}的{t_zh}对质保提出了什么疑问？")
    elif kind == "budget_cap":
        cap = round(c["amount"] * rng.uniform(1.05, 1.3), -4) + rng.randrange(1, 9) * 10_000
        a = money_zh(cap, c["currency"]) if zh else money(cap, c["currency"])
        s = f"{who}（{t}）明确表示本项目预算上限为{a}。" if zh else \
            f"{who} ({t}) said the budget for this project is capped at {a}."
        q = (f"How much can {acct} spend at most on this project?", f"{acct}这个项目最多能花多少钱？")
    elif kind == "pilot_site":
        a = rng.choice(_SITES[lang])
        s = f"{who}确认试点将放在{a}。" if zh else f"{who} confirmed the pilot will run at {a}."
        q = (f"Where is {acct} going to run the pilot?", f"{acct}的试点安排在哪里？")
    elif kind == "decision_date":
        day, month = rng.randrange(1, 28), rng.randrange(12)
        a = f"{c['year']}年{month + 1}月{day}日" if zh else f"{day} {_MONTHS[month]} {c['year']}"
        s = f"{who}（{t}）说董事会将在{a}做最终决定。" if zh else \
            f"{who} ({t}) said the board will make the final decision on {a}."
        q = (f"When does the board at {acct} make its final call on the deal?", f"{acct}董事会哪天拍板？")
    elif kind == "security_requirement":
        a = rng.choice(_SECURITY[lang])
        s = f"对方信息安全部门要求必须提供{a}，否则不批准云平台。" if zh else \
            f"Their IT security team will not approve the cloud portal without {a}."
        q = (f"What does {acct}'s security team need before signing off the cloud portal?",
             f"{acct}的信息安全部门在批准云平台之前要求什么？")
    elif kind == "integration":
        a = rng.choice(_SYSTEMS[lang])
        s = f"{who}（{t}）要求监控数据必须接入{a}。" if zh else \
            f"{who} ({t}) needs the monitoring data to flow into {a}."
        q = (f"Which system does {acct} want our monitoring data integrated with?",
             f"{acct}要求把监控数据对接到哪个系统？")
    elif kind == "payment_terms":
        a = rng.choice(_TERMS[lang])
        s = f"{acct}采购部坚持要求{a}。" if zh else f"Procurement at {acct} insists on {a}."
        q = (f"What payment conditions is {acct}'s purchasing team demanding?", f"{acct}的采购在付款条件上有什么要求？")
    elif kind == "rollout_size":
        n, m = rng.randrange(12, 240), rng.randrange(3, 19)
        a = f"{m}个站点共{n}台" if zh else f"{n} units across {m} sites"
        s = f"{who}透露，{acct}全面推广的规模为{a}。" if zh else f"{who} shared that the full rollout would be {a}."
        q = (f"How large would {acct}'s full rollout be?", f"{acct}全面推广大概多大规模？")
    elif kind == "competitor_offer":
        a = rng.choice(_OFFERS[lang]).format(n=rng.randrange(2, 16))
        comp = c["competitor"]
        s = f"{who}提到{comp}为了拿下项目给出了{a}。" if zh else \
            f"{who} mentioned that {comp} has offered {a} to win the deal."
        q = (f"What sweetener did the rival vendor put on the table at {acct}?",
             f"竞争对手给{acct}开出了什么优惠条件？")
    elif kind == "reference_visit":
        a = rng.choice(_REFS[lang])
        s = f"{who}（{t}）希望参观{a}的储能项目作为参考。" if zh else \
            f"{who} ({t}) wants to visit our installation at {a} as a reference."
        q = (f"Which reference customer does {acct} want to go and see?", f"{acct}想去参观哪个参考案例？")
    else:
        raise ValueError(f"unknown fact kind {kind}")
    return Fact(kind, lang, s, a, [{"lang": "en", "text": q[0]}, {"lang": "zh", "text": q[1]}])


def case_fact(rng: random.Random, kind: str, lang: str, c: dict[str, Any]) -> Fact:
    """A fact for a support case; ``c`` holds acct, code (product code) and product_short."""
    acct, zh = c["acct"], lang == "zh"
    if kind == "serial_number":
        a = f"{c['code']}-{rng.randrange(1000, 9999)}{rng.choice('ABCDEFGHJK')}"
        s = f"故障设备序列号：{a}。" if zh else f"Serial number of the affected unit: {a}."
        q = (f"What's the serial of the faulty unit {acct} reported?", f"{acct}报修的那台设备序列号是多少？")
    elif kind == "site_access":
        a = rng.choice(_ACCESS[lang])
        s = f"工程师进场须知：{a}。" if zh else f"Site access for our engineer: {a}."
        q = (f"What does our field engineer need to do to get onto {acct}'s site?",
             f"我们的工程师去{acct}现场要怎么进场？")
    elif kind == "part_number":
        a = f"HX-{rng.choice(('FAN', 'BMS', 'PCS', 'CAN', 'SIM', 'HVAC'))}-{rng.randrange(100, 999)}"
        s = f"更换备件料号{a}后恢复正常。" if zh else f"Replaced part {a}, after which the unit worked normally."
        q = (f"Which spare part fixed the problem at {acct}?", f"{acct}的故障是换了哪个备件解决的？")
    else:
        raise ValueError(f"unknown fact kind {kind}")
    return Fact(kind, lang, s, a, [{"lang": "en", "text": q[0]}, {"lang": "zh", "text": q[1]}])
