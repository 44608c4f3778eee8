"""Answers written from a tool's real output, in the rep's language, citing only what the tool returned.

Each writer takes the ``ToolResult.data`` the assistant's model would read and returns the answer text, or None
when the output gives nothing worth answering from. Every citation is a ``ref`` found in that data, so an answer
can never cite a record the tool did not return (the test checks each citation against the example's tool output).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from agents.assistant.money import format_money
from finetune.phrasing import CASE_STATUS_WORDS, LEAD_STATUS_WORDS, PRIORITY_WORDS, STAGE_LABEL

Writer = Callable[[dict[str, Any], str, random.Random], str | None]
SHOWN = 5  # items an answer lists: a small model answers best from a short list
TYPE_WORDS = {"account": ("account", "客户"), "contact": ("contact", "联系人"), "lead": ("lead", "线索"),
              "opportunity": ("deal", "商机"), "case": ("case", "工单"), "activity": ("activity", "活动")}


def _zh(lang: str) -> bool:
    return lang == "zh"


def cite(ref: str) -> str:
    """A citation as the assistant writes it."""
    return f"[{ref}]"


def _stage(stage: Any, lang: str) -> str:
    return STAGE_LABEL[lang].get(str(stage), str(stage))


def _name(item: dict[str, Any]) -> str:
    return str(item.get("name") or item.get("subject") or item.get("title") or item.get("ref"))


def _pick(rng: random.Random, en: tuple[str, ...], zh: tuple[str, ...], lang: str) -> str:
    return rng.choice(zh if _zh(lang) else en)


def _date(value: Any) -> str:
    return str(value)[:10] if value else ""


def _money(record: dict[str, Any]) -> str:
    """An amount as the tools write it ("USD 250,000.00"); a dash when the rep's role does not see it."""
    if record.get("amount") is None:
        return "—"
    if record.get("currency"):
        return format_money(Decimal(str(record["amount"])), str(record["currency"]))
    return str(record["amount"])


def _opp_line(o: dict[str, Any], lang: str) -> str:
    amount = o.get("amount")
    if _zh(lang):
        parts = [_stage(o.get("stage"), lang)] + ([str(amount)] if amount else []) + (
            [f"预计{_date(o['close_date'])}成交"] if o.get("close_date") else [])
        return f"- {_name(o)}：{'，'.join(parts)} {cite(o['ref'])}"
    parts = [_stage(o.get("stage"), lang)] + ([str(amount)] if amount else []) + (
        [f"closes {_date(o['close_date'])}"] if o.get("close_date") else [])
    return f"- {_name(o)}: {', '.join(parts)} {cite(o['ref'])}"


def _word(words: dict[str, tuple[str, str]], value: Any, lang: str) -> str:
    """A status or priority as the rep's language says it."""
    return words.get(str(value), (str(value), str(value)))[1] if _zh(lang) else str(value)


def _lead_line(x: dict[str, Any], lang: str) -> str:
    bits = [b for b in (x.get("company"), x.get("status") and _word(LEAD_STATUS_WORDS, x["status"], lang),
                        x.get("source")) if b]
    score = x.get("score")
    if _zh(lang):
        scored = f"，评分{score}" if score is not None else ""
        return f"- {_name(x)}（{'，'.join(map(str, bits))}{scored}） {cite(x['ref'])}"
    scored = f", score {score}" if score is not None else ""
    return f"- {_name(x)} ({', '.join(map(str, bits))}{scored}) {cite(x['ref'])}"


def _case_line(c: dict[str, Any], lang: str) -> str:
    due = _date(c.get("sla_due"))
    if _zh(lang):
        return (f"- {_name(c)}：{_word(CASE_STATUS_WORDS, c.get('status'), lang)}，"
                f"{_word(PRIORITY_WORDS, c.get('priority'), lang)}"
                f"{f'，SLA截止{due}' if due else ''} {cite(c['ref'])}")
    sla = f", SLA due {due}" if due else ""
    return f"- {_name(c)}: {c.get('status', '')}, {c.get('priority', '')}{sla} {cite(c['ref'])}"


