"""The conversations the synthetic set is made of, one function per kind of request.

Each scenario picks real records the rep may read (or, for refusals, one they may not), words the request with a
template from ``finetune.phrasing``, makes the call a right model would make, runs it as the rep and writes the
answer from the real output. A scenario returns the examples it made (none when the data has nothing to ask about).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from agents.assistant.dates import resolve_date
from agents.assistant.language import answer_language
from agents.assistant.money import parse_amount
from agents.assistant.resolve import NAME_FIELD, PLURAL_WORDS
from agents.errors import ToolInputError
from config.objects import ref
from crm.customer_models import CustomerScore
from crm.models import Account, Contact, Opportunity, User
from crm.proposals import CLOSED_VALUES
from finetune import answers, phrasing
from finetune.examples import Example
from finetune.synth import (
    Call,
    Scene,
    after_approval,
    after_error,
    after_result,
    after_step,
    asks_for_write,
    first_call,
    first_reply,
    run,
    valid_call,
)

Scenario = Callable[[Scene], list[Example]]
_LEGAL = re.compile(r"\s*(?:有限公司|股份有限公司|Inc\.|Ltd\.|LLC|GmbH|Pte\. Ltd\.|Co\.|S\.A\.|B\.V\.|AG|plc)\s*$")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{4,}")
ANSWER_SHARE = 0.75  # of successful read calls, how many also give an answer example
APPROVAL_SHARE = 0.5  # of write calls, how many also give an after-approval example


# ---------------------------------------------------------------- wording
def _i(scene: Scene) -> int:
    return 1 if scene.lang == "zh" else 0


def _typo(template: str, scene: Scene) -> str:
    """One swapped letter pair in a longer word of the template (never inside a slot), as fast typing does."""
    spans = [m for m in _WORD.finditer(template) if "{" not in template[max(0, m.start() - 1):m.end() + 1]]
    if not spans:
        return template
    m = scene.rng.choice(spans)
    w = m.group(0)
    k = scene.rng.randrange(1, len(w) - 2)
    return template[:m.start()] + w[:k] + w[k + 1] + w[k] + w[k + 2:] + template[m.end():]


def _style(template: str, scene: Scene) -> str:
    """Casual variants of a template, as reps type.

    English: lower case, no final punctuation, a typo, a filler word; Chinese: a greeting or a hurried suffix.
    """
    r = scene.rng.random
    if scene.lang == "zh":
        if r() < 0.25:
            template = scene.one(("麻烦你，", "你好，", "嗨，")) + template
        if r() < 0.2:
            template = template.rstrip("？?。") + scene.one(("，谢谢", "，急", "呢？", "，多谢"))
        return template
    if r() < 0.15:
        template = _typo(template, scene)
    if r() < 0.3:
        template = template[0].lower() + template[1:]
    if r() < 0.25:
        template = template.rstrip("?.!")
    if r() < 0.1:
        template = template + scene.one((" thx", " pls", " asap", " - thanks"))
    return template


def say(scene: Scene, bank: dict[str, dict[str, tuple[str, ...]]], key: str, **slots: Any) -> str:
    """The rep's message: a template of ``bank[key]`` in the scene's language, styled, with its slots filled."""
    return _style(scene.one(bank[key][scene.lang]), scene).format(**slots)


# ---------------------------------------------------------------- names a rep would type
def _candidates(obj: str, record: Any) -> list[str]:
    name = str(getattr(record, NAME_FIELD[obj]))
    out = [name]
    if obj == "account":
        short = _LEGAL.sub("", name).strip(" ,")
        out += [short, short.split(" ")[0]]
    elif obj == "opportunity" and " - " in name:
        head, tail = name.split(" - ", 1)
        product = re.split(r"\s*[（(]", tail)[0]
        out += [tail, f"{head} - {product}", product, head]
    return [c for c in dict.fromkeys(out) if len(c) >= 2]


def name_of(scene: Scene, obj: str, record: Any) -> str | None:
    """A name the rep might type that the assistant's resolver reads as exactly this record."""
    options = _candidates(obj, record)
    scene.rng.shuffle(options)
    return next((c for c in options if scene.resolves_to(obj, c, record.id)), None)


def a_name(scene: Scene, obj: str, where: Callable[[Any], bool] | None = None) -> str | None:
    """The name of a random readable record (see ``name_of``), or None."""
    named = a_record(scene, obj, where)
    return named[1] if named else None


def a_record(scene: Scene, obj: str, where: Callable[[Any], bool] | None = None) -> tuple[Any, str] | None:
    """A random readable record and a name that resolves to it, or None."""
    record = scene.pick(obj, where)
    name = name_of(scene, obj, record) if record is not None else None
    return (record, name) if name else None


