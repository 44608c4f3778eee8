"""The deterministic explainer: a compiled ``Rule`` rendered back in the manager's language (English or Chinese).

The manager approves what this says, so it renders every part of the rule, defaults included, and never
calls a model.
"""

from __future__ import annotations

from typing import Literal

from rules.language import (
    AggregateCondition,
    Assign,
    CreateContact,
    CreateLead,
    CreateTask,
    Delete,
    Escalate,
    EventFilter,
    EventTrigger,
    Export,
    FieldCondition,
    IdentityCondition,
    InactivityCondition,
    Notify,
    RecordTrigger,
    Rule,
    ScheduleTrigger,
    ScoreCondition,
    SegmentCondition,
    SendMessage,
    SequenceCondition,
    UpdateField,
)

Lang = Literal["en", "zh"]

EVENT_NAMES: dict[str, tuple[str, str]] = {
    "page_view": ("a page view", "浏览页面"), "pricing_view": ("a pricing page view", "访问价格页"),
    "form_submit": ("a form submission", "提交表单"), "email_open": ("an email open", "打开邮件"),
    "download": ("a download", "下载资料"), "video_play": ("a video play", "观看视频"),
    "demo_request": ("a demo request", "申请演示"),
}
OBJECT_NAMES: dict[str, tuple[str, str]] = {
    "lead": ("lead", "线索"), "contact": ("contact", "联系人"), "account": ("account", "客户公司"),
    "opportunity": ("opportunity", "商机"), "case": ("case", "工单"), "activity": ("activity", "活动"),
}
RECIPIENTS: dict[str, tuple[str, str]] = {
    "owner": ("the record's owner", "记录负责人"), "account_owner": ("the account owner", "客户负责人"),
    "team_manager": ("the team's manager", "团队经理"), "support_lead": ("the support lead", "支持主管"),
    "author": ("the rule's author", "规则作者"),
    "customer_owner": ("the owner of the matching existing customer", "匹配到的老客户的负责人"),
}
SCORE_NAMES: dict[str, tuple[str, str]] = {
    "lead": ("lead score (chance to convert in 90 days)", "线索评分(90天内转化概率)"),
    "win": ("win probability", "赢单概率"), "health": ("account health score", "客户健康分"),
    "rfm": ("RFM score", "RFM评分"), "ltv": ("lifetime value", "客户终身价值"),
}
OPS: dict[str, tuple[str, str]] = {
    "eq": ("is", "等于"), "ne": ("is not", "不等于"), "gt": ("is more than", "大于"), "ge": ("is at least", "至少为"),
    "lt": ("is less than", "小于"), "le": ("is at most", "至多为"), "in": ("is one of", "属于"),
    "not_in": ("is none of", "不属于"),
}
FIELD_NAMES: dict[str, tuple[str, str]] = {
    "amount": ("amount", "金额"), "stage": ("stage", "阶段"), "status": ("status", "状态"),
    "priority": ("priority", "优先级"), "score": ("score", "评分"), "probability": ("win probability", "赢率"),
    "tier": ("tier", "等级"), "sla_due": ("SLA due time", "SLA到期时间"), "close_date": ("close date", "预计成交日期"),
    "custom.consent": ("consent (custom.consent)", "同意字段(custom.consent)"),
    "custom.opted_out": ("opted out (custom.opted_out)", "退订字段(custom.opted_out)"),
}
AGG_OPS: dict[str, tuple[str, str]] = {
    "gt": ("more than", "超过"), "ge": ("at least", "至少"), "lt": ("fewer than", "少于"),
    "le": ("at most", "至多"), "eq": ("exactly", "恰好"),
}


def _t(lang: Lang, en: str, zh: str) -> str:
    return zh if lang == "zh" else en


