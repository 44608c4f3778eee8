"""A score's reasons in English and Chinese: one short phrase per feature value, strongest contribution first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SENIORITY = {"c_level": ("C-level title", "高管职位"),
              "vp_director": ("VP or director title", "副总裁/总监职位"),
              "manager": ("manager title", "经理职位"), "individual": ("individual contributor title", "一线员工职位"),
              "unknown": ("unknown title", "职位未知")}
_FUNCTION = {"executive": ("general management", "综合管理"), "finance": ("finance", "财务"),
             "technical": ("technical role", "技术岗位"), "operations": ("operations", "运营"),
             "procurement": ("procurement", "采购"), "other": ("other function", "其他职能")}
_SOURCE = {"web": ("came in through the website", "来源：官网"), "event": ("met at an event", "来源：展会活动"),
           "referral": ("referred by a customer", "来源：客户推荐"),
           "partner": ("brought by a partner", "来源：合作伙伴"),
           "cold_call": ("cold call", "来源：陌生拜访"), "other": ("other source", "来源：其他")}
_INDUSTRY_ZH = {"Manufacturing": "制造业", "EV & Batteries": "新能源汽车与电池", "SaaS": "软件服务", "Retail": "零售",
                "Logistics": "物流", "Healthcare": "医疗健康", "Fintech": "金融科技", "Utilities": "电力能源",
                "Telecom": "通信", "other": "其他"}
_LINE = {"ess": ("energy storage", "储能"), "pack": ("battery packs", "电池包"), "iot": ("telematics", "物联网"),
         "saas": ("software", "软件"), "other": ("other products", "其他产品")}
_RFM = {"recency": ("recency", "最近购买"), "frequency": ("frequency", "购买频次"), "monetary": ("spend", "消费金额")}


def _yes_no(en_yes: str, zh_yes: str, en_no: str, zh_no: str) -> Callable[[Any], tuple[str, str]]:
    return lambda v: (en_yes, zh_yes) if v else (en_no, zh_no)


PHRASES: dict[str, Callable[[Any], tuple[str, str]]] = {
    # leads
    "seniority": lambda v: _SENIORITY.get(v, _SENIORITY["unknown"]),
    "function": lambda v: _FUNCTION.get(v, _FUNCTION["other"]),
    "company_size": lambda v: (f"company of about {int(v):,} employees", f"公司约{int(v)}人"),
    "industry": lambda v: (f"industry: {v}", f"行业：{_INDUSTRY_ZH.get(v, v)}"),
    "source": lambda v: _SOURCE.get(v, _SOURCE["other"]),
    "sessions": lambda v: (f"visited the website on {int(v)} days", f"访问官网{int(v)}天"),
    "pricing_views": lambda v: (f"viewed pricing {int(v)} times", f"查看定价页{int(v)}次"),
    "dwell_minutes": lambda v: (f"spent {v:g} minutes on the site", f"在官网停留{v:g}分钟"),
    "downloads": lambda v: (f"downloaded {int(v)} resources", f"下载资料{int(v)}份"),
    "demo_requests": _yes_no("requested a demo", "申请了产品演示", "no demo request", "未申请产品演示"),
    "recency_days": lambda v: (f"last visit {int(v)} days before", f"最近一次访问在{int(v)}天前")
    if v < 60 else ("no recent visit", "近期无访问"),
    # deals
    "amount_usd_log": lambda v: (f"deal of about {10 ** v:,.0f} USD", f"金额约{10 ** v / 10_000:,.0f}万美元"),
    "product_line": lambda v: (f"product: {_LINE.get(v, _LINE['other'])[0]}",
                               f"产品：{_LINE.get(v, _LINE['other'])[1]}"),
    "days_in_pipeline": lambda v: (f"{int(v)} days in the pipeline", f"在管道中{int(v)}天"),
    "meetings": lambda v: (f"{int(v)} meetings", f"会议{int(v)}次"),
    "calls": lambda v: (f"{int(v)} calls", f"电话{int(v)}次"),
    "emails": lambda v: (f"{int(v)} emails", f"邮件{int(v)}封"),
    "has_competitor": _yes_no("a competitor is involved", "有竞争对手参与", "no competitor named", "无竞争对手"),
    "budget_confirmed": _yes_no("budget confirmed", "预算已确认", "budget not confirmed", "预算未确认"),
    "champion": _yes_no("has a champion", "有内部支持者", "no champion", "没有内部支持者"),
    "exec_sponsor": _yes_no("executive sponsor engaged", "有高层支持", "no executive sponsor", "无高层支持"),
    "pilot_done": _yes_no("pilot done", "已完成试点", "no pilot", "未做试点"),
    "stakeholders": lambda v: (f"{int(v)} stakeholders engaged", f"参与决策{int(v)}人"),
    "discount_pct": lambda v: (f"asked for {v:g}% discount", f"要求折扣{v:g}%"),
    # account health
    "activities_90d": lambda v: (f"{int(v)} touchpoints in 90 days", f"近90天互动{int(v)}次"),
    "days_since_touch": lambda v: (f"last touchpoint {int(v)} days ago", f"距上次互动{int(v)}天"),
    "open_urgent_high": lambda v: (f"{int(v)} open urgent/high cases", f"未结紧急/高优先级工单{int(v)}个"),
    "open_cases": lambda v: (f"{int(v)} open cases", f"未结工单{int(v)}个"),
    "sla_breaches_180d": lambda v: (f"{int(v)} SLA breaches in 180 days", f"近180天超SLA{int(v)}次"),
    "tone": lambda v: (("positive tone in recent notes and cases", "近期记录与工单语气积极") if v > 0.15 else
                       ("negative tone in recent notes and cases", "近期记录与工单语气消极") if v < -0.15 else
                       ("neutral tone in recent notes and cases", "近期记录与工单语气中性")),
    "usage_per_seat": lambda v: (f"product used by {v:.0%} of expected seats", f"产品使用率{v:.0%}"),
    "usage_trend": lambda v: (f"usage {'up' if v >= 0 else 'down'} {abs(v):.0%} vs the 8 weeks before",
                              f"使用量较前8周{'上升' if v >= 0 else '下降'}{abs(v):.0%}"),
    # RFM quintiles
    **{f"{k}_quintile": (lambda v, k=k: (f"{_RFM[k][0]} quintile {int(v)} of 5", f"{_RFM[k][1]}五分位第{int(v)}档"))
       for k in _RFM},
}


def phrase(feature: str, value: Any) -> tuple[str, str]:
    """(English, Chinese) phrase for one feature value; unknown features fall back to 'name = value'."""
    make = PHRASES.get(feature)
    return make(value) if make else (f"{feature} = {value}", f"{feature} = {value}")


def reasons(contributions: dict[str, float], values: dict[str, Any], top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` strongest contributions, as the reason dicts ``CustomerScore.reasons`` stores."""
    ranked = sorted(contributions.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    out = []
    for name, contribution in ranked:
        en, zh = phrase(name, values[name])
        out.append({"feature": name, "value": values[name], "contribution": round(float(contribution), 4),
                    "en": en, "zh": zh})
    return out