def _phrase(pairs: tuple[tuple[str, str], ...], scene: Scene) -> tuple[str, str]:
    """A (rep's words, tool argument) pair: the rep's own words, which the tool reads."""
    words = scene.rng.choice(pairs)[_i(scene)]
    return words, words


Filters = tuple[dict[str, Any], dict[str, Any]]
"""A request's tool arguments and the template slots that say them."""


def _period(scene: Scene, arg: str, *, past: bool = False) -> Filters:
    period, value = _phrase(phrasing.PAST_PERIODS if past else phrasing.PERIODS, scene)
    return {arg: value}, {"period": period}


def _quiet(scene: Scene) -> Filters:
    days = scene.one([str(d) for d in phrasing.QUIET_DAYS])
    return {"no_activity_days": int(days)}, {"days": days}


def _account(scene: Scene) -> Filters | None:
    name = a_name(scene, "account")
    return ({"account": name}, {"acct": name}) if name else None


def _stage_words(scene: Scene, stage: str) -> str:
    return scene.one(phrasing.STAGE_WORDS[stage][scene.lang])


# ---------------------------------------------------------------- read scenarios
def _read(scene: Scene, text: str, call: Call) -> list[Example]:
    """A read call: the first-call example, and usually the answer written from its real output."""
    if not valid_call(call):
        return []
    ran = run(scene, call, text)
    if ran.result is None:
        return []
    out = [first_call(scene, text, call)]
    writer = answers.WRITERS.get(call.name)
    if writer and scene.rng.random() < ANSWER_SHARE:
        answer = writer(ran.result.data, answer_language(text), scene.rng)
        if answer:
            out.append(after_result(scene, text, call, ran.result, answer))
    return out


def find_records(scene: Scene) -> list[Example]:
    """Find by a name the rep half remembers."""
    obj = scene.one(("account", "contact", "lead", "opportunity", "case"))
    record = scene.pick(obj)
    if record is None:
        return []
    options = _candidates(obj, record)
    query = scene.one(options[1:] or options)
    return _read(scene, say(scene, phrasing.REQUESTS, "find_records", name=query), Call("find_records",
                                                                                           {"query": query}))


def get_record(scene: Scene) -> list[Example]:
    """Open one record, by name or by reference."""
    obj = scene.one(("account", "contact", "lead", "opportunity", "case"))
    record = scene.pick(obj)
    if record is None:
        return []
    if scene.rng.random() < 0.35:
        reference = ref(obj, record.id)
        return _read(scene, say(scene, phrasing.REQUESTS, "get_record.ref", ref=reference),
                     Call("get_record", {"record": reference}))
    name = name_of(scene, obj, record)
    if name is None:
        return []
    what = phrasing.OBJECT_WORDS[obj][_i(scene)]
    text = say(scene, phrasing.REQUESTS, "get_record.name", name=name, what=what)
    return _read(scene, text, Call("get_record", {"record": name, "object_type": obj}))


def list_opportunities(scene: Scene) -> list[Example]:
    """Deals by stage, amount, close period, silence, or account."""
    variant = scene.one(("stage_mine", "amount_period", "amount_mine", "quiet", "account", "account_all", "period"))
    args: dict[str, Any] = {}
    slots: dict[str, Any] = {}
    if variant == "stage_mine":
        stage = scene.one(("qualification", "needs_analysis", "proposal", "negotiation", "prospecting"))
        args, slots = {"owner": "me", "stage": stage}, {"stage": _stage_words(scene, stage)}
    elif variant in ("amount_period", "amount_mine"):
        words, amount = _phrase(phrasing.AMOUNTS, scene)
        args, slots = {"amount_min": amount}, {"amount": words}
        if variant == "amount_period":
            period, arg = _phrase(phrasing.PERIODS, scene)
            args["close_date"], slots["period"] = arg, period
        else:
            args["owner"] = "me"
    elif variant == "quiet":
        args, slots = _quiet(scene)
    elif variant == "period":
        args, slots = _period(scene, "close_date")
    else:
        account = _account(scene)
        if account is None:
            return []
        args, slots = account
        if variant == "account_all":
            args["include_closed"] = True
        elif scene.rng.random() < 0.4:
            args["sort"] = "amount"
            variant = "account"
    text = say(scene, phrasing.REQUESTS, f"opps.{variant}", **slots)
    if args.get("sort") and not re.search(r"biggest|largest|金额", text):
        args.pop("sort")
    return _read(scene, text, Call("list_opportunities", args))