def duration(minutes: float, lang: Lang) -> str:
    """``90`` -> "1.5 hours" / "1.5小时"; whole days, hours or minutes where they divide evenly."""
    m = abs(minutes)
    for size, en, zh in ((10080, "week", "周"), (1440, "day", "天"), (60, "hour", "小时"), (1, "minute", "分钟")):
        if m >= size and m % size == 0:
            n = int(m // size)
            return f"{n}{zh}" if lang == "zh" else f"{n} {en}{'s' if n != 1 else ''}"
    if m < 1:
        secs = int(round(m * 60))
        return f"{secs}秒" if lang == "zh" else f"{secs} seconds"
    return f"{m:g}分钟" if lang == "zh" else f"{m:g} minutes"


def _seconds(s: float, lang: Lang) -> str:
    return duration(s / 60, lang)


def _field(name: str | None, lang: Lang) -> str:
    if name is None:
        return ""
    return FIELD_NAMES.get(name, (name, name))[lang == "zh"]


def _filter(f: EventFilter, lang: Lang) -> str:
    if f.types:
        names = [EVENT_NAMES[t][lang == "zh"] for t in f.types]
        what = _t(lang, " or ".join(names), "或".join(names))
    else:
        what = _t(lang, "any event", "任意事件")
    if f.page_prefix:
        what += _t(lang, f" on a page starting with {f.page_prefix}", f"(页面以 {f.page_prefix} 开头)")
    if f.min_duration_s:
        what += _t(lang, f" lasting at least {_seconds(f.min_duration_s, lang)}",
                   f"(单次停留至少{_seconds(f.min_duration_s, lang)})")
    return what


def _value(v: object) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v))
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return f"{int(v):,}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _trigger(rule: Rule, lang: Lang) -> str:
    t = rule.trigger
    if isinstance(t, EventTrigger):
        return _t(lang, f"When a customer's event arrives ({_filter(t.filter, lang)})",
                  f"每当收到客户事件({_filter(t.filter, lang)})时")
    obj_en, obj_zh = OBJECT_NAMES[t.object]
    article = "an" if obj_en[:1] in "aeiou" else "a"
    if isinstance(t, RecordTrigger):
        if t.on == "created":
            return _t(lang, f"When {article} {obj_en} is created", f"每当新建{obj_zh}时")
        to = f" to {_value(t.to_value)}" if t.to_value is not None else ""
        to_zh = f"为{_value(t.to_value)}" if t.to_value is not None else ""
        fld = _field(t.field, lang)
        return _t(lang, f"When {article} {obj_en}'s {fld} changes{to}", f"每当{obj_zh}的{fld}变更{to_zh}时")
    assert isinstance(t, ScheduleTrigger)
    if t.date_field is None:
        return _t(lang, f"Once a day, for every {obj_en}", f"每天对每条{obj_zh}检查一次")
    when = duration(t.offset_minutes, lang)
    date = _field(t.date_field, lang)
    if t.offset_minutes < 0:
        return _t(lang, f"{when} before each {obj_en}'s {date}", f"在每条{obj_zh}的{date}之前{when}")
    if t.offset_minutes > 0:
        return _t(lang, f"{when} after each {obj_en}'s {date}", f"在每条{obj_zh}的{date}之后{when}")
    return _t(lang, f"At each {obj_en}'s {date}", f"在每条{obj_zh}的{date}时刻")


def _condition(c: object, lang: Lang) -> str:
    if isinstance(c, FieldCondition):
        fld = _field(c.field, lang)
        return _t(lang, f"its {fld} {OPS[c.op][0]} {_value(c.value)}", f"其{fld}{OPS[c.op][1]}{_value(c.value)}")
    if isinstance(c, AggregateCondition):
        window = duration(c.window_minutes, lang)
        op = AGG_OPS[c.op][lang == "zh"]
        if c.fn == "count":
            n = _value(c.value)
            return _t(lang, f"the same customer had {op} {n} × {_filter(c.filter, lang)} in the last {window}",
                      f"同一客户在最近{window}内{_filter(c.filter, lang)}{op}{n}次")
        total = _seconds(c.value, lang)
        on_site = not c.filter.types and not c.filter.page_prefix and not c.filter.min_duration_s
        where = _t(lang, "the website", "网站") if on_site else _filter(c.filter, lang)
        return _t(lang, f"the same customer's total time on {where} in the last {window} is "
                  f"{op} {total} (summed over visits)",
                  f"同一客户最近{window}内在{where}的累计停留时间{op}{total}(多次访问合计)")
    if isinstance(c, SequenceCondition):
        steps = [_filter(s, lang) for s in c.steps]
        window = duration(c.within_minutes, lang)
        return _t(lang, f"the same customer did {', then '.join(steps)}, in that order, within {window}",
                  f"同一客户在{window}内依次{'，然后'.join(steps)}")
    if isinstance(c, ScoreCondition):
        name = SCORE_NAMES[c.score]
        return _t(lang, f"its {name[0]} {OPS[c.op][0]} {_value(c.value)}",
                  f"其{name[1]}{OPS[c.op][1]}{_value(c.value)}")
    if isinstance(c, SegmentCondition):
        what = {"rfm": ("RFM segment", "RFM分群"), "health": ("health band", "健康状况"),
                "lead": ("lead score band", "线索评分档"), "win": ("win band", "赢单档")}[c.of]
        return _t(lang, f"its account's {what[0]} is {c.label}" if c.of in ("rfm", "health") else
                  f"its {what[0]} is {c.label}", f"其{what[1]}为{c.label}")
    if isinstance(c, IdentityCondition):
        return _t(lang, "it matches an existing customer (identity resolution links it to an older record)",
                  "它与已有客户匹配(身份识别把它关联到更早的记录)")
    assert isinstance(c, InactivityCondition)
    return _t(lang, f"no activity has been logged on it for {c.days} days", f"已连续{c.days}天没有任何活动记录")