def _listing(items: list[dict[str, Any]], count: int, line: Callable[[dict[str, Any], str], str], lang: str,
             rng: random.Random, what: tuple[str, str], empty: tuple[str, str]) -> str:
    if not items:
        return empty[1] if _zh(lang) else empty[0]
    shown = items[:SHOWN]
    lines = "\n".join(line(i, lang) for i in shown)
    if _zh(lang):
        head = _pick(rng, (), (f"共有{count}个{what[1]}符合条件", f"找到{count}个{what[1]}",
                               f"符合条件的{what[1]}有{count}个"), lang)
        more = f"（这里列出前{len(shown)}个）" if count > len(shown) else ""
        return f"{head}{more}：\n{lines}"
    plural = what[0] if count == 1 else what[0] + ("s" if not what[0].endswith("s") else "")
    head = _pick(rng, (f"{count} {plural} match", f"I found {count} {plural}", f"There are {count} {plural}"), (),
                 lang)
    more = f" (showing the first {len(shown)})" if count > len(shown) else ""
    return f"{head}{more}:\n{lines}"


# ---------------------------------------------------------------- read tools
def find_records(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Matches by name, with their type."""
    matches = data.get("matches") or []

    def line(m: dict[str, Any], lg: str) -> str:
        kind = TYPE_WORDS.get(m.get("type", ""), (m.get("type", ""), m.get("type", "")))[1 if _zh(lg) else 0]
        return f"- {_name(m)}（{kind}） {cite(m['ref'])}" if _zh(lg) else f"- {_name(m)} ({kind}) {cite(m['ref'])}"

    return _listing(matches, int(data.get("count") or len(matches)), line, lang, rng, ("match", "记录"),
                    ("Nothing in the CRM matches that name.", "CRM里没有和这个名字匹配的记录。"))


def _related_sentence(related: dict[str, list[dict[str, Any]]], lang: str) -> str:
    parts: list[str] = []
    labels = {"contacts": ("contacts", "联系人"), "opportunities": ("deals", "商机"),
              "open_cases": ("open cases", "未关闭工单"),
              "cases": ("cases", "工单"), "recent_activities": ("recent activity", "最近活动"),
              "account": ("account", "所属客户"), "contact": ("contact", "联系人")}
    for key, items in related.items():
        if not items:
            continue
        named = [f"{_name(i)} {cite(i['ref'])}" for i in items[:3]]
        label = labels.get(key, (key, key))[1 if _zh(lang) else 0]
        parts.append(f"{label}：{'、'.join(named)}" if _zh(lang) else f"{label}: {'; '.join(named)}")
    if not parts:
        return ""
    return ("\n" + "\n".join(f"- {p}" for p in parts)) if parts else ""


def get_record(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """The record's key facts, then its related records."""
    record = data.get("record") or {}
    ref = record.get("ref")
    if not ref:
        return None
    obj = str(ref).partition(":")[0]
    zh = _zh(lang)
    if obj == "opportunity":
        amount = _money(record)
        head = (f"{record.get('name')}目前处于{_stage(record.get('stage'), lang)}阶段，金额{amount}，"
                f"预计{_date(record.get('close_date'))}成交 {cite(ref)}。" if zh else
                f"{record.get('name')} is in {_stage(record.get('stage'), lang)}, {amount}, expected to close "
                f"{_date(record.get('close_date'))} {cite(ref)}.")
    elif obj == "account":
        where = ", ".join(str(x) for x in (record.get("city"), record.get("country")) if x)
        tier, industry = record.get("tier", ""), record.get("industry", "")
        head = (f"{record.get('name')}：{industry}行业，{where}，等级{tier} {cite(ref)}。" if zh else
                f"{record.get('name')}: {industry}, {where}, tier {tier} {cite(ref)}.")
    elif obj == "contact":
        reach = ("，" if zh else ", ").join(str(record[k]) for k in ("email", "phone") if record.get(k))
        if zh:
            head = (f"{record.get('name')}，{record.get('title', '')} {cite(ref)}。"
                    + (f"联系方式：{reach}。" if reach else ""))
        else:
            head = (f"{record.get('name')}, {record.get('title', '')} {cite(ref)}."
                    + (f" Reach them at {reach}." if reach else ""))
    elif obj == "case":
        due = _date(record.get("sla_due"))
        head = (f"工单“{record.get('subject')}”：状态{_word(CASE_STATUS_WORDS, record.get('status'), lang)}，"
                f"{_word(PRIORITY_WORDS, record.get('priority'), lang)}"
                f"{f'，SLA截止{due}' if due else ''} {cite(ref)}。" if zh else
                f"Case \"{record.get('subject')}\" is {record.get('status')}, priority {record.get('priority')}"
                f"{f', SLA due {due}' if due else ''} {cite(ref)}.")
    elif obj == "lead":
        head = (f"线索{record.get('name')}（{record.get('company', '')}）：状态"
                f"{_word(LEAD_STATUS_WORDS, record.get('status'), lang)}，评分"
                f"{record.get('score')}，来源{record.get('source')} {cite(ref)}。" if zh else
                f"Lead {record.get('name')} ({record.get('company', '')}): {record.get('status')}, score "
                f"{record.get('score')}, source {record.get('source')} {cite(ref)}.")
    else:
        head = f"{_name(record)} {cite(ref)}"
    return head + _related_sentence(data.get("related") or {}, lang)


def list_opportunities(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Deals, with stage, amount and close date."""
    items = data.get("opportunities") or []
    return _listing(items, int(data.get("count") or 0), _opp_line, lang, rng, ("deal", "商机"),
                    ("No deals match those filters.", "没有符合这些条件的商机。"))


def list_leads(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Leads with company, status, source and score."""
    return _listing(data.get("leads") or [], int(data.get("count") or 0), _lead_line, lang, rng, ("lead", "线索"),
                    ("No leads match.", "没有符合条件的线索。"))


def list_cases(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Cases with status, priority and SLA."""
    return _listing(data.get("cases") or [], int(data.get("count") or 0), _case_line, lang, rng, ("case", "工单"),
                    ("No cases match.", "没有符合条件的工单。"))


def account_timeline(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """The newest events of an account."""
    account = data.get("account") or {}
    events = data.get("timeline") or []
    if not account.get("ref"):
        return None
    if not events:
        return (f"{account.get('name')}在这段时间没有记录 {cite(account['ref'])}。" if _zh(lang) else
                f"Nothing is logged for {account.get('name')} in that period {cite(account['ref'])}.")
    lines = []
    for e in events[:SHOWN]:
        what = e.get("subject") or e.get("name") or e.get("kind") or ""
        lines.append(f"- {_date(e.get('when'))} {what} {cite(e['ref'])}")
    head = (f"{account.get('name')} {cite(account['ref'])}的最近动态：" if _zh(lang) else
            f"Latest on {account.get('name')} {cite(account['ref'])}:")
    return head + "\n" + "\n".join(lines)


def search_notes(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """The passages found, quoted briefly, each citing its record."""
    results = data.get("results") or []
    if not results:
        return ("没有找到相关的备注或邮件。" if _zh(lang) else "I couldn't find any notes or emails about that.")
    lines = []
    for r in results[:3]:
        text = " ".join(str(r.get("text") or "").split())
        snippet = text[:140] + ("…" if len(text) > 140 else "")
        lines.append(f"- {_date(r.get('when'))}: {snippet} {cite(r['ref'])}")
    head = _pick(rng, ("Here's what I found in the notes:", "These notes mention it:"),
                 ("在记录里找到这些：", "以下记录提到了相关内容："), lang)
    return head + "\n" + "\n".join(lines)


def pipeline_summary(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Counts and totals per group, citing the largest deals of each."""
    rows = data.get("rows") or []
    group = (data.get("filters") or {}).get("group_by", "stage")
    if not rows:
        return "没有符合条件的未关闭商机。" if _zh(lang) else "There are no open deals for that."
    lines = []
    for r in rows[:8]:
        key = r.get(group)
        # An owner is "Name [user:3]": a user reference is not a record the answer may cite.
        label = _stage(key, lang) if group == "stage" else str(key).split(" [")[0]
        total = f", {r['total']}" if r.get("total") and not _zh(lang) else (f"，{r['total']}" if r.get("total") else "")
        refs = " ".join(cite(x) for x in (r.get("largest") or r.get("examples") or [])[:2])
        lines.append(f"- {label}：{r.get('count')}个{total} {refs}" if _zh(lang) else
                     f"- {label}: {r.get('count')} deal{'s' if r.get('count') != 1 else ''}{total} {refs}")
    head = "按分组汇总如下：" if _zh(lang) else "Here's the breakdown:"
    return head + "\n" + "\n".join(lines)


def customer_360(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Linked records, scores and the latest touchpoints."""
    idents = [i for i in data.get("identities") or [] if not str(i.get("ref", "")).startswith("visitor:")]
    if not idents:
        return None
    zh = _zh(lang)
    linked = [f"{i.get('name')} {cite(i['ref'])}（匹配度{i.get('match')}）" if zh else
              f"{i.get('name')} {cite(i['ref'])} ({i.get('match')} match)" for i in idents[:4]]
    out = [("关联记录：" if zh else "Linked records: ") + ("、" if zh else "; ").join(linked)]
    for s in (data.get("scores") or [])[:3]:
        out.append(f"{s.get('kind')}评分{s.get('value')}（{s.get('label')}） {cite(s['ref'])}" if zh else
                   f"{s.get('kind')} score {s.get('value')} ({s.get('label')}) {cite(s['ref'])}")
    for t in (data.get("timeline") or [])[:3]:
        out.append(f"{t.get('when')}：{t.get('what')} {cite(t['ref'])}" if zh else
                   f"{t.get('when')}: {t.get('what')} {cite(t['ref'])}")
    return "\n".join(f"- {line}" for line in out)


def explain_score(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Each score with its main factors."""
    record = data.get("record") or {}
    scores = data.get("scores") or []
    if not scores or not record.get("ref"):
        return None
    zh = _zh(lang)
    parts = []
    for s in scores:
        reasons = "; ".join(s.get("reasons") or [])
        parts.append(f"{s.get('kind')}评分为{s.get('value')}（{s.get('label')}），主要因素：{reasons}" if zh else
                     f"The {s.get('kind')} score is {s.get('value')} ({s.get('label')}). Main factors: {reasons}")
    name = _name(record)
    return (f"{name} {cite(record['ref'])}：" if zh else f"{name} {cite(record['ref'])}: ") + ("\n".join(parts))


def find_duplicates(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Groups of likely duplicates with why they match."""
    groups = data.get("duplicates") or []
    if not groups:
        return "没有发现疑似重复的记录。" if _zh(lang) else "I don't see any likely duplicates."
    lines = []
    for g in groups[:SHOWN]:
        names = " / ".join(str(n) for n in g.get("names") or [])
        refs = " ".join(cite(r) for r in g.get("records") or [])
        why = "; ".join(g.get("why") or [])
        lines.append(f"- {names}（匹配度{g.get('match')}：{why}） {refs}" if _zh(lang) else
                     f"- {names} ({g.get('match')} match: {why}) {refs}")
    head = f"发现{len(groups)}组疑似重复：" if _zh(lang) else f"{len(groups)} likely duplicate group(s):"
    return head + "\n" + "\n".join(lines)


def segment_members(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """Accounts in the segment, most valuable first."""
    accounts = data.get("accounts") or []

    def line(a: dict[str, Any], lg: str) -> str:
        ltv = a.get("ltv")
        if _zh(lg):
            return f"- {_name(a)}{f'（终身价值{ltv}）' if ltv is not None else ''} {cite(a['ref'])}"
        return f"- {_name(a)}{f' (lifetime value {ltv})' if ltv is not None else ''} {cite(a['ref'])}"

    return _listing(accounts, int(data.get("count") or 0), line, lang, rng, ("account", "客户"),
                    ("No accounts of yours are in that segment.", "你可见的客户中没有属于这个分组的。"))


def draft_email(data: dict[str, Any], lang: str, rng: random.Random) -> str | None:
    """The draft, for the rep to review and send themselves."""
    draft = data.get("draft") or {}
    to = draft.get("to") or {}
    if not to.get("ref"):
        return None
    if _zh(lang):
        return (f"给{to.get('name')} {cite(to['ref'])}的邮件草稿如下，请检查后自行发送：\n"
                f"主题：{draft.get('subject')}\n\n{draft.get('body')}")
    return (f"Here's a draft to {to.get('name')} {cite(to['ref'])}; review it and send it yourself:\n"
            f"Subject: {draft.get('subject')}\n\n{draft.get('body')}")


WRITERS: dict[str, Writer] = {
    "find_records": find_records, "get_record": get_record, "list_opportunities": list_opportunities,
    "list_leads": list_leads, "list_cases": list_cases, "account_timeline": account_timeline,
    "search_notes": search_notes, "pipeline_summary": pipeline_summary, "customer_360": customer_360,
    "explain_score": explain_score, "find_duplicates": find_duplicates, "segment_members": segment_members,
    "draft_email": draft_email,
}


# ---------------------------------------------------------------- after an approval
FIELD_WORDS = {"stage": ("stage", "阶段"), "close_date": ("close date", "预计成交日期"), "amount": ("amount", "金额"),
               "probability": ("probability", "赢率"), "priority": ("priority", "优先级"), "status": ("status", "状态"),
               "title": ("title", "职位"), "subject": ("subject", "主题"), "name": ("name", "姓名"),
               "company": ("company", "公司"), "email": ("email", "邮箱"), "phone": ("phone", "电话"),
               "source": ("source", "来源")}
KIND_WORDS = {"call": ("call", "电话"), "email": ("email", "邮件"), "meeting": ("meeting", "会议"),
              "note": ("note", "备注")}


def _value(field: str, value: Any, lang: str) -> str:
    if field == "stage":
        return _stage(value, lang)
    if field == "amount" and value is not None:
        return f"{Decimal(str(value)):,.2f}"
    return str(value)


def _confirm_create(obj: str, after: dict[str, Any], record: str, lang: str, rng: random.Random) -> str:
    zh = _zh(lang)
    if obj == "activity":
        day, subject = _date(after.get("occurred_at")), after.get("subject", "")
        if after.get("kind") == "task":
            return (f"已安排跟进任务：{day}，{subject} {cite(record)}。" if zh else
                    f"Follow-up task set for {day}: {subject} {cite(record)}.")
        kind = KIND_WORDS.get(str(after.get("kind")), (after.get("kind"), after.get("kind")))[1 if zh else 0]
        return (f"已记录{kind}（{day}）：{subject} {cite(record)}。" if zh else
                f"Logged the {kind} on {day}: {subject} {cite(record)}.")
    name = after.get("name", "")
    what = TYPE_WORDS.get(obj, (obj, obj))[1 if zh else 0]
    return _pick(rng, (f"Created the {what} {name} {cite(record)}.", f"Done, {name} is now a {what} {cite(record)}."),
                 (f"已新建{what}{name} {cite(record)}。", f"好了，{what}{name}已创建 {cite(record)}。"), lang)


def after_approval(outcome: dict[str, Any], lang: str, rng: random.Random) -> str:
    """Confirm an applied change, or acknowledge a rejected one (the graph's approval note asks for this)."""
    record = outcome.get("record")
    zh = _zh(lang)
    if outcome.get("status") == "applied" and record:
        changes = {f: c for f, c in (outcome.get("changes") or {}).items() if isinstance(c, dict)}
        obj = str(record).partition(":")[0]
        if changes and all(c.get("before") is None for c in changes.values()):
            return _confirm_create(obj, {f: c.get("after") for f, c in changes.items()}, record, lang, rng)
        said = []
        for f, c in list(changes.items())[:3]:
            label = FIELD_WORDS.get(f, (f, f))[1 if zh else 0]
            before, after = _value(f, c.get("before"), lang), _value(f, c.get("after"), lang)
            said.append(f"{label}从{before}改为{after}" if zh else f"{label} changed from {before} to {after}")
        joined = ("，".join(said) if zh else "; ".join(said))
        return _pick(rng, (f"Done: {joined} {cite(record)}.", f"Updated {cite(record)}: {joined}."),
                     (f"已完成：{joined} {cite(record)}。", f"已更新 {cite(record)}：{joined}。"), lang)
    if outcome.get("status") == "rejected":
        return _pick(rng, ("OK, I left it as it was; nothing was changed.", "Understood, no change was made."),
                     ("好的，保持原样，没有做任何修改。", "明白，这次不做修改。"), lang)
    return _pick(rng, ("The change is waiting for a manager's approval; nothing is applied yet.",),
                 ("这项修改需要经理审批，目前尚未生效。",), lang)