def list_leads(scene: Scene) -> list[Example]:
    """Leads by status, source and period, or silence."""
    args: dict[str, Any]
    slots: dict[str, Any]
    variant = scene.one(("status_mine", "source_period", "quiet", "created"))
    if variant == "status_mine":
        status = scene.one(("new", "working", "qualified"))
        args, slots = {"owner": "me", "status": status}, {"status": phrasing.LEAD_STATUS_WORDS[status][_i(scene)]}
    elif variant == "source_period":
        source = scene.one(phrasing.LEAD_SOURCES)
        args, slots = _period(scene, "created", past=True)
        args["source"] = slots["source"] = source
    elif variant == "quiet":
        args, slots = _quiet(scene)
    else:
        args, slots = _period(scene, "created", past=True)
    return _read(scene, say(scene, phrasing.REQUESTS, f"leads.{variant}", **slots), Call("list_leads", args))


def list_cases(scene: Scene) -> list[Example]:
    """Cases by priority, status, account or period."""
    args: dict[str, Any]
    slots: dict[str, Any]
    variant = scene.one(("priority", "account", "created", "status"))
    if variant == "priority":
        priority = scene.one(("urgent", "high"))
        args, slots = {"priority": priority}, {"priority": phrasing.PRIORITY_WORDS[priority][_i(scene)]}
    elif variant == "status":
        status = scene.one(("escalated", "pending", "new"))
        args, slots = {"status": status}, {"status": phrasing.CASE_STATUS_WORDS[status][_i(scene)]}
    elif variant == "created":
        args, slots = _period(scene, "created", past=True)
    else:
        account = _account(scene)
        if account is None:
            return []
        args, slots = account
    return _read(scene, say(scene, phrasing.REQUESTS, f"cases.{variant}", **slots), Call("list_cases", args))


def account_timeline(scene: Scene) -> list[Example]:
    """An account's history, sometimes for a period."""
    name = a_name(scene, "account")
    if not name:
        return []
    if scene.rng.random() < 0.35:
        period, arg = _phrase(phrasing.PAST_PERIODS, scene)
        text = say(scene, phrasing.REQUESTS, "timeline.period", acct=name, period=period)
        return _read(scene, text, Call("account_timeline", {"account": name, "period": arg}))
    return _read(scene, say(scene, phrasing.REQUESTS, "timeline", acct=name), Call("account_timeline",
                                                                                   {"account": name}))


def search_notes(scene: Scene) -> list[Example]:
    """Notes about a topic, sometimes for one account."""
    topic = scene.one(phrasing.TOPICS)[_i(scene)]
    if scene.rng.random() < 0.5:
        name = a_name(scene, "account")
        if name:
            text = say(scene, phrasing.REQUESTS, "search.account", acct=name, topic=topic)
            return _read(scene, text, Call("search_notes", {"query": topic, "account": name}))
    return _read(scene, say(scene, phrasing.REQUESTS, "search", topic=topic), Call("search_notes", {"query": topic}))


def pipeline_summary(scene: Scene) -> list[Example]:
    """Pipeline totals by stage, owner or month."""
    variant = scene.one(("stage", "owner", "month", "mine"))
    slots: dict[str, Any] = {}
    if variant == "month":
        period, arg = _phrase(phrasing.PERIODS[:6], scene)
        args, slots = {"group_by": "month", "close_date": arg}, {"period": period}
    elif variant == "mine":
        args = {"group_by": "stage", "owner": "me"}
    else:
        args = {"group_by": variant}
    return _read(scene, say(scene, phrasing.REQUESTS, f"pipeline.{variant}", **slots), Call("pipeline_summary", args))


def _scored(scene: Scene, obj: str) -> Any | None:
    ids = set(scene.session.scalars(select(CustomerScore.record_id).where(CustomerScore.object_type == obj)))
    return scene.pick(obj, lambda r: r.id in ids)


def customer_360(scene: Scene) -> list[Example]:
    """One customer across records."""
    obj = scene.one(("contact", "account", "lead"))
    record = scene.pick(obj)
    if record is None:
        return []
    target = ref(obj, record.id) if scene.rng.random() < 0.4 else name_of(scene, obj, record)
    if not target:
        return []
    return _read(scene, say(scene, phrasing.REQUESTS, "c360", name=target), Call("customer_360", {"record": target}))


def explain_score(scene: Scene) -> list[Example]:
    """Why a lead, deal or account scores as it does."""
    obj = scene.one(("lead", "opportunity", "account"))
    record = _scored(scene, obj)
    if record is None:
        return []
    label = scene.session.scalar(select(CustomerScore.label).where(CustomerScore.object_type == obj,
                                                                   CustomerScore.record_id == record.id)) or "hot"
    target = ref(obj, record.id) if scene.rng.random() < 0.5 else name_of(scene, obj, record)
    if not target:
        return []
    text = say(scene, phrasing.REQUESTS, "explain", name=target, label=label)
    return _read(scene, text, Call("explain_score", {"record": target}))