def _action(a: object, lang: Lang) -> str:
    if isinstance(a, CreateLead):
        score = _t(lang, f" with score {a.score}", f",评分{a.score}") if a.score is not None else ""
        return _t(lang, f"create a lead for the customer{score} in the '{a.pool}' pool",
                  f"为该客户创建线索{score},放入“{a.pool}”线索池")
    if isinstance(a, CreateContact):
        return _t(lang, "create a contact from the customer's details", "根据客户信息创建联系人")
    if isinstance(a, CreateTask):
        who = RECIPIENTS[a.assignee][lang == "zh"]
        return _t(lang, f"create a task \"{a.subject}\" for {who}, due in {a.due_in_days} day(s)",
                  f"为{who}创建任务“{a.subject}”,{a.due_in_days}天内到期")
    if isinstance(a, UpdateField):
        fld = _field(a.field, lang)
        return _t(lang, f"set its {fld} to {_value(a.value)}", f"将其{fld}设为{_value(a.value)}")
    if isinstance(a, Assign):
        if a.pool:
            return _t(lang, f"put it in the '{a.pool}' pool", f"分配至“{a.pool}”线索池")
        if a.queue:
            return _t(lang, f"put it in the '{a.queue}' queue", f"分配至“{a.queue}”队列")
        who = RECIPIENTS[a.owner or "owner"][lang == "zh"]
        return _t(lang, f"make {who} its owner (an owner change)", f"将负责人改为{who}(负责人变更)")
    if isinstance(a, Notify):
        who = RECIPIENTS[a.recipient][lang == "zh"]
        return _t(lang, f"notify {who}", f"通知{who}")
    if isinstance(a, Escalate):
        who = RECIPIENTS[a.to][lang == "zh"]
        return _t(lang, f"escalate it (status escalated, priority urgent) to {who}",
                  f"将其升级(状态改为已升级、优先级改为紧急)并交给{who}")
    if isinstance(a, SendMessage):
        channel = {"email": _t(lang, "an email", "邮件"), "sms": _t(lang, "an SMS", "短信")}[a.channel]
        return _t(lang, f"send the customer {channel}", f"向客户发送{channel}")
    if isinstance(a, Export):
        fields = ", ".join(a.fields) or _t(lang, "all fields", "全部字段")
        obj_en, obj_zh = OBJECT_NAMES[a.object]
        return _t(lang, f"export {obj_en} {fields} to {a.destination or '(no destination)'}",
                  f"将{obj_zh}的{fields}导出到{a.destination or '(未指定)'}")
    assert isinstance(a, Delete)
    obj_en, obj_zh = OBJECT_NAMES[a.object]
    return _t(lang, f"delete the {obj_en}", f"删除该{obj_zh}")


def explain_action(action: object, lang: Lang) -> str:
    """One action, as the explanation renders it."""
    text = _action(action, lang)
    return text + (_t(lang, " (in bulk)", "(批量)") if getattr(action, "bulk", False) else "")


def explain(rule: Rule, lang: Lang | None = None) -> str:
    """What ``rule`` does, every part of it, in ``lang`` (default: the rule's own language)."""
    lang = lang or rule.language
    sep = _t(lang, "; and ", ";并且")
    parts = [_trigger(rule, lang)]
    if rule.conditions:
        conds = sep.join(_condition(c, lang) for c in rule.conditions)
        parts.append(_t(lang, f", if {conds}", f",如果{conds}"))
    actions = [explain_action(a, lang) for a in rule.actions]
    parts.append(_t(lang, ": " + "; then ".join(actions) + ".", ",则" + ";然后".join(actions) + "。"))
    if rule.approval.auto_approve:
        parts.append(_t(lang, " The rule's policy approves these changes itself, except delete, owner change, bulk "
                        "and export, which always wait for a person.",
                        "这些变更由规则策略自动批准;删除、负责人变更、批量和导出操作始终需要人工批准。"))
    else:
        parts.append(_t(lang, " Every change waits for a person to approve it.", "每项变更都需人工批准后才会生效。"))
    lim = rule.limits
    parts.append(_t(lang, f" At most {lim.max_fires_per_customer_per_day} firing(s) per customer (or record) per "
                    f"day and {lim.max_fires_per_hour} per hour; changes made by rules {lim.max_depth} levels deep "
                    "trigger no further rules.",
                    f"每个客户(或记录)每天最多触发{lim.max_fires_per_customer_per_day}次,每小时最多{lim.max_fires_per_hour}次;"
                    f"规则连锁触发最多{lim.max_depth}层。"))
    return "".join(parts)