def find_duplicates(scene: Scene) -> list[Example]:
    """The duplicate review queue, or one record's duplicates."""
    if scene.rng.random() < 0.5:
        return _read(scene, say(scene, phrasing.REQUESTS, "dups.queue"), Call("find_duplicates", {}))
    name = a_name(scene, "contact")
    if not name:
        return []
    return _read(scene, say(scene, phrasing.REQUESTS, "dups.record", name=name), Call("find_duplicates",
                                                                                       {"record": name}))


def segment_members(scene: Scene) -> list[Example]:
    """Accounts in an RFM segment or a health band."""
    labels = {kind: set(scene.session.scalars(select(CustomerScore.label).where(CustomerScore.kind == kind)))
              for kind in ("rfm", "health")}
    if scene.rng.random() < 0.5:
        known = [s for s in phrasing.SEGMENTS if s in labels["rfm"]] or list(phrasing.SEGMENTS)
        segment = scene.one(known)
        words = phrasing.SEGMENTS[segment][_i(scene)]
        mine = scene.rng.random() < 0.4
        args: dict[str, Any] = {"segment": segment, **({"owner": "me"} if mine else {})}
        text = say(scene, phrasing.REQUESTS, "segment.mine" if mine else "segment", segment=words)
    else:
        known = [h for h in phrasing.HEALTH if h in labels["health"]] or list(phrasing.HEALTH)
        health = scene.one(known)
        args, text = {"health": health}, say(scene, phrasing.REQUESTS, "health",
                                             health=phrasing.HEALTH[health][_i(scene)])
    return _read(scene, text, Call("segment_members", args))


def find_then_open(scene: Scene) -> list[Example]:
    """A second call made from the first one's result: the one match found by name, then opened by reference."""
    obj = scene.one(("account", "contact", "opportunity"))
    record = scene.pick(obj)
    if record is None:
        return []
    query = scene.one(_candidates(obj, record))
    first = Call("find_records", {"query": query, "object_type": obj})
    text = say(scene, phrasing.REQUESTS, "get_record.name", name=query, what=phrasing.OBJECT_WORDS[obj][_i(scene)])
    ran = run(scene, first, text)
    if ran.result is None or ran.result.data.get("count") != 1:
        return []
    return [after_step(scene, text, first, ran.result, Call("get_record", {"record": ref(obj, record.id)}))]


# ---------------------------------------------------------------- write scenarios (proposals)
def _write(scene: Scene, text: str, call: Call) -> list[Example]:
    """A write call the rep asked for: the call, and often the confirmation after the rep decided."""
    if not valid_call(call) or not asks_for_write(text, call.name):
        return []
    decide = scene.one(("approve", "approve", "reject")) if scene.rng.random() < APPROVAL_SHARE else None
    ran = run(scene, call, text, decide=decide)
    if ran.result is None:
        return []
    out = [first_call(scene, text, call)]
    lang = answer_language(text)
    if ran.outcome is not None:
        out.append(after_approval(scene, text, call, ran, answers.after_approval(ran.outcome, lang, scene.rng)))
    elif ran.result.proposal_id is None and call.name in answers.WRITERS:  # a draft: answered from its data
        answer = answers.WRITERS[call.name](ran.result.data, lang, scene.rng)
        if answer:
            out.append(after_result(scene, text, call, ran.result, answer))
    return out


def _open_opp(scene: Scene) -> tuple[Any, str] | None:
    return a_record(scene, "opportunity", lambda o: o.stage not in CLOSED_VALUES["opportunity"])


def update_stage(scene: Scene) -> list[Example]:
    """Move a deal to another stage."""
    picked = _open_opp(scene)
    if picked is None:
        return []
    opp, name = picked
    # Deals move forward (or are lost): a later stage than the current one, as reps ask for.
    order = list(phrasing.STAGE_WORDS)
    stage = scene.one(order[order.index(opp.stage) + 1:] if opp.stage in order else order)
    text = say(scene, phrasing.WRITES, "update_stage", opp=name, stage=_stage_words(scene, stage))
    return _write(scene, text, Call("update_stage", {"opportunity": name, "stage": stage}))


def update_record(scene: Scene) -> list[Example]:
    """Change one field: a close date, an amount, a probability, a case priority, a lead status, a title."""
    variant = scene.one(("close_date", "amount", "probability", "case_priority", "lead_status", "contact_title"))
    if variant in ("close_date", "amount", "probability"):
        picked = _open_opp(scene)
        if picked is None:
            return []
        opp, name = picked
        if variant == "close_date":
            words, value = _phrase(phrasing.DUE_DATES, scene)
            slots: dict[str, Any] = {"date": words}
        elif variant == "amount":
            words, value = _phrase(phrasing.AMOUNTS, scene)
            slots = {"amount": words}
        else:
            pct = scene.one(("20", "35", "50", "60", "75", "90"))
            value, slots = pct, {"pct": pct}
        text = say(scene, phrasing.WRITES, f"update_record.{variant}", opp=name, **slots)
        call = Call("update_record", {"object_type": "opportunity", "record": name,
                                      "field": {"amount": "amount", "probability": "probability"}.get(variant,
                                                                                                      "close_date"),
                                      "value": value})
        return _write(scene, text, call)
    if variant == "case_priority":
        case = scene.pick("case", lambda c: c.status != "closed")
        if case is None or not scene.resolves_to("case", case.subject, case.id):
            return []
        priority = scene.one([p for p in phrasing.PRIORITY_WORDS if p != case.priority])
        text = say(scene, phrasing.WRITES, "update_record.case_priority", case=case.subject,
                   priority=phrasing.PRIORITY_WORDS[priority][_i(scene)].replace("-priority", ""))
        return _write(scene, text, Call("update_record", {"object_type": "case", "record": case.subject,
                                                          "field": "priority", "value": priority}))
    if variant == "lead_status":
        picked = a_record(scene, "lead", lambda x: x.status in ("new", "working"))
        if picked is None:
            return []
        lead, name = picked
        status = scene.one([s for s in ("working", "qualified", "disqualified") if s != lead.status])
        text = say(scene, phrasing.WRITES, "update_record.lead_status", lead=name,
                   status=phrasing.LEAD_STATUS_WORDS[status][_i(scene)])
        return _write(scene, text, Call("update_record", {"object_type": "lead", "record": name, "field": "status",
                                                          "value": status}))
    who = a_name(scene, "contact")
    if not who:
        return []
    title = scene.one(phrasing.TITLES)[_i(scene)]
    text = say(scene, phrasing.WRITES, "update_record.contact_title", contact=who, title=title)
    return _write(scene, text, Call("update_record", {"object_type": "contact", "record": who, "field": "title",
                                                      "value": title}))


def _about(scene: Scene) -> tuple[str, str, str] | None:
    """A record an activity is about: (the argument to link it by, its name as the rep says it, its type)."""
    obj = scene.one(("account", "contact", "opportunity"))
    name = a_name(scene, obj, (lambda o: o.stage not in CLOSED_VALUES["opportunity"]) if obj == "opportunity" else None)
    return (obj, name, obj) if name else None


def log_activity(scene: Scene) -> list[Example]:
    """Log a call, email, meeting or note the rep had."""
    about = _about(scene)
    if about is None:
        return []
    obj, name, _ = about
    subject = scene.one(phrasing.ACTIVITY_SUBJECTS)[_i(scene)]
    args: dict[str, Any] = {obj: name, "subject": subject}
    if scene.rng.random() < 0.5:
        kind = {"called": "call", "met": "meeting", "spoke": "call", "emailed": "email", "通了电话": "call",
                "拜访了": "meeting", "开了会": "meeting", "聊了": "call"}
        when, arg = _phrase(phrasing.PAST_DATES, scene)
        text = say(scene, phrasing.WRITES, "log_activity.past", who=name, when=when, subject=subject)
        said = next((k for verb, k in kind.items() if verb in text), None)
        if said is None:
            return []
        args.update(kind=said, when=arg)
    else:
        kind_ = scene.one(("call", "email", "meeting", "note"))
        text = say(scene, phrasing.WRITES, "log_activity", who=name, subject=subject,
                   kind=phrasing.ACTIVITY_WORDS[kind_][_i(scene)])
        if "note" in text.lower() or "备注" in text:
            kind_ = "note"
        args["kind"] = kind_
    return _write(scene, text, Call("log_activity", args))


def schedule_follow_up(scene: Scene) -> list[Example]:
    """A follow-up task with a due date."""
    about = _about(scene)
    if about is None:
        return []
    obj, name, _ = about
    subject = scene.one(phrasing.FOLLOW_UPS)[_i(scene)]
    due, arg = _phrase(phrasing.DUE_DATES, scene)
    try:
        resolve_date(arg, scene.now.date())
    except ToolInputError:
        return []
    text = say(scene, phrasing.WRITES, "schedule_follow_up", who=name, due=due, subject=subject)
    return _write(scene, text, Call("schedule_follow_up", {obj: name, "subject": subject, "due": arg}))


def create_lead(scene: Scene) -> list[Example]:
    """A new lead the rep met."""
    name, company, email = scene.one(phrasing.NEW_PEOPLE)
    source = scene.one(phrasing.LEAD_SOURCES)
    text = say(scene, phrasing.WRITES, "create_lead", name=name, company=company, email=email, source=source)
    args: dict[str, Any] = {"name": name, "company": company}
    if email in text:
        args["email"] = email
    if re.search(rf"\b{source}\b", text):
        args["source"] = source
    return _write(scene, text, Call("create_lead", args))


def create_contact(scene: Scene) -> list[Example]:
    """A new contact at a readable account."""
    acct = a_name(scene, "account")
    if not acct:
        return []
    name, _, email = scene.one(phrasing.NEW_PEOPLE)
    title = scene.one(phrasing.TITLES)[_i(scene)]
    text = say(scene, phrasing.WRITES, "create_contact", name=name, acct=acct, title=title, email=email)
    args: dict[str, Any] = {"name": name, "account": acct, "title": title}
    if email in text:
        args["email"] = email
    return _write(scene, text, Call("create_contact", args))


def draft_email(scene: Scene) -> list[Example]:
    """An email draft to a contact (never sent)."""
    name = a_name(scene, "contact", lambda c: c.erased_at is None)
    if not name:
        return []
    about_en, subject_en, body_en, about_zh = scene.one(phrasing.EMAIL_SUBJECTS)
    about = about_zh if scene.lang == "zh" else about_en
    text = say(scene, phrasing.WRITES, "draft_email", contact=name, subject=about)
    first = name.split(",")[-1].strip() if "," in name else name.split(" ")[0] if scene.lang == "en" else name
    if answer_language(text) == "zh":
        detail = "附件是更新后的方案，本周可以一起过一遍" if "proposal" in subject_en else "请查收以下信息"
        body = f"{first}您好：\n\n关于{about_zh}，{detail}。\n\n祝好"
        subject = about_zh
    else:
        body, subject = f"Hi {first},\n\n{body_en[0].upper()}{body_en[1:]}.\n\nBest regards", subject_en
    return _write(scene, text, Call("draft_email", {"to": name, "subject": subject, "body": body}))


def propose_merge(scene: Scene) -> list[Example]:
    """Merge a duplicate contact into the one to keep."""
    from crm.customer_models import IdentityLink

    links = scene.session.execute(select(IdentityLink.customer_id, IdentityLink.record_key).where(
        IdentityLink.object_type == "contact").order_by(IdentityLink.id)).all()
    groups: dict[str, list[int]] = {}
    for customer, key in links:
        if key.isdigit():
            groups.setdefault(customer, []).append(int(key))
    readable = {c.id for c in scene.rows("contact")}
    pairs = [ids for ids in groups.values() if len(ids) >= 2 and all(i in readable for i in ids)]
    if not pairs:
        return []
    keep, dup = scene.rng.sample(scene.one(pairs), 2)
    keep_ref, dup_ref = ref("contact", keep), ref("contact", dup)
    text = say(scene, phrasing.WRITES, "propose_merge", keep=keep_ref, dup=dup_ref)
    return _write(scene, text, Call("propose_merge", {"keep": keep_ref, "duplicates": [dup_ref]}))


# ---------------------------------------------------------------- questions back, refusals, small talk
def ambiguous_name(scene: Scene) -> list[Example]:
    """A name that matches several records: the tool says so, and the model asks which one."""
    obj = scene.one(("opportunity", "account", "contact"))
    rows = scene.rows(obj)
    if len(rows) < 2:
        return []
    record = scene.one(rows)
    options = [c for c in _candidates(obj, record)[1:] if not scene.resolves_to(obj, c, record.id)]
    if obj == "contact":
        options = [w for w in str(record.name).split(" ") if len(w) >= 3] or options
    if not options:
        return []
    name = scene.one(options)
    call = Call("get_record", {"record": name, "object_type": obj})
    text = say(scene, phrasing.AMBIGUOUS_ASKS, obj, name=name)
    ran = run(scene, call, text)
    if ran.error_type != "ToolInputError" or "match" not in (ran.error or ""):
        return []
    column = NAME_FIELD[obj]
    found = [r for r in scene.rows(obj) if name.lower() in str(getattr(r, column)).lower()][:5]
    if len(found) < 2:
        return []
    lang = answer_language(text)
    lines = "\n".join(f"- {getattr(r, column)} ({ref(obj, r.id)})" for r in found)
    what = phrasing.OBJECT_WORDS[obj][1 if lang == "zh" else 0]
    reply = scene.one(phrasing.WHICH_ONE[lang]).format(n=len(found), plural=PLURAL_WORDS[obj].replace(
        "opportunities", "deals"), what=what, options=lines)
    return [first_call(scene, text, call), after_error(scene, text, call, ran, reply, "clarify")]


def vague_request(scene: Scene) -> list[Example]:
    """A change asked for without saying what to change: ask, do not guess."""
    tool = scene.one(list(phrasing.VAGUE))
    text, reply = scene.one(phrasing.VAGUE[tool][scene.lang])
    return [first_reply(scene, text, reply, "clarify")]


def hidden_record(scene: Scene) -> list[Example]:
    """Another team's record: the rep's own lookup finds nothing, and the answer says so without naming it."""
    obj = scene.one(("account", "opportunity", "contact"))
    model: Any = {"opportunity": Opportunity, "account": Account, "contact": Contact}[obj]
    visible = {r.id for r in scene.rows(obj)}
    hidden = [r for r in scene.session.scalars(select(model).order_by(model.id)) if r.id not in visible
              and getattr(r, "erased_at", None) is None]
    if not hidden:
        return []
    record = scene.one(hidden)
    name = scene.one(_candidates(obj, record))
    if any(name.lower() in str(getattr(r, NAME_FIELD[obj])).lower() for r in scene.rows(obj)):
        return []  # a readable record has that name too: not a hidden-record case
    text = say(scene, phrasing.HIDDEN_ASKS, obj, name=name)
    call = Call("get_record", {"record": name, "object_type": obj})
    ran = run(scene, call, text)
    if ran.error_type != "NotFound":
        return []
    lang = answer_language(text)
    reply = scene.one(phrasing.NOT_VISIBLE[lang]).format(what=phrasing.OBJECT_WORDS[obj][1 if lang == "zh" else 0])
    return [after_error(scene, text, call, ran, reply, "refusal")]


def policy_refusal(scene: Scene) -> list[Example]:
    """Something the assistant never does (delete, bulk change, owner change, send, export, reveal its prompt)."""
    topic = scene.one(list(phrasing.POLICY_REFUSALS))
    ask, reply = scene.one(phrasing.POLICY_REFUSALS[topic][scene.lang])
    slots: dict[str, Any] = {}
    if "{acct}" in ask:
        slots["acct"] = a_name(scene, "account")
    if "{opp}" in ask:
        picked = _open_opp(scene)
        slots["opp"] = picked and picked[1]
    if "{contact}" in ask:
        slots["contact"] = a_name(scene, "contact", lambda c: c.erased_at is None)
    if "{teammate}" in ask:
        mates = list(scene.session.scalars(select(User.name).where(
            User.team_id.in_(list(scene.principal.team_ids)), User.id != scene.principal.user_id).order_by(User.id)))
        slots["teammate"] = mates and scene.one(mates)
    if not all(slots.values()):
        return []
    return [first_reply(scene, ask.format(**slots), reply, "refusal")]


def small_talk(scene: Scene) -> list[Example]:
    """Greetings, thanks, questions about the assistant and out-of-scope asks: a short reply, no tool."""
    topic = scene.one(list(phrasing.SMALL_TALK))
    text, reply = scene.one(phrasing.SMALL_TALK[topic][scene.lang])
    return [first_reply(scene, text, reply, "no_tool")]


# ---------------------------------------------------------------- compound lists: 2-3 filters in one request
COMPOUND_SHARE = 0.5  # of list requests, how many name several filters at once
_BEFORE_NOUN = {"priority"}  # English adjectives ("urgent cases"); Chinese puts every filter before the noun
_PREFIX_ZH = {"account", "priority"}  # Chinese fragments that are not joined with 、 (they carry their own 的)


def _compound_text(scene: Scene, kind: str, mine: bool, mods: list[tuple[str, dict[str, Any]]]) -> str:
    """The request for ``mods`` (filter key, slots), each said by one fragment, in a shuffled order."""
    bank, lang = phrasing.COMPOUND[kind], scene.lang
    scene.rng.shuffle(mods)
    said = [(key, scene.one(bank[key][lang]).format(**slots)) for key, slots in mods]
    noun = scene.one(bank["noun"][lang])
    if lang == "en":
        words = [*(["my"] if mine else []), *(f for k, f in said if k in _BEFORE_NOUN), noun,
                 *(f for k, f in said if k not in _BEFORE_NOUN)]
        np_ = " ".join(words)
    else:
        joined = "、".join(f for k, f in said if k not in _PREFIX_ZH)
        np_ = ((scene.one(phrasing.COMPOUND_MINE["zh"]) if mine else "")
               + "".join(f for k, f in said if k == "account") + (joined + "的" if joined else "")
               + "".join(f for k, f in said if k == "priority") + noun)
    return _style(scene.one(phrasing.COMPOUND_FRAMES[lang]), scene).format(np=np_)


def _pick_filters(scene: Scene, keys: tuple[str, ...], mine: bool) -> list[str]:
    """2-3 filters in all, counting "my" as one."""
    want = scene.rng.choice((2, 2, 3)) - (1 if mine else 0)
    return scene.rng.sample(list(keys), max(1, want))


Maker = Callable[[Scene], Filters | None]
"""One filter of a compound request: its tool arguments and slots, or None when the data has nothing to name."""


def _compound(scene: Scene, kind: str, tool: str, makers: dict[str, Maker], mine_share: float) -> list[Example]:
    """A list request naming 2-3 of ``makers``' filters (counting "my"), and the call that sets exactly those."""
    mine = scene.rng.random() < mine_share
    args: dict[str, Any] = {"owner": "me"} if mine else {}
    mods: list[tuple[str, dict[str, Any]]] = []
    for key in _pick_filters(scene, tuple(makers), mine):
        made = makers[key](scene)
        if made is None:
            return []
        more, slots = made
        args.update(more)
        mods.append((key, slots))
    return _read(scene, _compound_text(scene, kind, mine, mods), Call(tool, args))


def _worded(key: str, options: tuple[str, ...], words: dict[str, tuple[str, str]]) -> Maker:
    """A filter whose value is one of ``options``, said in the scene's language."""
    def make(scene: Scene) -> Filters:
        value = scene.one(options)
        return {key: value}, {key: words[value][_i(scene)]}
    return make


def _stage(scene: Scene) -> Filters:
    stage = scene.one(("prospecting", "qualification", "needs_analysis", "proposal", "negotiation"))
    return {"stage": stage}, {"stage": _stage_words(scene, stage)}


def _source(scene: Scene) -> Filters:
    source = scene.one(phrasing.LEAD_SOURCES)
    return {"source": source}, {"source": source}


def _created(scene: Scene) -> Filters:
    return _period(scene, "created", past=True)


def compound_opportunities(scene: Scene) -> list[Example]:
    """Deals by several filters at once: stage, amount bounds, close period, silence, account, owner."""
    # Both bounds come from one draw, so a request naming both says a lower one under a higher one.
    low, high = sorted(scene.rng.sample(list(phrasing.AMOUNTS), 2), key=lambda a: parse_amount(a[0])[0])
    return _compound(scene, "opps", "list_opportunities", {
        "stage": _stage,
        "amount_min": lambda s: ({"amount_min": low[_i(s)]}, {"amount": low[_i(s)]}),
        "amount_max": lambda s: ({"amount_max": high[_i(s)]}, {"amount_max": high[_i(s)]}),
        "close_date": lambda s: _period(s, "close_date"),
        "no_activity_days": _quiet,
        "account": _account,
    }, mine_share=0.5)


def compound_leads(scene: Scene) -> list[Example]:
    """Leads by several filters at once: status, source, creation period, silence, owner."""
    return _compound(scene, "leads", "list_leads", {
        "status": _worded("status", ("new", "working", "qualified", "disqualified"), phrasing.LEAD_STATUS_WORDS),
        "source": _source,
        "created": _created,
        "no_activity_days": _quiet,
    }, mine_share=0.5)


def compound_cases(scene: Scene) -> list[Example]:
    """Cases by several filters at once: priority, status, account, creation period, owner."""
    return _compound(scene, "cases", "list_cases", {
        "priority": _worded("priority", ("urgent", "high", "medium", "low"), phrasing.PRIORITY_WORDS),
        "status": _worded("status", ("new", "open", "pending", "escalated"), phrasing.CASE_STATUS_WORDS),
        "created": _created,
        "account": _account,
    }, mine_share=0.3)


def _or_compound(simple: Scenario, compound: Scenario) -> Scenario:
    def scenario(scene: Scene) -> list[Example]:
        return (compound if scene.rng.random() < COMPOUND_SHARE else simple)(scene)
    scenario.__name__ = simple.__name__
    scenario.__doc__ = simple.__doc__
    return scenario


# Which scenarios make each tool's calls (every assistant tool has at least one).
BY_TOOL: dict[str, Scenario] = {
    "find_records": find_records, "get_record": get_record,
    "list_opportunities": _or_compound(list_opportunities, compound_opportunities),
    "list_leads": _or_compound(list_leads, compound_leads), "list_cases": _or_compound(list_cases, compound_cases),
    "account_timeline": account_timeline,
    "search_notes": search_notes, "pipeline_summary": pipeline_summary, "customer_360": customer_360,
    "explain_score": explain_score, "find_duplicates": find_duplicates, "segment_members": segment_members,
    "update_stage": update_stage, "update_record": update_record, "log_activity": log_activity,
    "schedule_follow_up": schedule_follow_up, "create_lead": create_lead, "create_contact": create_contact,
    "draft_email": draft_email, "propose_merge": propose_merge,
}
# The other kinds of turn, with the share of examples each should get.
OTHERS: dict[str, tuple[Scenario, ...]] = {
    "clarify": (ambiguous_name, ambiguous_name, vague_request),
    "refusal": (hidden_record, hidden_record, policy_refusal),
    "no_tool": (small_talk,),
    "multi_step": (find_then_open,),
}
